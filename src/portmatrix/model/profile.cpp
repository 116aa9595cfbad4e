// Loads and composes profiles. A profile's `include`s are composed first, in
// order; then its own ports replace same-named ports, its requirements replace
// requirements with the same key (from, to, protocol, port) or remove them,
// and its egress hosts and frontends replace same-named ones. Every problem in
// every file is collected before the load fails.
#include "model/profile.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "model/egress_entry.hpp"
#include "model/yaml_reader.hpp"
#include "profiles/builtin.hpp"
#include "util/edit_distance.hpp"

namespace portmatrix {

std::string
to_string(const std::vector<Condition>& conditions)
{
  std::string text;
  for (const auto& condition : conditions) {
    text += fmt::format("{}{}={}", text.empty() ? "" : ", ", condition.option, condition.value);
  }
  return text;
}

std::string
Requirement::key() const
{
  return fmt::format("{}>{}:{}/{}{}", to_string(from), to_string(to), port, to_string(protocol),
                     expect == Expect::deny ? " deny" : "");
}

const NamedPort*
Profile::find_port(std::string_view name) const
{
  for (const auto& port : ports) {
    if (port.name == name) return &port;
  }
  return nullptr;
}

const OptionSpec*
Profile::find_option(std::string_view name) const
{
  for (const auto& option : options) {
    if (option.name == name) return &option;
  }
  return nullptr;
}

std::vector<std::string>
builtin_profile_names()
{
  std::vector<std::string> names;
  for (std::size_t i = 0; i < k_builtin_profile_count; ++i) names.emplace_back(k_builtin_profiles[i].name);
  return names;
}

std::optional<std::string_view>
builtin_profile_text(std::string_view name)
{
  for (std::size_t i = 0; i < k_builtin_profile_count; ++i) {
    if (k_builtin_profiles[i].name == name) return k_builtin_profiles[i].text;
  }
  return std::nullopt;
}

namespace {

constexpr std::uintmax_t k_max_profile_bytes = 1 << 20;
constexpr std::size_t k_max_include_depth = 16;

// Entries by key in the order they were first defined: a later profile's
// entry replaces an earlier one with the same key, in place; a new key is
// appended; a removed key's place stays empty until take(). Lookups are by
// hash, so composing n entries costs O(n), not O(n^2) (a profile may hold
// k_max_values requirements).
template <class T>
class Keyed
{
public:
  const T* find(const std::string& key) const
  {
    auto it = m_index.find(key);
    return it == m_index.end() ? nullptr : &*m_items[it->second];
  }

  void put(const std::string& key, T item)
  {
    auto [it, fresh] = m_index.emplace(key, m_items.size());
    if (fresh) {
      m_items.emplace_back(std::move(item));
    } else {
      m_items[it->second] = std::move(item);
    }
  }

  // False when there is no such key.
  bool remove(const std::string& key)
  {
    auto it = m_index.find(key);
    if (it == m_index.end()) return false;
    m_items[it->second].reset();
    m_index.erase(it);
    return true;
  }

  std::size_t size() const { return m_index.size(); }

  // Appends the entries, in order, to `out` and empties this.
  void take(std::vector<T>& out)
  {
    for (auto& item : m_items) {
      if (item) out.push_back(std::move(*item));
    }
    m_items.clear();
    m_index.clear();
  }

private:
  std::vector<std::optional<T>> m_items;
  std::unordered_map<std::string, std::size_t> m_index;
};

bool
looks_like_path(std::string_view spec)
{
  return spec.find('/') != std::string_view::npos || spec.ends_with(".yaml") || spec.ends_with(".yml");
}

class Composer
{
public:
  explicit Composer(Diagnostics& sink) : m_sink(sink) {}

  // Moves what every compose() gathered (options, ports, requirements,
  // egress hosts, frontends) into `out`, in definition order. Call once, last.
  void finish(Profile& out)
  {
    m_options.take(out.options);
    m_ports.take(out.ports);
    m_requirements.take(out.requirements);
    m_removals.take(out.removals);
    m_egress.take(out.egress);
    m_frontends.take(out.frontends);
  }

