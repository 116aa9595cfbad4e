// iptables backend: a shell script that loads ipsets (one per role and family,
// so the rule count stays flat) with `ipset restore`, then the chain
// PORTMATRIX-INPUT with iptables-restore/ip6tables-restore --noflush, and
// hooks that chain first into INPUT once. A hash:net set takes an IPv4 range
// "a-b" (ipset(8): netaddr := fromaddr-toaddr | ip/cidr, for family inet; the
// kernel stores the prefixes that cover it exactly) and IPv6 prefixes only,
// so consecutive peers are one line for IPv4 and their prefixes for IPv6.
// (A hash:net lookup probes once per distinct prefix length in the set: a few
// for runs of peers, against one for single addresses; new connections only.) Declaring the chain in the restore
// input flushes it, so applying twice gives the same state; other chains and
// tables are left alone.
#include <fmt/format.h>

#include "firewall/firewall.hpp"

namespace portmatrix {
namespace {

constexpr const char* k_chain = "PORTMATRIX-INPUT";

class IptablesGenerator : public FirewallGenerator
{
public:
  explicit IptablesGenerator(const Plan& plan) : m_plan(plan)
  {
    m_ipsets = "ipset restore -exist <<'PORTMATRIX_IPSET'\n";
    add_ipset("admin", plan.admin_sources);
    for (const auto& [role, sources] : plan.role_sources) add_ipset(to_string(role), sources);
    m_ipsets += "PORTMATRIX_IPSET\n";
  }

  std::string render_group(std::span<const Node* const> nodes) const override
  {
    std::string out = "#!/bin/sh\n" + firewall_header(m_plan, nodes, "iptables");
    out += "# Apply with: sh FILE (as root). Needs ipset, iptables-restore and ip6tables-restore.\n";
    out += "set -e\n\n";
    out += m_ipsets;
    auto rules = m_plan.ingress(*nodes.front());
    for (bool ipv6 : {false, true}) {
      out += fmt::format("\n{}-restore --noflush <<'PORTMATRIX_RULES'\n*filter\n:{} - [0:0]\n",
                         ipv6 ? "ip6tables" : "iptables",
                         k_chain);
      out += fmt::format("-A {} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n", k_chain);
      out += fmt::format("-A {} -m conntrack --ctstate INVALID -j DROP\n", k_chain);
      out += fmt::format("-A {} -i lo -j ACCEPT\n", k_chain);
      for (auto type = ipv6 ? k_icmpv6_types : k_icmp_types; *type; ++type) {
        out += fmt::format("-A {} -p {} --{}-type {} -j ACCEPT\n",
                           k_chain,
                           ipv6 ? "ipv6-icmp" : "icmp",
                           ipv6 ? "icmpv6" : "icmp",
                           ipv6 ? icmpv6_legacy_name(*type) : std::string(*type));
      }
      IngressRule admin{Role::any, Protocol::tcp, admin_ports(m_plan), {"SSH", "portmatrix agent"}};
      auto admin_match = m_plan.inventory.admin_cidrs.empty()
                           ? std::string()
                           : fmt::format("-m set --match-set {} src ", ipset_name("admin", ipv6));
      out += render_rule(admin, admin_match, "SSH and portmatrix agent");
      for (const auto& rule : rules) {
        auto source = rule.source == Role::any
                        ? std::string()
                        : fmt::format("-m set --match-set {} src ", ipset_name(to_string(rule.source), ipv6));
        out += render_rule(rule, source, rule_comment(rule, 250));
      }
      out += fmt::format("-A {} -j DROP\nCOMMIT\nPORTMATRIX_RULES\n", k_chain);
      auto tool = ipv6 ? "ip6tables" : "iptables";
      out += fmt::format("{0} -C INPUT -j {1} 2>/dev/null || {0} -I INPUT 1 -j {1}\n", tool, k_chain);
    }
    return out;
  }

  std::string file_name(const Node& node) const override { return node.name + ".iptables.sh"; }

private:
  void add_ipset(std::string_view role, const SourceSet& sources)
  {
    for (bool ipv6 : {false, true}) {
      auto name = ipset_name(role, ipv6);
      m_ipsets += fmt::format("create {} hash:net family {}\nflush {}\n", name, ipv6 ? "inet6" : "inet", name);
      auto entries = ipv6 ? address_texts(sources.v6, AddressForm::prefixes)
                          : address_texts(sources.v4, AddressForm::ranges);
      for (const auto& entry : entries) m_ipsets += fmt::format("add {} {}\n", name, entry);
    }
  }

  static std::string render_rule(const IngressRule& rule, const std::string& source, const std::string& comment)
  {
    if (!has_ports(rule.protocol)) {
      return fmt::format("-A {} {}-p {} -m comment --comment \"{}\" -j ACCEPT\n",
                         k_chain, source, ip_protocol_number(rule.protocol), comment);
    }
    std::string out;
    for (const auto& chunk : port_lists(rule.ports)) {
      out += fmt::format("-A {} {}-p {} -m multiport --dports {} -m comment --comment \"{}\" -j ACCEPT\n",
                         k_chain,
                         source,
                         to_string(rule.protocol),
                         chunk,
                         comment);
    }
    return out;
  }

  const Plan& m_plan;
  std::string m_ipsets;
};

} // namespace

std::unique_ptr<FirewallGenerator>
make_iptables_generator(const Plan& plan)
{
  return std::make_unique<IptablesGenerator>(plan);
}

} // namespace portmatrix
