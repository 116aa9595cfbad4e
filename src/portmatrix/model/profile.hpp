// The requirement data: named ports, requirements between roles, the egress
// host list and the load-balancer frontends. A profile is YAML, either built
// into the binary (profiles/) or read from a path, and may include others.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/types.hpp"
#include "util/expected.hpp"

namespace portmatrix {

// A port (or range) with a name, so inventories can move it ("all default
// ports can be changed") and every requirement that names it follows.
struct NamedPort
{
  std::string name;
  PortRange range;
  std::vector<Protocol> protocols;
  std::string purpose;
  // The overlay's tunnel on this UDP port: its flows are also probed in its
  // shape (YAML `encapsulation: vxlan`, `vni: 1`).
  Encapsulation encapsulation = Encapsulation::none;
  std::uint32_t vni = 0;
};

// An inventory option a requirement can depend on (flannel_backend: wireguard).
struct OptionSpec
{
  std::string name;
  std::string default_value;
  std::vector<std::string> values; // empty: any value
  std::string sets_port;           // a named port this option's value moves, or empty
  // The default when any node of the inventory has an IPv6 address (YAML
  // `default_if_ipv6`; flannel's WireGuard IPv6 port), or empty: `default_value`.
  std::string default_if_ipv6;
  std::string description;
  std::string defined_at; // "file:line:column" of its name
};

struct Condition
{
  std::string option;
  std::string value;
  friend bool operator==(const Condition&, const Condition&) = default;
};

// Conditions as profiles and reports write them: "a=b, c=d" ("" for none).
std::string to_string(const std::vector<Condition>& conditions);

// One from-role -> to-role requirement on one protocol of one named port.
struct Requirement
{
  Role from = Role::any;
  Role to = Role::any;
  Protocol protocol = Protocol::tcp;
  std::string port; // a NamedPort's name
  PortRange range;  // that port's range, as the profile (or inventory) sets it
  std::string purpose;
  bool optional = false;
  // Active only when every one of these options has its value (YAML `when`
  // with one or more options); empty: always.
  std::vector<Condition> when;
  Expect expect = Expect::allow;
  std::string reason; // why it is there: the guide's table, or the correction's argument
  // The round trip between its nodes should stay below this (YAML
  // `max_rtt_ms`; etcd's peers): above it, the check warns. 0: no bound.
  std::chrono::milliseconds max_rtt{0};
  std::string origin;     // the profile that defined (or last changed) it
  std::string defined_at; // "file:line:column" of that definition

  // Identity for overrides and diffs: two profiles talk about "the same"
  // requirement when these match ("worker>master:etcd/tcp", with " deny" for
  // an expect-deny one, so a deny never replaces the allow of the same flow).
  std::string key() const;
};

// How a client talks to an egress host on a port: TLS (checked with SNI and
// certificate verification) or plain HTTP (apt's archive.ubuntu.com on 80).
enum class EgressScheme { https, http };
std::string_view to_string(EgressScheme scheme);

struct EgressPort
{
  std::uint16_t port = 443;
  EgressScheme scheme = EgressScheme::https;
  friend bool operator==(const EgressPort&, const EgressPort&) = default;
};

// One entry of the egress list. `host` is what the guide writes, possibly a
// wildcard ("*.docker.io"); a wildcard cannot be resolved, so `serves` names
// the concrete hosts behind it, which are what gets checked.
struct EgressHost
{
  std::string host;
  std::vector<std::string> serves;   // concrete hosts behind a wildcard (or none)
  std::vector<EgressPort> ports;     // default: 443/https
  std::vector<Condition> when;       // needed only when every option has its value
  std::string purpose;
  std::string reason;
  std::string origin;
  std::string defined_at; // "file:line:column"

  bool wildcard() const { return host.starts_with("*."); }
  // What a check connects to: `serves` if any, else `host` unless it is a wildcard.
  std::vector<std::string> concrete_hosts() const;
};

enum class HealthCheck { apiserver, tcp };

// A load-balancer frontend: traffic to VIP:port goes to `backend` nodes.
struct Frontend
{
  std::string name;
  std::string port; // a NamedPort's name
  Role backend = Role::master;
  HealthCheck health = HealthCheck::tcp;
};

struct Profile
{
  std::string name;
  std::string version;
  std::string description;
  std::vector<std::string> includes;                // in the order they were composed
  std::map<std::string, std::string> validated_with; // component -> version
  std::vector<OptionSpec> options;
  std::vector<NamedPort> ports;
  std::vector<Requirement> requirements;
  // Requirements an include defined and this profile removed (`remove: true`),
  // as the removal wrote them: its reason says why (diff shows it).
  std::vector<Requirement> removals;
  std::vector<EgressHost> egress;
  std::vector<Frontend> frontends;

  const NamedPort* find_port(std::string_view name) const;
  const OptionSpec* find_option(std::string_view name) const;
};

// Names of the profiles built into the binary.
std::vector<std::string> builtin_profile_names();
// The YAML text of a built-in profile, or nullopt.
std::optional<std::string_view> builtin_profile_text(std::string_view name);

// Loads a profile by built-in name or path, with its includes composed in.
// `spec` may list several, comma separated ("kubernetes-1.31,flannel-0.27"):
// they are composed left to right; an empty name among them is an error.
// `named_at` is where the spec was written (an inventory's `profile:` key, or
// a command-line flag or argument, line 0): errors about the spec itself (an
// unknown, unreadable or empty name) are reported there. All problems are
// returned at once.
Expected<Profile, Diagnostics> load_profile(std::string_view spec,
                                            const Diagnostic& named_at = {"--profile", 0, 0, {}});

// Parses one profile's text (includes resolved through built-ins and paths
// relative to `file`). Exposed for the fuzzer and tests.
Expected<Profile, Diagnostics> parse_profile(std::string_view text, std::string_view file);

} // namespace portmatrix