  // Composes the profile named by `spec` (built-in name or path) into `out`.
  void compose(Profile& out, std::string_view spec, const std::string& relative_to, const Diagnostic& where)
  {
    std::string file;
    std::string text;
    if (auto builtin = builtin_profile_text(spec); builtin && !looks_like_path(spec)) {
      file = fmt::format("<builtin>/{}.yaml", spec);
      if (!may_open(file, where)) return;
      text = *builtin;
    } else if (looks_like_path(spec)) {
      std::filesystem::path path(spec);
      if (path.is_relative() && !relative_to.empty() && !relative_to.starts_with("<builtin>")) {
        // "dir/b.yaml", not "dir/./b.yaml" (nor "./././b.yaml" three includes down)
        path = (std::filesystem::path(relative_to).parent_path() / path).lexically_normal();
      }
      file = path.string();
      if (!may_open(file, where)) return; // before reading it
      std::error_code error;
      if (!std::filesystem::is_regular_file(path, error)) {
        report(where, fmt::format("cannot read profile '{}': not a regular file", printable(file)));
        return;
      }
      if (std::filesystem::file_size(path, error) > k_max_profile_bytes) {
        report(where, fmt::format("profile '{}' is larger than {} bytes", printable(file), k_max_profile_bytes));
        return;
      }
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        report(where, fmt::format("cannot read profile '{}'", printable(file)));
        return;
      }
      std::ostringstream buffer;
      buffer << in.rdbuf();
      text = buffer.str();
    } else {
      std::string known;
      for (const auto& name : builtin_profile_names()) known += (known.empty() ? "" : ", ") + name;
      report(where, fmt::format("unknown profile '{}'{} (built-in: {}; or give a path)", printable(spec),
                                did_you_mean(spec, builtin_profile_names()), known));
      return;
    }
    compose_text(out, text, file);
  }

  // Composes one profile's text; `file` names it in diagnostics and, as
  // compose() resolves it, in the include stack.
  void compose_text(Profile& out, std::string_view text, const std::string& file)
  {
    m_stack.push_back({identity(file), file});
    YamlReader reader(file, m_sink);
    reader.run([&] {
      if (auto root = reader.parse(text)) read_document(out, reader, *root);
    });
    m_stack.pop_back();
  }

private:
  // A profile being composed: what tells two spellings of one file apart
  // (its canonical path; a built-in's name), and how diagnostics name it.
  struct Open
  {
    std::string identity;
    std::string file;
  };

  static std::string identity(const std::string& file)
  {
    if (file.starts_with("<builtin>")) return file;
    std::error_code error;
    auto canonical = std::filesystem::weakly_canonical(file, error);
    return error ? file : canonical.string();
  }

  // False, reported at `where` (the include), when `file` is already being
  // composed (an include cycle, named file by file) or includes nest deeper
  // than k_max_include_depth.
  bool may_open(const std::string& file, const Diagnostic& where)
  {
    auto id = identity(file);
    auto open = std::find_if(m_stack.begin(), m_stack.end(), [&](const Open& o) { return o.identity == id; });
    if (open != m_stack.end()) {
      std::string cycle;
      for (auto it = open; it != m_stack.end(); ++it) cycle += printable(it->file) + " includes ";
      report(where, fmt::format("include cycle: {}{}", cycle, printable(open->file)));
      return false;
    }
    if (m_stack.size() > k_max_include_depth) {
      report(where, fmt::format("profile includes nest deeper than {} (at {})", k_max_include_depth, printable(file)));
      return false;
    }
    return true;
  }

  void report(const Diagnostic& where, std::string message)
  {
    auto diagnostic = where;
    diagnostic.message = std::move(message);
    m_sink.push_back(std::move(diagnostic));
  }

  static std::string position(const YamlReader& reader, const YAML::Node& node)
  {
    auto mark = node.Mark();
    return fmt::format("{}:{}:{}", reader.file(), mark.line + 1, mark.column + 1);
  }

