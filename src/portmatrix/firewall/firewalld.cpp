// firewalld backend: a script of `firewall-cmd --permanent` commands that
// (re)creates the zone `portmatrix` with target DROP, one ipset per role and
// family, and rich rules that admit each role's ports. It deletes and recreates
// only its own zone and ipsets, so applying twice gives the same state. Ipset
// entries are CIDR prefixes, consecutive peers sharing one: every firewalld
// and backend takes those in hash:net (a range "a-b" passes firewalld's check,
// but an IPv6 one fails where ipset(8) holds the set), and being exact and
// disjoint they never trip firewalld's check for overlapping entries. Each
// set's entries go in with one --add-entries-from-file (from a here-document
// in a temporary file), not one --add-entry each: every firewall-cmd call
// costs about a second, and a set may hold thousands of entries. The zone is
// bound to the interface named by PORTMATRIX_IFACE. FIREWALL_CMD may name
// another command (firewall-offline-cmd on a host without the daemon).
#include <fmt/format.h>

#include "firewall/firewall.hpp"

namespace portmatrix {
namespace {

constexpr std::size_t k_ipset_default_maxelem = 65536;

class FirewalldGenerator : public FirewallGenerator
{
public:
  explicit FirewalldGenerator(const Plan& plan) : m_plan(plan)
  {
    add_ipset("admin", plan.admin_sources);
    for (const auto& [role, sources] : plan.role_sources) add_ipset(to_string(role), sources);
  }

  std::string render_group(std::span<const Node* const> nodes) const override
  {
    std::string out = "#!/bin/sh\n" + firewall_header(m_plan, nodes, "firewalld");
    out += "# Apply with: PORTMATRIX_IFACE=eth0 sh FILE (as root), then firewall-cmd --reload.\n";
    out += "set -e\n";
    out += ": \"${PORTMATRIX_IFACE:?set PORTMATRIX_IFACE to the interface that carries cluster traffic}\"\n";
    out += "fw=\"${FIREWALL_CMD:-firewall-cmd --permanent}\"\n";
    out += "entries=$(mktemp)\ntrap 'rm -f \"$entries\"' EXIT\n\n";
    out += "if $fw --get-zones | tr ' ' '\\n' | grep -qx portmatrix; then $fw --delete-zone=portmatrix; fi\n";
    out += "for set in $($fw --get-ipsets); do\n  case $set in pm-*) $fw --delete-ipset=\"$set\" ;; esac\ndone\n";
    out += m_ipsets;
    out += "$fw --new-zone=portmatrix\n$fw --zone=portmatrix --set-target=DROP\n";
    out += "$fw --zone=portmatrix --add-interface=\"$PORTMATRIX_IFACE\"\n";
    for (auto type = k_icmp_types; *type; ++type) {
      out += fmt::format("$fw --zone=portmatrix --add-rich-rule='rule family=\"ipv4\" icmp-type name=\"{}\" accept'\n",
                         *type);
    }
    for (auto type = k_icmpv6_types; *type; ++type) {
      out += fmt::format("$fw --zone=portmatrix --add-rich-rule='rule family=\"ipv6\" icmp-type name=\"{}\" accept'\n",
                         icmpv6_legacy_name(*type));
    }
    IngressRule admin{Role::any, Protocol::tcp, admin_ports(m_plan), {"SSH", "portmatrix agent"}};
    if (m_plan.inventory.admin_cidrs.empty()) {
      out += render_rule(admin, "", false);
    } else {
      out += render_rule(admin, ipset_name("admin", false), false);
      out += render_rule(admin, ipset_name("admin", true), true);
    }
    for (const auto& rule : m_plan.ingress(*nodes.front())) {
      if (rule.source == Role::any) {
        out += render_rule(rule, "", false);
        continue;
      }
      out += render_rule(rule, ipset_name(to_string(rule.source), false), false);
      out += render_rule(rule, ipset_name(to_string(rule.source), true), true);
    }
    return out;
  }

  std::string file_name(const Node& node) const override { return node.name + ".firewalld.sh"; }

private:
  void add_ipset(std::string_view role, const SourceSet& sources)
  {
    for (bool ipv6 : {false, true}) {
      auto name = ipset_name(role, ipv6);
      auto entries = address_texts(ipv6 ? sources.v6 : sources.v4, AddressForm::prefixes);
      // hash:net holds 65,536 entries unless told otherwise.
      auto room = entries.size() > k_ipset_default_maxelem ? fmt::format(" --option=maxelem={}", entries.size()) : "";
      m_ipsets += fmt::format("$fw --new-ipset={} --type=hash:net{}{}\n", name, ipv6 ? " --option=family=inet6" : "", room);
      if (entries.empty()) continue;
      m_ipsets += "cat >\"$entries\" <<'PORTMATRIX_ENTRIES'\n";
      for (const auto& entry : entries) (m_ipsets += entry) += '\n';
      m_ipsets += fmt::format("PORTMATRIX_ENTRIES\n$fw --ipset={} --add-entries-from-file=\"$entries\"\n", name);
    }
  }

  // A rich rule's protocol value: a name of /etc/protocols or a number.
  // IP-in-IP goes by number: /etc/protocols calls protocol 4 "ipencap", and
  // "ipip" there is protocol 94.
  static std::string firewalld_protocol(Protocol protocol)
  {
    if (protocol == Protocol::ipip) return std::to_string(ip_protocol_number(protocol));
    return std::string(to_string(protocol));
  }

  // One rich rule per port range (rich rules take one port each); `ipset`
  // empty: from any source, in both families.
  static std::string render_rule(const IngressRule& rule, const std::string& ipset, bool ipv6)
  {
    std::string family = ipset.empty() ? "" : fmt::format("family=\"{}\" ", ipv6 ? "ipv6" : "ipv4");
    std::string source = ipset.empty() ? "" : fmt::format("source ipset=\"{}\" ", ipset);
    if (!has_ports(rule.protocol)) {
      return fmt::format("$fw --zone=portmatrix --add-rich-rule='rule {}{}protocol value=\"{}\" accept'\n",
                         family, source, firewalld_protocol(rule.protocol));
    }
    std::string out;
    for (const auto& range : rule.ports) {
      out += fmt::format("$fw --zone=portmatrix --add-rich-rule='rule {}{}port port=\"{}\" protocol=\"{}\" accept'\n",
                         family,
                         source,
                         to_string(range),
                         to_string(rule.protocol));
    }
    return out;
  }

  const Plan& m_plan;
  std::string m_ipsets;
};

} // namespace

std::unique_ptr<FirewallGenerator>
make_firewalld_generator(const Plan& plan)
{
  return std::make_unique<FirewalldGenerator>(plan);
}

} // namespace portmatrix
