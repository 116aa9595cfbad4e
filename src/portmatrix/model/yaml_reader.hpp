// A thin layer over yaml-cpp that turns every shape or value mistake into a
// positioned Diagnostic and keeps going, so one run reports all errors of a file.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "model/types.hpp"

namespace portmatrix {

class YamlReader
{
public:
  // `file` names the input in diagnostics; errors are appended to `sink`,
  // which must outlive the reader.
  YamlReader(std::string file, Diagnostics& sink) : m_file(std::move(file)), m_sink(sink) {}

  // Parses the whole text. A syntax error is reported and yields nullopt.
  std::optional<YAML::Node> parse(std::string_view text);

  void error(const YAML::Node& at, std::string message);
  void error(const YAML::Mark& at, std::string message);

  // Reports every key of `map` that is not in `allowed`, and duplicated keys.
  // Returns false when `map` is not a mapping (also reported).
  bool check_map(const YAML::Node& map, std::string_view what, std::initializer_list<std::string_view> allowed);
  bool expect_sequence(const YAML::Node& node, std::string_view what);

  // Scalar accessors: report and return nullopt on a wrong shape.
  std::optional<std::string> string(const YAML::Node& node, std::string_view what);
  std::optional<bool> boolean(const YAML::Node& node, std::string_view what);
  std::optional<PortRange> port_range(const YAML::Node& node, std::string_view what);
  std::optional<Role> role(const YAML::Node& node, std::string_view what);

  // Position of the key `key` in `map` (the key itself, not its value).
  YAML::Mark key_mark(const YAML::Node& map, std::string_view key) const;

  const std::string& file() const { return m_file; }

private:
  std::string m_file;
  Diagnostics& m_sink;
};

} // namespace portmatrix
