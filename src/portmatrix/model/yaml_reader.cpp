// yaml-cpp reports positions 0-based; diagnostics are 1-based like compilers'.
#include "model/yaml_reader.hpp"

#include <set>

#include <fmt/format.h>

namespace portmatrix {

std::optional<YAML::Node>
YamlReader::parse(std::string_view text)
{
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    error(e.mark, e.msg);
  } catch (const std::exception& e) {
    m_sink.push_back({m_file, 0, 0, e.what()});
  }
  return std::nullopt;
}

void
YamlReader::error(const YAML::Mark& at, std::string message)
{
  bool known = !at.is_null() && at.line >= 0;
  m_sink.push_back({m_file, known ? at.line + 1 : 0, known ? at.column + 1 : 0, std::move(message)});
}

void
YamlReader::error(const YAML::Node& at, std::string message)
{
  error(at.Mark(), std::move(message));
}

bool
YamlReader::check_map(const YAML::Node& map, std::string_view what, std::initializer_list<std::string_view> allowed)
{
  if (!map.IsMap()) {
    error(map, fmt::format("{} must be a mapping", what));
    return false;
  }
  std::set<std::string> seen;
  for (const auto& entry : map) {
    if (!entry.first.IsScalar()) {
      error(entry.first, fmt::format("{} has a key that is not a plain name", what));
      continue;
    }
    const auto& key = entry.first.Scalar();
    bool known = false;
    for (auto name : allowed) known = known || name == key;
    if (!known) {
      std::string list;
      for (auto name : allowed) list += fmt::format("{}{}", list.empty() ? "" : ", ", name);
      error(entry.first, fmt::format("unknown key '{}' in {} (known: {})", key, what, list));
    }
    if (!seen.insert(key).second) error(entry.first, fmt::format("duplicate key '{}' in {}", key, what));
  }
  return true;
}

bool
YamlReader::expect_sequence(const YAML::Node& node, std::string_view what)
{
  if (node.IsSequence()) return true;
  error(node, fmt::format("{} must be a list", what));
  return false;
}

std::optional<std::string>
YamlReader::string(const YAML::Node& node, std::string_view what)
{
  if (!node.IsScalar()) {
    error(node, fmt::format("{} must be a single value", what));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<bool>
YamlReader::boolean(const YAML::Node& node, std::string_view what)
{
  if (node.IsScalar()) {
    const auto& text = node.Scalar();
    if (text == "true" || text == "yes") return true;
    if (text == "false" || text == "no") return false;
  }
  error(node, fmt::format("{} must be true or false", what));
  return std::nullopt;
}

std::optional<PortRange>
YamlReader::port_range(const YAML::Node& node, std::string_view what)
{
  auto text = string(node, what);
  if (!text) return std::nullopt;
  auto parsed = parse_port_range(*text);
  if (!parsed.range) error(node, fmt::format("{}: {}", what, parsed.error));
  return parsed.range;
}

std::optional<Role>
YamlReader::role(const YAML::Node& node, std::string_view what)
{
  auto text = string(node, what);
  if (!text) return std::nullopt;
  auto parsed = parse_role(*text);
  if (!parsed) {
    error(node,
          fmt::format("unknown role '{}' in {} (known: master, control-plane, worker, mongodb, elasticsearch, "
                      "loadbalancer, client)",
                      *text,
                      what));
  }
  return parsed;
}

YAML::Mark
YamlReader::key_mark(const YAML::Node& map, std::string_view key) const
{
  if (map.IsMap()) {
    for (const auto& entry : map) {
      if (entry.first.IsScalar() && entry.first.Scalar() == key) return entry.first.Mark();
    }
  }
  return map.Mark();
}

} // namespace portmatrix
