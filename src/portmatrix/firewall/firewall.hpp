// Host firewall generators: one per backend behind one small interface. Each
// admits exactly what a node must receive (its Plan::ingress), plus
// established traffic, loopback, the ICMP that must pass, and SSH and the
// agent's control port from admin_cidrs; everything else new inbound is dropped.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "plan/plan.hpp"

namespace portmatrix {

enum class FirewallFormat { nftables, iptables, firewalld, ufw };

std::optional<FirewallFormat> parse_firewall_format(std::string_view text);
std::string_view to_string(FirewallFormat format);

class FirewallGenerator
{
public:
  virtual ~FirewallGenerator() = default;
  // The whole ruleset (or script) for `node`, ready to apply; the header names it.
  std::string render(const Node& node) const;
  // The one ruleset of `nodes`, a group of ruleset_groups(), ready to apply on
  // each of them; the header names the group. Rules depend on a node only
  // through its roles (Plan::ingress): keep it so, or ruleset_groups (plan/plan.hpp) lies.
  virtual std::string render_group(std::span<const Node* const> nodes) const = 0;
  // File name used by `firewall --all --out DIR`.
  virtual std::string file_name(const Node& node) const = 0;
};

// `plan` must outlive the generator. Work shared by all nodes (address sets)
// is done once here, not per node.
std::unique_ptr<FirewallGenerator> make_firewall_generator(FirewallFormat format, const Plan& plan);

// Shared by the generators -------------------------------------------------

// ICMP types that must pass for path MTU discovery, errors and diagnostics.
extern const char* const k_icmp_types[];
extern const char* const k_icmpv6_types[];

// The name ip6tables and firewalld give an ICMPv6 type that nftables calls
// `nft_name` (nd-neighbor-solicit -> neighbour-solicitation, ...).
std::string icmpv6_legacy_name(std::string_view nft_name);

// The comment lines that open every generated file, naming the node, or the
// nodes of a group, the ruleset is for.
std::string firewall_header(const Plan& plan, std::span<const Node* const> nodes, std::string_view backend);

// "master", "any" ... and the admin pseudo-source.
std::string source_label(Role role);

// "kube-apiserver, kubelet", cut to fit backends' comment limits.
std::string rule_comment(const IngressRule& rule, std::size_t limit = 100);

// Port lists of at most 15 ports each, a range counting as two ("80,30000:32767"):
// the limit of iptables' multiport match and of ufw.
std::vector<std::string> port_lists(const std::vector<PortRange>& ports);

// Name of the ipset (iptables, firewalld) holding a role's addresses: "pm-master-v4".
std::string ipset_name(std::string_view role, bool ipv6);

// The TCP ports SSH and the agent's control channel use.
std::vector<PortRange> admin_ports(const Plan& plan);

std::unique_ptr<FirewallGenerator> make_nftables_generator(const Plan& plan);
std::unique_ptr<FirewallGenerator> make_iptables_generator(const Plan& plan);
std::unique_ptr<FirewallGenerator> make_firewalld_generator(const Plan& plan);
std::unique_ptr<FirewallGenerator> make_ufw_generator(const Plan& plan);

} // namespace portmatrix
