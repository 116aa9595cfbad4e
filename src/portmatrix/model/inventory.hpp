// The concrete cluster: nodes with addresses and roles, the VIP, options,
// port overrides and the networks allowed to administer the nodes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/profile.hpp"
#include "model/types.hpp"
#include "util/expected.hpp"

namespace portmatrix {

// How to reach a node over SSH (the inventory's `ssh` section, top level or
// per node). Every field is optional: unset means "ssh's own default"
// (~/.ssh/config, then built-in). Values are validated on load, so none
// starts with '-' or holds white space or control characters where ssh would
// read it as something else.
struct SshSettings
{
  std::optional<std::string> host; // per node only: what ssh connects to (default: the node's address)
  std::optional<std::string> user;
  std::optional<std::uint16_t> port;
  std::optional<std::string> identity_file;
  std::optional<std::string> proxy_jump; // passed to ssh -J as is
  std::optional<bool> sudo;              // run node commands through `sudo -n`
  std::vector<std::string> options;      // each passed as -o; a node's follow the top level's
};

struct Node
{
  std::string name;
  std::string address; // IPv4 or IPv6, validated
  bool ipv6 = false;
  std::vector<Role> roles;
  std::string interface; // optional; keepalived needs it on load-balancer nodes
  SshSettings ssh;       // this node's own `ssh` keys (merged with the top level's by the caller)

  bool has(Role role) const;
};

struct LoadBalancer
{
  std::string vip;
  bool ipv6 = false;
  std::optional<std::uint16_t> port; // the API frontend's port; default: the kube-apiserver port
  std::string interface = "eth0";    // where keepalived puts the VIP (per-node `interface` wins)
  std::uint8_t router_id = 0;        // VRRP id; 0: derived from the cluster name
};

// A value the inventory set, with where it was set (for later diagnostics).
template <class T>
struct Positioned
{
  T value;
  Diagnostic at; // message empty
};

// The inventory's changes to the profile's egress list: mirrors, air-gapped
// registries. Applied after the profile's conditions: remove, replace, add.
struct EgressReplacement
{
  std::string host;              // a profile entry's host, as the profile writes it
  std::vector<std::string> with; // concrete hosts that take its place (its ports and purpose kept)
};

struct EgressOverrides
{
  std::vector<Positioned<EgressHost>> add;
  std::vector<Positioned<std::string>> remove; // profile entries' hosts
  std::vector<Positioned<EgressReplacement>> replace;
  // The proxy the agents' egress check uses (http://[user:pass@]host:port)
  // and the hosts it reaches directly; empty: each agent's environment.
  std::string proxy;
  std::string no_proxy;
};

struct Inventory
{
  std::string file;
  std::string cluster = "cluster";
  std::string profile = "apinizer"; // built-in name, path, or comma-separated composition
  Diagnostic profile_at; // the `profile:` key (line 0: not set, the default)
  std::map<std::string, Positioned<std::string>> options;
  std::map<std::string, Positioned<PortRange>> port_overrides;
  std::optional<LoadBalancer> loadbalancer;
  std::vector<std::string> admin_cidrs;  // SSH and the agent's control port are open to these
  std::vector<std::string> client_cidrs; // treated as `client` sources, like client nodes
  std::vector<std::string> cloud_lb_cidrs; // the cloud provider's health-check ranges: `cloud_lb` sources
  std::uint16_t ssh_port = 22;
  std::uint16_t control_port = 7946;
  Diagnostic ssh_port_at;     // where the inventory set it (line 0: the default)
  Diagnostic control_port_at; // likewise
  std::vector<Node> nodes;
  EgressOverrides egress;
  SshSettings ssh; // the top-level `ssh` section (no host)

  const Node* find(std::string_view name) const;
};

// Parses an inventory. Every problem (syntax, unknown keys, unknown roles,
// duplicate names or addresses, bad ports or CIDRs, nodes without roles) is
// returned at once with its position.
Expected<Inventory, Diagnostics> parse_inventory(std::string_view text, std::string_view file);
Expected<Inventory, Diagnostics> load_inventory(std::string_view path);

// Checks the inventory's options and port overrides against a profile:
// unknown options or values (a port-setting option's value must be a port),
// overrides of ports the profile does not define, egress removals or
// replacements of hosts the profile does not list, added egress hosts the
// profile already lists, and an ssh_port or agent control_port that is a TCP
// port the profile has some node of the inventory receive (the agent, or sshd,
// could not bind it next to that service).
Diagnostics check_against(const Inventory& inventory, const Profile& profile);

// The option's value for this inventory: the inventory's own choice, else
// `default_if_ipv6` when the option has one and any node's address is IPv6,
// else the option's default.
std::string option_value(const Inventory& inventory, const OptionSpec& option);

// True when `text` is an IPv4 or IPv6 address; sets `ipv6`. Text with an
// embedded NUL is none (inet_pton would read only the part before it).
bool parse_address(std::string_view text, bool& ipv6);
// The host `text` names, as bytes, so that spellings of one address compare
// equal ("2001:DB8::1", "2001:db8:0::1"): 4 bytes for IPv4 and for an
// IPv4-mapped IPv6 address (::ffff:10.0.0.1 is 10.0.0.1), else 16. nullopt
// when `text` is not an address.
std::optional<std::string> address_identity(std::string_view text);
// True when `text` is an address or address/prefix; sets `ipv6`.
bool parse_cidr(std::string_view text, bool& ipv6);

} // namespace portmatrix