  void read_document(Profile& out, YamlReader& reader, const YAML::Node& root)
  {
    if (!reader.check_map(root,
                          "the profile",
                          {"name",
                           "version",
                           "description",
                           "validated_with",
                           "include",
                           "options",
                           "ports",
                           "requirements",
                           "egress",
                           "loadbalancer"})) {
      return;
    }
    if (auto includes = root["include"]) {
      if (reader.expect_sequence(includes, "include")) {
        for (const auto& item : includes) {
          auto name = reader.string(item, "an include");
          if (!name) continue;
          auto mark = item.Mark();
          compose(out, *name, reader.file(), {reader.file(), mark.line + 1, mark.column + 1, {}});
          out.includes.push_back(*name);
        }
      }
    }
    if (auto name = root["name"]) {
      if (auto text = reader.string(name, "name")) out.name = *text;
    } else {
      reader.error(root, "the profile has no 'name'");
    }
    if (auto node = root["version"]) {
      if (auto text = reader.string(node, "version")) out.version = *text;
    }
    if (auto node = root["description"]) {
      if (auto text = reader.string(node, "description")) out.description = *text;
    }
    if (auto node = root["validated_with"]) {
      if (reader.check_map(node, "validated_with",
                           {"kubernetes", "flannel", "mongodb", "elasticsearch", "haproxy", "calico", "cilium", "weave",
                            "rke2", "k3s"})) {
        for (const auto& entry : node) {
          if (auto text = reader.string(entry.second, "a version")) out.validated_with[entry.first.Scalar()] = *text;
        }
      }
    }
    if (auto node = root["options"]) read_options(reader, node);
    if (auto node = root["ports"]) read_ports(reader, node);
    if (auto node = root["requirements"]) read_requirements(out, reader, node);
    if (auto node = root["egress"]) read_egress(out, reader, node);
    if (auto node = root["loadbalancer"]) read_loadbalancer(reader, node);
  }

  void read_options(YamlReader& reader, const YAML::Node& node)
  {
    if (!node.IsMap()) {
      reader.error(node, "options must be a mapping of option name to its description");
      return;
    }
    for (const auto& entry : node) {
      OptionSpec option;
      option.name = entry.first.Scalar();
      option.defined_at = position(reader, entry.first);
      const auto& spec = entry.second;
      if (!reader.check_map(spec, "an option", {"default", "default_if_ipv6", "values", "sets_port", "description"})) {
        continue;
      }
      if (auto value = spec["default"]) option.default_value = reader.string(value, "default").value_or("");
      if (auto value = spec["default_if_ipv6"]) {
        option.default_if_ipv6 = reader.string(value, "default_if_ipv6").value_or("");
      }
      if (auto values = spec["values"]; values && reader.expect_sequence(values, "values")) {
        for (const auto& value : values) option.values.push_back(reader.string(value, "a value").value_or(""));
      }
      if (auto port = spec["sets_port"]) option.sets_port = reader.string(port, "sets_port").value_or("");
      if (auto text = spec["description"]) option.description = reader.string(text, "description").value_or("");
      if (!option.sets_port.empty()) check_port_values(reader, option, spec);
      if (!option.values.empty() &&
          std::find(option.values.begin(), option.values.end(), option.default_value) == option.values.end()) {
        reader.error(spec, fmt::format("option '{}' defaults to a value it does not allow", printable(option.name)));
      }
      if (!option.values.empty() && !option.default_if_ipv6.empty() &&
          std::find(option.values.begin(), option.values.end(), option.default_if_ipv6) == option.values.end()) {
        reader.error(spec["default_if_ipv6"],
                     fmt::format("option '{}' defaults (with IPv6 nodes) to a value it does not allow", printable(option.name)));
      }
      auto name = option.name;
      m_options.put(name, std::move(option));
    }
  }

  // An option that moves a port can only take ports: plan would otherwise
  // keep the profile's port for a value like "99999" and say nothing.
  static void check_port_values(YamlReader& reader, const OptionSpec& option, const YAML::Node& spec)
  {
    auto check = [&](const YAML::Node& value) {
      if (!value.IsScalar() || parse_port_range(value.Scalar()).range) return;
      reader.error(value, fmt::format("option '{}' value '{}' is not a port (1-65535) (it sets port '{}')",
                                      printable(option.name), printable(value.Scalar()), printable(option.sets_port)));
    };
    if (auto value = spec["default"]) check(value);
    if (auto values = spec["values"]; values && values.IsSequence()) {
      for (const auto& value : values) check(value);
    }
  }

