// Inventory loading. The reader walks the YAML once, validating as it goes,
// and only then checks what needs the whole file (duplicates, roles present).
#include "model/inventory.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "model/egress_entry.hpp"
#include "model/inventory_ssh.hpp"
#include "model/yaml_reader.hpp"
#include "util/edit_distance.hpp"

namespace portmatrix {

bool
Node::has(Role role) const
{
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

const Node*
Inventory::find(std::string_view name) const
{
  for (const auto& node : nodes) {
    if (node.name == name) return &node;
  }
  return nullptr;
}

namespace {

// The address's bytes (4 or 16) as inet_pton reads them; nullopt if not an address.
std::optional<std::string>
address_bytes(std::string_view text)
{
  // inet_pton reads a C string: "1.2.3.4\0garbage" would be 1.2.3.4.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  std::string copy(text);
  unsigned char buffer[16];
  if (inet_pton(AF_INET, copy.c_str(), buffer) == 1) return std::string(reinterpret_cast<char*>(buffer), 4);
  if (inet_pton(AF_INET6, copy.c_str(), buffer) == 1) return std::string(reinterpret_cast<char*>(buffer), 16);
  return std::nullopt;
}

} // namespace

bool
parse_address(std::string_view text, bool& ipv6)
{
  auto bytes = address_bytes(text);
  if (bytes) ipv6 = bytes->size() == 16;
  return bytes.has_value();
}

std::optional<std::string>
address_identity(std::string_view text)
{
  auto bytes = address_bytes(text);
  static const std::string v4_mapped("\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
  if (bytes && bytes->size() == 16 && bytes->starts_with(v4_mapped)) return bytes->substr(12);
  return bytes;
}

bool
parse_cidr(std::string_view text, bool& ipv6)
{
  auto slash = text.find('/');
  if (!parse_address(text.substr(0, slash), ipv6)) return false;
  if (slash == std::string_view::npos) return true;
  auto prefix_text = text.substr(slash + 1);
  int prefix = -1;
  auto [end, ec] = std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
  if (ec != std::errc() || end != prefix_text.data() + prefix_text.size() || prefix_text.empty()) return false;
  return prefix >= 0 && prefix <= (ipv6 ? 128 : 32);
}

namespace {

// Why the address `text` cannot be a host's own (a node's, or the VIP), or
// nullopt when it can: no packet is addressed to the unspecified address, and
// broadcast and multicast addresses are no one host's. IPv4-mapped IPv6
// addresses count as IPv4.
std::optional<std::string_view>
not_unicast(std::string_view text)
{
  auto bytes = address_identity(text);
  if (!bytes) return std::nullopt;
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>((*bytes)[i]); };
  if (bytes->find_first_not_of('\0') == std::string::npos) return "the unspecified address";
  if (bytes->size() == 4 && bytes->find_first_not_of('\xff') == std::string::npos) return "the broadcast address";
  if (bytes->size() == 4 ? (byte(0) & 0xf0) == 0xe0 : byte(0) == 0xff) return "a multicast address";
  return std::nullopt;
}

// For a CIDR with bits set past its prefix ("10.0.0.1/24"), the network it
// most likely means ("10.0.0.0/24"); nullopt for any other text.
std::optional<std::string>
network_meant(std::string_view text)
{
  bool ipv6 = false;
  auto slash = text.find('/');
  if (slash == std::string_view::npos || !parse_cidr(text, ipv6)) return std::nullopt;
  auto bytes = *address_bytes(text.substr(0, slash));
  int prefix = std::stoi(std::string(text.substr(slash + 1)));
  auto network = bytes;
  for (std::size_t i = 0; i < network.size(); ++i) {
    int kept = std::clamp(prefix - int(i) * 8, 0, 8);
    network[i] = char(static_cast<unsigned char>(network[i]) & (0xff00 >> kept));
  }
  if (network == bytes) return std::nullopt;
  char written[INET6_ADDRSTRLEN];
  inet_ntop(network.size() == 4 ? AF_INET : AF_INET6, network.data(), written, sizeof written);
  return fmt::format("{}/{}", written, prefix);
}

Diagnostic
position(const YamlReader& reader, const YAML::Mark& mark)
{
  return {reader.file(), mark.line + 1, mark.column + 1, {}};
}

bool
valid_node_name(std::string_view name)
{
  if (name.empty() || name.size() > 63) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

// An interface name as Linux accepts one (dev_valid_name: 1-15 bytes, no '/',
// ':' or white space, not "." or ".."), and no control characters either:
// keepalived.conf is written with it.
std::optional<std::string>
read_interface(YamlReader& reader, const YAML::Node& node)
{
  auto name = reader.string(node, "interface");
  if (!name) return std::nullopt;
  bool valid = !name->empty() && name->size() <= 15 && *name != "." && *name != ".." &&
               std::none_of(name->begin(), name->end(), [](unsigned char c) {
                 return c == '/' || c == ':' || c <= ' ' || c == 0x7f;
               });
  if (!valid) {
    reader.error(node, fmt::format("interface '{}' is not a Linux interface name (1-15 bytes, no '/', ':', white space "
                                   "or control characters, not '.' or '..')",
                                   printable(*name)));
    return std::nullopt;
  }
  return name;
}

std::optional<std::uint16_t>
read_port(YamlReader& reader, const YAML::Node& node, std::string_view what)
{
  auto range = reader.port_range(node, what);
  if (range && !range->single()) {
    reader.error(node, fmt::format("{} must be a single port", what));
    return std::nullopt;
  }
  return range ? std::optional(range->min) : std::nullopt;
}

void
read_cidrs(YamlReader& reader, const YAML::Node& node, std::string_view what, std::vector<std::string>& out)
{
  if (!reader.expect_sequence(node, what)) return;
  for (const auto& item : node) {
    auto text = reader.string(item, what);
    bool ipv6 = false;
    if (text && !parse_cidr(*text, ipv6)) {
      reader.error(item, fmt::format("'{}' in {} is not an address or CIDR", printable(*text), what));
    } else if (auto meant = text ? network_meant(*text) : std::nullopt) {
      reader.error(item, fmt::format("{} in {} has bits set past its prefix: {} is probably meant (or {} for that host "
                                     "alone)",
                                     *text, what, *meant, text->substr(0, text->find('/'))));
    } else if (text) {
      out.push_back(*text);
    }
  }
}

void
read_nodes(YamlReader& reader, const YAML::Node& list, Inventory& inventory)
{
  if (!reader.expect_sequence(list, "nodes")) return;
  if (list.size() == 0) reader.error(list, "the inventory lists no nodes");
  std::map<std::string, YAML::Mark> names;
  std::map<std::string, std::pair<std::string, YAML::Mark>> addresses; // identity -> as written, where
  for (const auto& item : list) {
    if (!reader.check_map(item, "a node", {"name", "address", "roles", "interface", "ssh"})) continue;
    Node node;
    bool ok = true;
    if (auto name = item["name"]) {
      auto text = reader.string(name, "name");
      if (text && !valid_node_name(*text)) {
        reader.error(name, fmt::format("node name '{}' must be 1-63 letters, digits, '-', '_' or '.'", printable(*text)));
        ok = false;
      } else if (text) {
        node.name = *text;
        auto [it, fresh] = names.emplace(node.name, name.Mark());
        if (!fresh) {
          reader.error(name, fmt::format("duplicate node name '{}' (first at line {})", node.name, it->second.line + 1));
          ok = false;
        }
      }
    } else {
      reader.error(item, "a node needs 'name'");
      ok = false;
    }
    if (auto address = item["address"]) {
      auto text = reader.string(address, "address");
      if (text && !parse_address(*text, node.ipv6)) {
        reader.error(address, fmt::format("'{}' is not an IPv4 or IPv6 address", printable(*text)));
        ok = false;
      } else if (auto why = text ? not_unicast(*text) : std::nullopt) {
        reader.error(address, fmt::format("address {} is {}; a node needs a unicast address of its own", *text, *why));
        ok = false;
      } else if (text) {
        node.address = *text;
        auto [it, fresh] = addresses.emplace(*address_identity(*text), std::pair(*text, address.Mark()));
        if (!fresh) {
          const auto& [first, mark] = it->second;
          reader.error(address, first == *text ? fmt::format("duplicate address {} (first at line {})", *text, mark.line + 1)
                                               : fmt::format("duplicate address {} (first at line {}, as {})", *text,
                                                             mark.line + 1, first));
          ok = false;
        }
      }
    } else {
      reader.error(item, fmt::format("node '{}' needs 'address'", node.name));
      ok = false;
    }
    if (auto roles = item["roles"]) {
      if (reader.expect_sequence(roles, "roles")) {
        for (const auto& role_node : roles) {
          auto role = reader.role(role_node, "roles");
          if (role && (*role == Role::any || *role == Role::vip)) {
            reader.error(role_node, fmt::format("'{}' is not a node role", to_string(*role)));
          } else if (role && !node.has(*role)) {
            node.roles.push_back(*role);
          }
        }
      }
      if (roles.IsSequence() && roles.size() == 0) reader.error(roles, fmt::format("node '{}' has no roles", node.name));
    } else {
      reader.error(item, fmt::format("node '{}' has no roles", node.name));
      ok = false;
    }
    if (auto interface = item["interface"]) node.interface = read_interface(reader, interface).value_or("");
    if (auto ssh = item["ssh"]) read_ssh_section(reader, ssh, SshScope::node, node.ssh);
    if (ok) inventory.nodes.push_back(std::move(node));
  }
}

} // namespace

namespace {

// egress: {add: [{host, serves, ports, purpose}], remove: [host], replace: {host: [hosts]},
//          proxy: URL, no_proxy: LIST}
// Each list names a host once (DNS names compare without case), and a host
// is either removed or replaced.
void
read_egress(YamlReader& reader, const YAML::Node& node, EgressOverrides& out)
{
  if (!reader.check_map(node, "egress", {"add", "remove", "replace", "proxy", "no_proxy"})) return;
  // The agents' egress check uses this proxy (else each agent's environment):
  // a control request cannot name one.
  if (auto proxy = node["proxy"]) out.proxy = reader.string(proxy, "the egress proxy URL").value_or("");
  if (auto no_proxy = node["no_proxy"]) out.no_proxy = reader.string(no_proxy, "the egress no_proxy list").value_or("");
  using Seen = std::map<std::string, int>; // lower-case host -> line first named
  auto lower = [](std::string host) {
    std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
    return host;
  };
  auto once = [&](Seen& seen, const std::string& host, const YAML::Node& at, std::string_view what) {
    auto [it, fresh] = seen.emplace(lower(host), at.Mark().line + 1);
    if (!fresh) reader.error(at, fmt::format("duplicate {} '{}' (first at line {})", what, printable(host), it->second));
    return fresh;
  };
  Seen added;
  Seen removed;
  Seen replaced;
  if (auto add = node["add"]; add && reader.expect_sequence(add, "egress add")) {
    for (const auto& item : add) {
      auto host = read_egress_host(reader, item, EgressEntryKind::inventory);
      if (host && once(added, host->host, item["host"], "egress add host")) {
        host->origin = "inventory";
        host->reason = "added by the inventory";
        out.add.push_back({std::move(*host), position(reader, item.Mark())});
      }
    }
  }
  if (auto remove = node["remove"]; remove && reader.expect_sequence(remove, "egress remove")) {
    for (const auto& item : remove) {
      auto host = reader.string(item, "a host to remove");
      if (host && once(removed, *host, item, "egress remove host")) {
        out.remove.push_back({*host, position(reader, item.Mark())});
      }
    }
  }
  if (auto replace = node["replace"]) {
    if (!replace.IsMap()) {
      reader.error(replace, "egress replace must map a profile host to the hosts that replace it");
      return;
    }
    std::set<std::string> keys;
    for (const auto& entry : replace) {
      EgressReplacement replacement{entry.first.Scalar(), {}};
      // A key written twice alike is a duplicate key, which YamlReader::parse reported.
      if (!keys.insert(replacement.host).second) continue;
      if (!once(replaced, replacement.host, entry.first, "egress replace host")) continue;
      if (auto it = removed.find(lower(replacement.host)); it != removed.end()) {
        reader.error(entry.first, fmt::format("egress host '{}' is both removed (line {}) and replaced",
                                              printable(replacement.host), it->second));
        continue;
      }
      Seen with;
      auto read_one = [&](const YAML::Node& item) {
        auto name = reader.string(item, "a replacement host");
        if (name && !valid_egress_name(*name, false)) {
          reader.error(item, fmt::format("replacement '{}' is not a host name{}", printable(*name), k_host_name_rule));
        } else if (name && once(with, *name, item, "replacement host")) {
          replacement.with.push_back(*name);
        }
      };
      if (entry.second.IsSequence()) {
        for (const auto& item : entry.second) read_one(item);
      } else {
        read_one(entry.second);
      }
      if (replacement.with.empty()) {
        reader.error(entry.second, fmt::format("egress replace '{}' names no host", printable(replacement.host)));
        continue;
      }
      out.replace.push_back({std::move(replacement), position(reader, entry.first.Mark())});
    }
  }
}

void
read_inventory(YamlReader& reader, std::string_view text, Inventory& inventory)
{
  auto parsed = reader.parse(text);
  if (!parsed) return;
  const auto& root = *parsed;
  if (root.IsNull()) {
    reader.error(root, "the inventory is empty");
    return;
  }
  if (!reader.check_map(root,
                        "the inventory",
                        {"cluster",
                         "profile",
                         "options",
                         "loadbalancer",
                         "ports",
                         "admin_cidrs",
                         "client_cidrs",
                         "cloud_lb_cidrs",
                         "ssh_port",
                         "ssh",
                         "agent",
                         "egress",
                         "nodes"})) {
    return;
  }
  if (auto cluster = root["cluster"]) inventory.cluster = reader.string(cluster, "cluster").value_or("cluster");
  if (auto profile = root["profile"]) {
    inventory.profile_at = position(reader, reader.key_mark(root, "profile"));
    if (profile.IsSequence()) {
      std::string joined;
      for (const auto& item : profile) {
        auto name = reader.string(item, "profile");
        if (name && name->empty()) reader.error(item, "an empty profile name");
        if (name && !name->empty()) joined += (joined.empty() ? "" : ",") + *name;
      }
      inventory.profile = joined;
    } else if (auto name = reader.string(profile, "profile")) {
      inventory.profile = *name;
    }
  }
  if (auto options = root["options"]) {
    if (!options.IsMap()) {
      reader.error(options, "options must be a mapping");
    } else {
      for (const auto& entry : options) {
        auto value = reader.string(entry.second, fmt::format("option '{}'", printable(entry.first.Scalar())));
        if (value) inventory.options[entry.first.Scalar()] = {*value, position(reader, entry.first.Mark())};
      }
    }
  }
  if (auto ports = root["ports"]) {
    if (!ports.IsMap()) {
      reader.error(ports, "ports must be a mapping of port name to port or range");
    } else {
      for (const auto& entry : ports) {
        auto name = entry.first.Scalar();
        if (auto range = reader.port_range(entry.second, fmt::format("port '{}'", printable(name)))) {
          inventory.port_overrides[name] = {*range, position(reader, entry.first.Mark())};
        }
      }
    }
  }
  if (auto lb = root["loadbalancer"]) {
    if (reader.check_map(lb, "loadbalancer", {"vip", "port", "interface", "router_id"})) {
      LoadBalancer balancer;
      if (auto vip = lb["vip"]) {
        auto text = reader.string(vip, "vip");
        if (text && !parse_address(*text, balancer.ipv6)) {
          reader.error(vip, fmt::format("vip '{}' is not an IPv4 or IPv6 address", printable(*text)));
        } else if (auto why = text ? not_unicast(*text) : std::nullopt) {
          reader.error(vip, fmt::format("vip {} is {}; the VIP must be a unicast address", *text, *why));
        } else if (text) {
          balancer.vip = *text;
        }
      } else {
        reader.error(lb, "loadbalancer needs 'vip'");
      }
      if (auto port = lb["port"]) balancer.port = read_port(reader, port, "loadbalancer port");
      if (auto interface = lb["interface"]) balancer.interface = read_interface(reader, interface).value_or("eth0");
      if (auto id = lb["router_id"]) {
        int value = 0;
        auto text = reader.string(id, "router_id").value_or("");
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > 255) {
          reader.error(id, "router_id must be 1-255");
        } else {
          balancer.router_id = std::uint8_t(value);
        }
      }
      if (!balancer.vip.empty()) inventory.loadbalancer = balancer;
    }
  }
  if (auto cidrs = root["admin_cidrs"]) read_cidrs(reader, cidrs, "admin_cidrs", inventory.admin_cidrs);
  if (auto cidrs = root["client_cidrs"]) read_cidrs(reader, cidrs, "client_cidrs", inventory.client_cidrs);
  if (auto cidrs = root["cloud_lb_cidrs"]) read_cidrs(reader, cidrs, "cloud_lb_cidrs", inventory.cloud_lb_cidrs);
  if (auto ssh = root["ssh_port"]) {
    inventory.ssh_port = read_port(reader, ssh, "ssh_port").value_or(22);
    inventory.ssh_port_at = position(reader, ssh.Mark());
  }
  if (auto ssh = root["ssh"]) read_ssh_section(reader, ssh, SshScope::inventory, inventory.ssh);
  if (auto agent = root["agent"]) {
    if (reader.check_map(agent, "agent", {"control_port"}) && agent["control_port"]) {
      inventory.control_port = read_port(reader, agent["control_port"], "agent control_port").value_or(7946);
      inventory.control_port_at = position(reader, agent["control_port"].Mark());
    }
  }
  if (auto egress = root["egress"]) read_egress(reader, egress, inventory.egress);
  if (auto nodes = root["nodes"]) {
    read_nodes(reader, nodes, inventory);
  } else {
    reader.error(root, "the inventory has no 'nodes'");
  }
  if (inventory.loadbalancer) {
    auto vip = address_identity(inventory.loadbalancer->vip);
    for (const auto& node : inventory.nodes) {
      if (address_identity(node.address) == vip) {
        const auto& written = inventory.loadbalancer->vip;
        reader.error(root["loadbalancer"]["vip"],
                     fmt::format("the vip {} is also node '{}''s address{}", written, node.name,
                                 node.address == written ? "" : " (" + node.address + ")"));
      }
    }
  }
}

} // namespace

Expected<Inventory, Diagnostics>
parse_inventory(std::string_view text, std::string_view file)
{
  Diagnostics diagnostics;
  YamlReader reader(std::string(file), diagnostics);
  Inventory inventory;
  inventory.file = file;
  inventory.profile_at = {std::string(file), 0, 0, {}};
  inventory.ssh_port_at = inventory.profile_at;
  inventory.control_port_at = inventory.profile_at;
  reader.run([&] { read_inventory(reader, text, inventory); });
  if (!diagnostics.empty()) return unexpected(std::move(diagnostics));
  return inventory;
}

Expected<Inventory, Diagnostics>
load_inventory(std::string_view path)
{
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return unexpected(Diagnostics{{std::string(path), 0, 0, "cannot read the inventory: not a regular file"}});
  }
  // The inventory says which flows an agent may be asked to probe: one that
  // anyone may rewrite is no limit.
  auto permissions = std::filesystem::status(path, error).permissions();
  if ((permissions & std::filesystem::perms::others_write) != std::filesystem::perms::none) {
    return unexpected(Diagnostics{
      {std::string(path), 0, 0, "the inventory is writable by anyone (chmod o-w it): it decides what agents probe"}});
  }
  if (std::filesystem::file_size(path, error) > (16u << 20)) {
    return unexpected(Diagnostics{{std::string(path), 0, 0, "the inventory is larger than 16 MiB"}});
  }
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return unexpected(Diagnostics{{std::string(path), 0, 0, "cannot read the inventory file"}});
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_inventory(buffer.str(), path);
}

std::string
option_value(const Inventory& inventory, const OptionSpec& option)
{
  if (auto it = inventory.options.find(option.name); it != inventory.options.end()) return it->second.value;
  if (!option.default_if_ipv6.empty() &&
      std::any_of(inventory.nodes.begin(), inventory.nodes.end(), [](const Node& node) { return node.ipv6; })) {
    return option.default_if_ipv6;
  }
  return option.default_value;
}

namespace {

// Where the named port ends up for this inventory, in plan's resolve() order:
// the profile's range, moved by a port-setting option, moved by `ports:`.
PortRange
effective_range(const Inventory& inventory, const Profile& profile, const std::string& name, PortRange range)
{
  for (const auto& option : profile.options) {
    if (option.sets_port != name) continue;
    if (auto parsed = parse_port_range(option_value(inventory, option)); parsed.range) range = *parsed.range;
  }
  if (auto it = inventory.port_overrides.find(name); it != inventory.port_overrides.end()) range = it->second.value;
  return range;
}

// A port sshd or the agent listens on (every node) must not be one that a
// service of some node listens on: the second to bind it fails (the agent
// with "Address already in use"). Returns "port 'x', which R nodes receive".
std::optional<std::string>
clash(const Inventory& inventory, const Profile& profile, std::uint16_t port)
{
  for (const auto& requirement : profile.requirements) {
    if (requirement.expect != Expect::allow || requirement.protocol != Protocol::tcp) continue;
    bool active = std::all_of(requirement.when.begin(), requirement.when.end(), [&](const Condition& when) {
      const auto* option = profile.find_option(when.option);
      return option && option_value(inventory, *option) == when.value;
    });
    if (!active) continue;
    bool received = std::any_of(inventory.nodes.begin(), inventory.nodes.end(),
                                [&](const Node& node) { return node.has(requirement.to); });
    auto range = effective_range(inventory, profile, requirement.port, requirement.range);
    if (received && range.overlaps({port, port})) {
      return fmt::format("port '{}' ({}/tcp), which profile {} has {} nodes receive", printable(requirement.port),
                         to_string(range), printable(profile.name), to_string(requirement.to));
    }
  }
  return std::nullopt;
}

} // namespace

Diagnostics
check_against(const Inventory& inventory, const Profile& profile)
{
  Diagnostics diagnostics;
  BoundedDiagnostics errors(inventory.file, diagnostics);
  auto report = [&](const Diagnostic& at, std::string message) {
    auto diagnostic = at;
    diagnostic.message = std::move(message);
    errors.add(std::move(diagnostic));
  };
  errors.run([&] {
    for (const auto& [name, value] : inventory.options) {
      const auto* option = profile.find_option(name);
      if (!option) {
        std::string known;
        std::vector<std::string> names;
        for (const auto& o : profile.options) {
          known += (known.empty() ? "" : ", ") + printable(o.name);
          names.push_back(o.name);
        }
        report(value.at, fmt::format("unknown option '{}' for profile {}{} (known: {})", printable(name),
                                     printable(profile.name), did_you_mean(name, names), known));
        continue;
      }
      if (!option->values.empty() &&
          std::find(option->values.begin(), option->values.end(), value.value) == option->values.end()) {
        std::string allowed;
        for (const auto& v : option->values) allowed += (allowed.empty() ? "" : ", ") + printable(v);
        report(value.at, fmt::format("option '{}' cannot be '{}' (allowed: {})", printable(name),
                                     printable(value.value), allowed));
      } else if (!option->sets_port.empty() && !parse_port_range(value.value).range) {
        report(value.at, fmt::format("option '{}' value '{}' is not a port (1-65535) (it sets port '{}')",
                                     printable(name), printable(value.value), printable(option->sets_port)));
      }
    }
    if (auto with = clash(inventory, profile, inventory.ssh_port)) {
      report(inventory.ssh_port_at, fmt::format("ssh_port {} is also {}", inventory.ssh_port, *with));
    }
    if (auto with = clash(inventory, profile, inventory.control_port)) {
      report(inventory.control_port_at, fmt::format("agent control_port {} is also {}", inventory.control_port, *with));
    } else if (inventory.control_port == inventory.ssh_port) {
      report(inventory.control_port_at, fmt::format("agent control_port {} is also the ssh_port", inventory.control_port));
    }
    for (const auto& [name, value] : inventory.port_overrides) {
      if (!profile.find_port(name)) {
        std::string known;
        for (const auto& p : profile.ports) known += (known.empty() ? "" : ", ") + printable(p.name);
        report(value.at, fmt::format("override of port '{}', which profile {} does not define (known: {})",
                                     printable(name), printable(profile.name), known));
      }
    }
    auto listed = [&](const std::string& host) {
      return std::any_of(profile.egress.begin(), profile.egress.end(), [&](const EgressHost& h) { return h.host == host; });
    };
    auto known_hosts = [&] {
      std::string known;
      for (const auto& h : profile.egress) known += (known.empty() ? "" : ", ") + printable(h.host);
      return known;
    };
    for (const auto& remove : inventory.egress.remove) {
      if (!listed(remove.value)) {
        report(remove.at, fmt::format("egress remove '{}': profile {} lists no such host (hosts: {})",
                                      printable(remove.value), printable(profile.name), known_hosts()));
      }
    }
    for (const auto& replace : inventory.egress.replace) {
      if (!listed(replace.value.host)) {
        report(replace.at, fmt::format("egress replace '{}': profile {} lists no such host (hosts: {})",
                                       printable(replace.value.host), printable(profile.name), known_hosts()));
      }
    }
    for (const auto& add : inventory.egress.add) {
      if (listed(add.value.host)) {
        report(add.at, fmt::format("egress add '{}': profile {} lists it already (use replace)",
                                   printable(add.value.host), printable(profile.name)));
      }
    }
  });
  return diagnostics;
}

} // namespace portmatrix
