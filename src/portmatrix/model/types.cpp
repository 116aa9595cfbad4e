// Parsing and printing of the shared vocabulary.
#include "model/types.hpp"

#include <charconv>

#include <fmt/format.h>

namespace portmatrix {

std::string_view
to_string(Protocol protocol)
{
  switch (protocol) {
  case Protocol::tcp: return "tcp";
  case Protocol::udp: return "udp";
  case Protocol::vrrp: return "vrrp";
  case Protocol::ipip: return "ipip";
  case Protocol::esp: return "esp";
  }
  return "?";
}

std::string_view
to_string(Encapsulation encapsulation)
{
  switch (encapsulation) {
  case Encapsulation::none: return "none";
  case Encapsulation::vxlan: return "vxlan";
  case Encapsulation::geneve: return "geneve";
  case Encapsulation::wireguard: return "wireguard";
  }
  return "?";
}

std::optional<Encapsulation>
parse_encapsulation(std::string_view text)
{
  for (auto e : {Encapsulation::none, Encapsulation::vxlan, Encapsulation::geneve, Encapsulation::wireguard}) {
    if (text == to_string(e)) return e;
  }
  return std::nullopt;
}

std::optional<Protocol>
parse_protocol(std::string_view text)
{
  if (text == "tcp") return Protocol::tcp;
  if (text == "udp") return Protocol::udp;
  if (text == "vrrp") return Protocol::vrrp;
  if (text == "ipip") return Protocol::ipip;
  if (text == "esp") return Protocol::esp;
  return std::nullopt;
}

std::string_view
protocol_names()
{
  return "tcp, udp, vrrp, ipip, esp";
}

bool
has_ports(Protocol protocol)
{
  return protocol == Protocol::tcp || protocol == Protocol::udp;
}

std::uint8_t
ip_protocol_number(Protocol protocol)
{
  switch (protocol) {
  case Protocol::tcp: return 6;
  case Protocol::udp: return 17;
  case Protocol::vrrp: return 112;
  case Protocol::ipip: return 4;
  case Protocol::esp: return 50;
  }
  return 0;
}

std::string_view
to_string(Role role)
{
  switch (role) {
  case Role::master: return "master";
  case Role::worker: return "worker";
  case Role::mongodb: return "mongodb";
  case Role::elasticsearch: return "elasticsearch";
  case Role::loadbalancer: return "loadbalancer";
  case Role::client: return "client";
  case Role::any: return "any";
  case Role::vip: return "vip";
  }
  return "?";
}

std::optional<Role>
parse_role(std::string_view text)
{
  if (text == "master" || text == "control-plane") return Role::master;
  if (text == "worker") return Role::worker;
  if (text == "mongodb") return Role::mongodb;
  if (text == "elasticsearch") return Role::elasticsearch;
  if (text == "loadbalancer") return Role::loadbalancer;
  if (text == "client") return Role::client;
  if (text == "any") return Role::any;
  if (text == "vip") return Role::vip;
  return std::nullopt;
}

const std::vector<Role>&
node_roles()
{
  static const std::vector<Role> roles{
    Role::master, Role::worker, Role::mongodb, Role::elasticsearch, Role::loadbalancer, Role::client};
  return roles;
}

std::string_view
to_string(Expect expect)
{
  return expect == Expect::allow ? "allow" : "deny";
}

std::string
to_string(const PortRange& range, std::string_view separator)
{
  if (range.single()) return std::to_string(range.min);
  return fmt::format("{}{}{}", range.min, separator, range.max);
}

namespace {

std::optional<std::uint32_t>
parse_number(std::string_view text)
{
  std::uint32_t value = 0;
  if (text.empty() || text.size() > 9) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

} // namespace

PortRangeParse
parse_port_range(std::string_view text)
{
  auto separator = text.find_first_of("-/:");
  auto first_text = text.substr(0, separator);
  auto last_text = separator == std::string_view::npos ? first_text : text.substr(separator + 1);
  auto first = parse_number(first_text);
  auto last = parse_number(last_text);
  if (!first || !last) return {std::nullopt, fmt::format("'{}' is not a port or a port range", printable(text))};
  for (auto port : {*first, *last}) {
    if (port < 1 || port > 65535) return {std::nullopt, fmt::format("port {} is outside 1-65535", port)};
  }
  if (*first > *last) {
    return {std::nullopt, fmt::format("port range {} has its first port above its last", text)};
  }
  return {PortRange{std::uint16_t(*first), std::uint16_t(*last)}, {}};
}

std::string
printable(std::string_view text)
{
  auto shown = text.substr(0, k_max_quoted);
  if (shown.size() < text.size()) {
    // Not in the middle of a UTF-8 sequence: drop continuation bytes and the lead byte they follow.
    while (!shown.empty() && (static_cast<unsigned char>(text[shown.size()]) & 0xc0) == 0x80) {
      shown.remove_suffix(1);
    }
  }
  std::string out;
  for (char c : shown) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '\0') out += "\\0";
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (byte < 0x20 || byte == 0x7f) out += fmt::format("\\x{:02x}", byte);
    else out += c;
  }
  if (shown.size() < text.size()) out += fmt::format("... ({} bytes)", text.size());
  return out;
}

std::string
to_string(const Diagnostic& diagnostic)
{
  std::string where = diagnostic.file;
  if (diagnostic.line > 0) where += fmt::format(":{}:{}", diagnostic.line, diagnostic.column);
  return fmt::format("{}: error: {}", where, diagnostic.message);
}

void
BoundedDiagnostics::add(Diagnostic diagnostic)
{
  if (m_count++ == k_max_errors) {
    m_sink.push_back({m_file, 0, 0, fmt::format("too many errors (more than {}); fix these first", k_max_errors)});
    throw Full{};
  }
  m_sink.push_back(std::move(diagnostic));
}

} // namespace portmatrix