  void read_ports(YamlReader& reader, const YAML::Node& node)
  {
    if (!node.IsMap()) {
      reader.error(node, "ports must be a mapping of port name to its definition");
      return;
    }
    for (const auto& entry : node) {
      NamedPort port;
      port.name = entry.first.Scalar();
      const auto& spec = entry.second;
      if (!reader.check_map(spec, fmt::format("port '{}'", printable(port.name)), {"port", "protocol", "purpose", "encapsulation", "vni"})) continue;
      bool ok = true;
      if (auto protocols = spec["protocol"]) {
        auto read_one = [&](const YAML::Node& item) {
          auto text = reader.string(item, "protocol");
          auto protocol = text ? parse_protocol(*text) : std::nullopt;
          if (text && !protocol) reader.error(item, fmt::format("unknown protocol '{}' ({})", printable(*text), protocol_names()));
          if (protocol) port.protocols.push_back(*protocol);
          ok = ok && protocol.has_value();
        };
        if (protocols.IsSequence()) {
          for (const auto& item : protocols) read_one(item);
        } else {
          read_one(protocols);
        }
      } else {
        reader.error(spec, fmt::format("port '{}' has no protocol", printable(port.name)));
        ok = false;
      }
      bool portless = port.protocols.size() == 1 && !has_ports(port.protocols[0]);
      if (port.protocols.size() > 1 && !std::ranges::all_of(port.protocols, has_ports)) {
        reader.error(spec["protocol"], fmt::format("port '{}' mixes protocols with and without port numbers; give each its own port",
                                                   printable(port.name)));
        ok = false;
      }
      if (auto range = spec["port"]) {
        if (portless) {
          reader.error(range, fmt::format("a {} port has no port number", to_string(port.protocols[0])));
          ok = false;
        } else if (auto parsed = reader.port_range(range, fmt::format("port '{}'", printable(port.name)))) {
          port.range = *parsed;
        } else {
          ok = false;
        }
      } else if (!portless) {
        reader.error(spec, fmt::format("port '{}' has no port number", printable(port.name)));
        ok = false;
      }
      if (auto purpose = spec["purpose"]) port.purpose = reader.string(purpose, "purpose").value_or("");
      ok = read_encapsulation(reader, spec, port) && ok;
      if (!ok) continue;
      auto name = port.name;
      m_ports.put(name, std::move(port));
    }
  }

  // `encapsulation` (vxlan, geneve, wireguard) and its `vni` (vxlan, geneve:
  // 0 to 2^24-1), on a UDP port only.
  static bool read_encapsulation(YamlReader& reader, const YAML::Node& spec, NamedPort& port)
  {
    auto node = spec["encapsulation"];
    auto vni = spec["vni"];
    if (!node) {
      if (vni) reader.error(vni, "vni belongs to an encapsulation (vxlan or geneve)");
      return !vni;
    }
    auto text = reader.string(node, "encapsulation");
    auto kind = text ? parse_encapsulation(*text) : std::nullopt;
    if (!kind || *kind == Encapsulation::none) {
      if (text) reader.error(node, fmt::format("unknown encapsulation '{}' (vxlan, geneve, wireguard)", printable(*text)));
      return false;
    }
    if (port.protocols != std::vector<Protocol>{Protocol::udp}) {
      reader.error(node, "an encapsulation is carried on UDP: give it a port of protocol udp alone");
      return false;
    }
    port.encapsulation = *kind;
    if (vni) {
      if (*kind == Encapsulation::wireguard) {
        reader.error(vni, "wireguard has no vni");
        return false;
      }
      auto text_vni = reader.string(vni, "vni");
      std::uint32_t number = 0;
      auto parsed = text_vni ? std::from_chars(text_vni->data(), text_vni->data() + text_vni->size(), number)
                             : std::from_chars_result{};
      if (!text_vni || parsed.ec != std::errc() || parsed.ptr != text_vni->data() + text_vni->size() ||
          number > 0xffffff) {
        if (text_vni) reader.error(vni, "vni must be a number from 0 to 16777215 (24 bits)");
        return false;
      }
      port.vni = number;
    }
    return true;
  }

  std::vector<Role> read_roles(YamlReader& reader, const YAML::Node& node, std::string_view what)
  {
    std::vector<Role> roles;
    if (node.IsSequence()) {
      for (const auto& item : node) {
        if (auto role = reader.role(item, what)) roles.push_back(*role);
      }
    } else if (auto role = reader.role(node, what)) {
      roles.push_back(*role);
    }
    return roles;
  }

