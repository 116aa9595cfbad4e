// A thin layer over yaml-cpp that turns every shape or value mistake into a
// positioned Diagnostic and keeps going, so one run reports all errors of a file
// (up to k_max_errors: a file of a million mistakes stops at the first ones).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "model/types.hpp"

namespace portmatrix {

// How many values (scalars, lists, mappings) a document may hold. A
// 5,000-node inventory has about 60,000; yaml-cpp takes about 0.5 KB a value.
constexpr std::size_t k_max_values = 250'000;

class YamlReader
{
public:
  // `file` names the input in diagnostics; errors are appended to `sink`,
  // which must outlive the reader.
  YamlReader(std::string file, Diagnostics& sink) : m_errors(std::move(file), sink) {}

  // Runs `read` (the walk over a parsed document) and returns false when it
  // stopped because the file had more than k_max_errors errors. Every use of
  // error() must happen inside run(): past the limit, error() ends it.
  template <class Read>
  bool run(Read&& read);

  // Parses the whole text. A syntax error, more than k_max_values values, or
  // a second document (after `---`) is reported and yields nullopt.
  // Duplicate keys are reported here, in every mapping of the document, since
  // yaml-cpp keeps both entries and a reader would silently use one of them.
  std::optional<YAML::Node> parse(std::string_view text);

  // Appends a diagnostic (bounded: see BoundedDiagnostics).
  void error(const YAML::Node& at, std::string message);
  void error(const YAML::Mark& at, std::string message);

  // Reports every key of `map` that is not in `allowed` (duplicates: parse()).
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

  const std::string& file() const { return m_errors.file(); }

private:
  void report_duplicate_keys(const YAML::Node& root);

  BoundedDiagnostics m_errors;
};

template <class Read>
bool
YamlReader::run(Read&& read)
{
  return m_errors.run(std::forward<Read>(read));
}

} // namespace portmatrix
