// One egress entry from YAML. The port syntax keeps the guide's plain list
// readable (`ports: [80, 443]`) while letting a profile say which port speaks
// plain HTTP and which TLS, because the check differs (TCP vs TLS handshake).
#include "model/egress_entry.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace portmatrix {

std::string_view
to_string(EgressScheme scheme)
{
  return scheme == EgressScheme::http ? "http" : "https";
}

std::vector<std::string>
EgressHost::concrete_hosts() const
{
  if (!serves.empty()) return serves;
  if (wildcard()) return {};
  return {host};
}

const std::string_view k_host_name_rule =
  " (dot-separated labels of 1-63 letters, digits and '-', none starting or ending with '-')";

bool
valid_egress_name(std::string_view name, bool wildcard_allowed)
{
  if (wildcard_allowed && name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty() || name.size() > 253) return false;
  for (std::size_t start = 0; start <= name.size();) {
    auto dot = std::min(name.find('.', start), name.size());
    auto label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    start = dot + 1;
  }
  return true;
}

std::vector<Condition>
read_conditions(YamlReader& reader, const YAML::Node& when)
{
  if (!when.IsMap() || when.size() == 0) {
    reader.error(when, "when must name one or more options and their values");
    return {};
  }
  std::vector<Condition> conditions;
  for (const auto& entry : when) {
    conditions.push_back({entry.first.Scalar(), reader.string(entry.second, "the option value").value_or("")});
  }
  return conditions;
}

namespace {

std::optional<EgressPort>
read_port(YamlReader& reader, const YAML::Node& node)
{
  auto text = reader.string(node, "an egress port");
  if (!text) return std::nullopt;
  std::string_view rest = *text;
  EgressPort port;
  auto slash = rest.find('/');
  int number = 0;
  auto digits = rest.substr(0, slash);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (ec != std::errc() || end != digits.data() + digits.size() || number < 1 || number > 65535) {
    reader.error(node, fmt::format("egress port '{}' must be 1-65535, optionally with /http or /https", printable(*text)));
    return std::nullopt;
  }
  port.port = std::uint16_t(number);
  port.scheme = number == 80 ? EgressScheme::http : EgressScheme::https;
  if (slash != std::string_view::npos) {
    auto scheme = rest.substr(slash + 1);
    if (scheme == "http") port.scheme = EgressScheme::http;
    else if (scheme == "https") port.scheme = EgressScheme::https;
    else {
      reader.error(node, fmt::format("egress port '{}': the scheme must be http or https", printable(*text)));
      return std::nullopt;
    }
  }
  return port;
}

std::optional<std::string>
read_name(YamlReader& reader, const YAML::Node& node, std::string_view what, bool wildcard_allowed)
{
  auto name = reader.string(node, what);
  if (name && !valid_egress_name(*name, wildcard_allowed)) {
    reader.error(node, fmt::format("{} '{}' is not a host name{}{}", what, printable(*name),
                                   wildcard_allowed ? " or *.domain" : "", k_host_name_rule));
    return std::nullopt;
  }
  return name;
}

} // namespace

std::optional<EgressHost>
read_egress_host(YamlReader& reader, const YAML::Node& item, EgressEntryKind kind)
{
  bool fits = kind == EgressEntryKind::profile
                ? reader.check_map(item, "an egress host", {"host", "serves", "ports", "purpose", "reason", "when", "remove"})
                : reader.check_map(item, "an egress host", {"host", "serves", "ports", "purpose"});
  if (!fits) return std::nullopt;
  EgressHost host;
  auto mark = item.Mark();
  host.defined_at = fmt::format("{}:{}:{}", reader.file(), mark.line + 1, mark.column + 1);
  if (!item["host"]) {
    reader.error(item, "an egress entry needs 'host'");
    return std::nullopt;
  }
  auto name = read_name(reader, item["host"], "host", true);
  if (!name) return std::nullopt;
  host.host = *name;
  bool ok = true;
  if (auto serves = item["serves"]; serves && reader.expect_sequence(serves, "serves")) {
    for (const auto& node : serves) {
      if (auto concrete = read_name(reader, node, "a served host", false)) host.serves.push_back(*concrete);
      else ok = false;
    }
  }
  if (auto ports = item["ports"]; ports && reader.expect_sequence(ports, "ports")) {
    // An empty list would mean the default, 443: not what `ports: []` says.
    if (ports.size() == 0) {
      reader.error(ports, "ports lists no port (leave it out for 443/https)");
      ok = false;
    }
    for (const auto& node : ports) {
      if (auto port = read_port(reader, node)) host.ports.push_back(*port);
      else ok = false;
    }
  }
  if (host.ports.empty()) host.ports = {EgressPort{}};
  if (auto purpose = item["purpose"]) host.purpose = reader.string(purpose, "purpose").value_or("");
  if (auto reason = item["reason"]) host.reason = reader.string(reason, "reason").value_or("");
  if (auto when = item["when"]) {
    host.when = read_conditions(reader, when);
    ok = ok && !host.when.empty();
  }
  if (!ok) return std::nullopt;
  return host;
}

} // namespace portmatrix