  void read_requirements(Profile& out, YamlReader& reader, const YAML::Node& node)
  {
    if (!reader.expect_sequence(node, "requirements")) return;
    for (const auto& item : node) {
      if (!reader.check_map(item,
                            "a requirement",
                            {"from", "to", "ports", "purpose", "optional", "when", "expect", "reason", "remove",
                             "max_rtt_ms"})) {
        continue;
      }
      Requirement base;
      base.origin = out.name.empty() ? reader.file() : out.name;
      base.defined_at = position(reader, item);
      std::vector<Role> from;
      std::vector<Role> to;
      if (auto node_from = item["from"]) from = read_roles(reader, node_from, "from");
      else reader.error(item, "a requirement needs 'from'");
      if (auto node_to = item["to"]) to = read_roles(reader, node_to, "to");
      else reader.error(item, "a requirement needs 'to'");
      for (auto role : from) {
        if (role == Role::vip) reader.error(item["from"], "'vip' can only be a destination");
      }
      for (auto role : to) {
        if (role == Role::any) reader.error(item["to"], "'any' can only be a source");
      }
      if (auto purpose = item["purpose"]) base.purpose = reader.string(purpose, "purpose").value_or("");
      if (auto optional = item["optional"]) base.optional = reader.boolean(optional, "optional").value_or(false);
      if (auto reason = item["reason"]) base.reason = reader.string(reason, "reason").value_or("");
      if (auto bound = item["max_rtt_ms"]) {
        auto text = reader.string(bound, "max_rtt_ms");
        unsigned value = 0;
        auto parsed = text ? std::from_chars(text->data(), text->data() + text->size(), value) : std::from_chars_result{};
        if (!text || parsed.ec != std::errc() || parsed.ptr != text->data() + text->size() || value == 0 || value > 60000) {
          if (text) reader.error(bound, "max_rtt_ms must be a number of milliseconds from 1 to 60000");
        } else {
          base.max_rtt = std::chrono::milliseconds(value);
        }
      }
      if (auto expect = item["expect"]) {
        auto text = reader.string(expect, "expect");
        if (text == "deny") base.expect = Expect::deny;
        else if (text && *text != "allow") reader.error(expect, "expect must be allow or deny");
      }
      if (auto when = item["when"]) base.when = read_conditions(reader, when);
      bool remove = false;
      if (auto node_remove = item["remove"]) remove = reader.boolean(node_remove, "remove").value_or(false);
      auto ports = item["ports"];
      if (!ports) {
        reader.error(item, "a requirement needs 'ports' (names from the ports section)");
        continue;
      }
      if (!reader.expect_sequence(ports, "ports")) continue;
      for (const auto& port_node : ports) {
        auto text = reader.string(port_node, "a port name");
        if (!text) continue;
        auto slash = text->find('/');
        std::string name = text->substr(0, slash);
        const NamedPort* port = m_ports.find(name);
        if (!port) {
          reader.error(port_node, fmt::format("unknown port name '{}' (define it under ports)", printable(name)));
          continue;
        }
        std::vector<Protocol> protocols = port->protocols;
        if (slash != std::string::npos) {
          auto only = parse_protocol(text->substr(slash + 1));
          if (!only || std::find(protocols.begin(), protocols.end(), *only) == protocols.end()) {
            reader.error(port_node, fmt::format("port '{}' has no protocol '{}'", printable(name),
                                                   printable(text->substr(slash + 1))));
            continue;
          }
          protocols = {*only};
        }
        for (auto from_role : from) {
          for (auto to_role : to) {
            for (auto protocol : protocols) {
              auto requirement = base;
              requirement.from = from_role;
              requirement.to = to_role;
              requirement.protocol = protocol;
              requirement.port = name;
              requirement.range = port->range;
              if (requirement.purpose.empty()) requirement.purpose = port->purpose;
              if (!merge(reader, port_node, std::move(requirement), remove)) return;
            }
          }
        }
      }
    }
  }

  // Adds, replaces or removes one requirement. False once the composition
  // holds k_max_values requirements and this one would be another (reported
  // once): each from-role, to-role, port and protocol of a list counts, so
  // a few lines can ask for millions.
  bool merge(YamlReader& reader, const YAML::Node& at, Requirement requirement, bool remove)
  {
    auto key = requirement.key();
    if (remove) {
      if (!m_requirements.remove(key)) {
        reader.error(at, fmt::format("'remove' matches no requirement ({})", printable(key)));
      } else {
        m_removals.put(key, std::move(requirement));
      }
      return true;
    }
    m_removals.remove(key);
    if (m_requirements.size() >= k_max_values && !m_requirements.find(key)) {
      if (!m_too_many_requirements) {
        reader.error(at, fmt::format("more than {} requirements (each from-role, to-role, port and protocol counts "
                                     "once); this is not a profile portmatrix reads",
                                     k_max_values));
      }
      m_too_many_requirements = true;
      return false;
    }
    m_requirements.put(key, std::move(requirement));
    return true;
  }

  void read_egress(Profile& out, YamlReader& reader, const YAML::Node& node)
  {
    if (!reader.expect_sequence(node, "egress")) return;
    for (const auto& item : node) {
      auto host = read_egress_host(reader, item, EgressEntryKind::profile);
      if (!host) continue;
      host->origin = out.name;
      bool remove = item["remove"] && reader.boolean(item["remove"], "remove").value_or(false);
      if (remove) {
        if (!m_egress.remove(host->host)) {
          reader.error(item, fmt::format("'remove' matches no host '{}'", printable(host->host)));
        }
      } else {
        auto name = host->host;
        m_egress.put(name, std::move(*host));
      }
    }
  }

  void read_loadbalancer(YamlReader& reader, const YAML::Node& node)
  {
    if (!reader.check_map(node, "loadbalancer", {"frontends"})) return;
    auto frontends = node["frontends"];
    if (!frontends || !reader.expect_sequence(frontends, "frontends")) return;
    for (const auto& item : frontends) {
      if (!reader.check_map(item, "a frontend", {"name", "port", "backend", "health"})) continue;
      Frontend frontend;
      frontend.name = item["name"] ? reader.string(item["name"], "name").value_or("") : "";
      frontend.port = item["port"] ? reader.string(item["port"], "port").value_or("") : "";
      if (frontend.name.empty() || frontend.port.empty()) {
        reader.error(item, "a frontend needs 'name' and 'port'");
        continue;
      }
      if (!m_ports.find(frontend.port)) {
        reader.error(item["port"], fmt::format("unknown port name '{}'", printable(frontend.port)));
        continue;
      }
      if (auto backend = item["backend"]) frontend.backend = reader.role(backend, "backend").value_or(Role::master);
      if (auto health = item["health"]) {
        auto text = reader.string(health, "health");
        if (text == "apiserver") frontend.health = HealthCheck::apiserver;
        else if (text && *text != "tcp") reader.error(health, "health must be apiserver or tcp");
      }
      auto name = frontend.name;
      m_frontends.put(name, std::move(frontend));
    }
  }

  Diagnostics& m_sink;
  std::vector<Open> m_stack;
  Keyed<OptionSpec> m_options;
  Keyed<NamedPort> m_ports;
  Keyed<Requirement> m_requirements;
  Keyed<Requirement> m_removals;
  bool m_too_many_requirements = false;
  Keyed<EgressHost> m_egress;
  Keyed<Frontend> m_frontends;
};

Diagnostic
at(const std::string& defined_at, std::string message)
{
  // defined_at is "file:line:column"; split from the right (paths may hold ':').
  Diagnostic diagnostic{defined_at, 0, 0, std::move(message)};
  auto last = defined_at.rfind(':');
  auto middle = last == std::string::npos ? std::string::npos : defined_at.rfind(':', last - 1);
  if (middle != std::string::npos) {
    diagnostic.file = defined_at.substr(0, middle);
    diagnostic.line = std::atoi(defined_at.c_str() + middle + 1);
    diagnostic.column = std::atoi(defined_at.c_str() + last + 1);
  }
  return diagnostic;
}

// Checks that need the whole composition: conditions (of requirements and
// egress hosts) name real options and allowed values, options set known
// ports, and no deny requirement contradicts an allow one. Bounded like a
// file's reading: at most k_max_errors errors, and lookups by hash, so a
// profile of k_max_values requirements is checked in seconds at most.
void
validate(const Profile& profile, Diagnostics& sink)
{
  BoundedDiagnostics errors("<profile " + printable(profile.name) + ">", sink);
  std::unordered_map<std::string_view, std::pair<const OptionSpec*, std::unordered_set<std::string_view>>> options;
  for (const auto& option : profile.options) {
    auto& [spec, values] = options[option.name];
    spec = &option;
    values.insert(option.values.begin(), option.values.end());
  }
  std::unordered_set<std::string_view> ports;
  for (const auto& port : profile.ports) ports.insert(port.name);
  auto check_condition = [&](const Condition& when, const std::string& defined_at) {
    auto it = options.find(when.option);
    if (it == options.end()) {
      errors.add(at(defined_at, fmt::format("'when' names unknown option '{}'", printable(when.option))));
    } else if (const auto& [option, values] = it->second; !values.empty() && !values.contains(when.value)) {
      errors.add(at(defined_at, fmt::format("option '{}' cannot be '{}'", printable(option->name),
                                            printable(when.value))));
    }
  };
  // Allows by destination and protocol: a deny is compared with those only.
  std::map<std::pair<Role, Protocol>, std::vector<const Requirement*>> allows;
  for (const auto& requirement : profile.requirements) {
    if (requirement.expect == Expect::allow) allows[{requirement.to, requirement.protocol}].push_back(&requirement);
  }
  errors.run([&] {
    for (const auto& requirement : profile.requirements) {
      for (const auto& when : requirement.when) check_condition(when, requirement.defined_at);
    }
    for (const auto& host : profile.egress) {
      for (const auto& when : host.when) check_condition(when, host.defined_at);
    }
    for (const auto& option : profile.options) {
      if (!option.sets_port.empty() && !ports.contains(option.sets_port)) {
        errors.add(at(option.defined_at, fmt::format("option '{}' sets unknown port '{}'", printable(option.name),
                                                     printable(option.sets_port))));
      }
    }
    for (const auto& deny : profile.requirements) {
      if (deny.expect != Expect::deny) continue;
      auto group = allows.find({deny.to, deny.protocol});
      if (group == allows.end()) continue;
      for (const auto* allow : group->second) {
        // Exclusive: some option must have one value for the deny, another for the allow.
        bool exclusive = std::any_of(deny.when.begin(), deny.when.end(), [&](const Condition& a) {
          return std::any_of(allow->when.begin(), allow->when.end(),
                             [&](const Condition& b) { return a.option == b.option && a.value != b.value; });
        });
        if ((allow->from == deny.from || allow->from == Role::any) && allow->range.overlaps(deny.range) && !exclusive) {
          errors.add(at(deny.defined_at, fmt::format("deny {} contradicts allow {} defined at {}", printable(deny.key()),
                                                     printable(allow->key()), allow->defined_at)));
        }
      }
    }
  });
}

Expected<Profile, Diagnostics>
finish(Profile profile, Diagnostics diagnostics)
{
  if (diagnostics.empty()) validate(profile, diagnostics);
  if (!diagnostics.empty()) return unexpected(std::move(diagnostics));
  return profile;
}

} // namespace

Expected<Profile, Diagnostics>
load_profile(std::string_view spec, const Diagnostic& named_at)
{
  Diagnostics diagnostics;
  Profile profile;
  Composer composer(diagnostics);
  auto report = [&](std::string message) {
    auto diagnostic = named_at;
    diagnostic.message = std::move(message);
    diagnostics.push_back(std::move(diagnostic));
  };
  std::vector<std::string> parts;
  bool empty_name = false;
  for (std::size_t start = 0; start <= spec.size() && !spec.empty();) {
    auto comma = std::min(spec.find(',', start), spec.size());
    auto one = spec.substr(start, comma - start);
    start = comma + 1;
    if (one.empty()) {
      empty_name = true;
      continue;
    }
    composer.compose(profile, one, {}, named_at);
    parts.emplace_back(one);
  }
  if (spec.empty()) report("no profile named");
  if (empty_name) {
    report(fmt::format("'{}' has an empty profile name (a comma with no name on one side)", printable(spec)));
  }
  if (parts.size() > 1) {
    // A composition on the command line: it is its own profile, made of the parts.
    profile.name = std::string(spec);
    profile.version.clear();
    profile.description = "composed of " + std::string(spec);
    profile.includes = parts;
  }
  composer.finish(profile);
  return finish(std::move(profile), std::move(diagnostics));
}

Expected<Profile, Diagnostics>
parse_profile(std::string_view text, std::string_view file)
{
  Diagnostics diagnostics;
  Profile profile;
  Composer composer(diagnostics);
  composer.compose_text(profile, text, std::string(file));
  composer.finish(profile);
  return finish(std::move(profile), std::move(diagnostics));
}

} // namespace portmatrix
