// ufw backend: `ufw` commands. ufw has no address sets and no address ranges,
// so each peer CIDR prefix gets its own rule (consecutive peers share the
// fewest prefixes that hold exactly them; a lone peer is its address): unlike
// the other backends, the rule count grows with the cluster (the header says
// so). ufw skips a rule that already exists, so running the script twice gives
// the same state; it never resets other rules. `ufw allow proto` knows tcp,
// udp, esp and vrrp but not IP-in-IP (IP protocol 4): those rules go into
// ufw's before.rules and before6.rules, between portmatrix's marker lines,
// which the script replaces each time (and removes when there are none).
// Every `ufw allow` carries a comment starting "portmatrix: ", by which
// `firewall apply` and `remove` find portmatrix's rules among the host's.
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "firewall/firewall.hpp"

namespace portmatrix {
namespace {

class UfwGenerator : public FirewallGenerator
{
public:
  explicit UfwGenerator(const Plan& plan) : m_plan(plan)
  {
    m_admin = sources(plan.admin_sources);
    for (const auto& [role, set] : plan.role_sources) m_sources[role] = sources(set);
  }

  std::string render_group(std::span<const Node* const> nodes) const override
  {
    std::string out = "#!/bin/sh\n" + firewall_header(m_plan, nodes, "ufw");
    out += "# Apply with: sh FILE (as root). ufw has no address sets: one rule per peer address or prefix.\n";
    out += "# ufw's own before.rules already admit established traffic, loopback and ICMP.\n";
    out += "set -e\n\n";
    out += k_before_rules_function;
    IngressRule admin{Role::any, Protocol::tcp, admin_ports(m_plan), {"SSH", "portmatrix agent"}};
    const auto admin_lines = rule_lines(admin, "SSH and portmatrix agent");
    if (m_plan.inventory.admin_cidrs.empty()) {
      append(out, admin_lines, "any");
    } else {
      for (const auto& source : m_admin) append(out, admin_lines, source);
    }
    std::string before_v4;
    std::string before_v6;
    for (const auto& rule : m_plan.ingress(*nodes.front())) {
      if (rule.protocol == Protocol::ipip) {
        append_before_rules(before_v4, before_v6, rule);
        continue;
      }
      const auto lines = rule_lines(rule, rule_comment(rule));
      if (rule.source == Role::any) {
        append(out, lines, "any");
        continue;
      }
      for (const auto& source : m_sources.at(rule.source)) append(out, lines, source);
    }
    out += fmt::format("pm_before_rules \"${{UFW_BEFORE_RULES:-/etc/ufw/before.rules}}\" <<'PORTMATRIX_RULES'\n{}"
                       "PORTMATRIX_RULES\n",
                       before_v4);
    out += fmt::format("pm_before_rules \"${{UFW_BEFORE6_RULES:-/etc/ufw/before6.rules}}\" <<'PORTMATRIX_RULES'\n{}"
                       "PORTMATRIX_RULES\n",
                       before_v6);
    out += "ufw default deny incoming\nufw --force enable\nufw reload\n";
    return out;
  }

  std::string file_name(const Node& node) const override { return node.name + ".ufw.sh"; }

private:
  // A source set as ufw sources: IPv4 prefixes, then IPv6 prefixes.
  static std::vector<std::string> sources(const SourceSet& set)
  {
    auto texts = address_texts(set.v4, AddressForm::prefixes);
    auto v6 = address_texts(set.v6, AddressForm::prefixes);
    texts.insert(texts.end(), v6.begin(), v6.end());
    return texts;
  }

  // A rule's lines for one source: `head`, the source, then each of `tails`
  // (one per port list). Formatted once per rule, not per peer: a rule from
  // workers has thousands of peers.
  struct Lines
  {
    std::string head;
    std::vector<std::string> tails;
  };

  // Every rule's comment starts with "portmatrix: ": how `firewall apply`
  // and `remove` tell portmatrix's ufw rules from the host's own.
  static Lines rule_lines(const IngressRule& rule, const std::string& text)
  {
    const auto comment = "portmatrix: " + text;
    Lines lines{fmt::format("ufw allow proto {} from ", to_string(rule.protocol)), {}};
    if (!has_ports(rule.protocol)) { // esp, vrrp (ipip goes to before.rules)
      lines.tails.push_back(fmt::format(" comment '{}'\n", comment));
      return lines;
    }
    for (const auto& list : port_lists(rule.ports)) lines.tails.push_back(fmt::format(" to any port {} comment '{}'\n", list, comment));
    return lines;
  }

  // A rule ufw's `proto` cannot say, as iptables-restore lines for the chain
  // ufw-before-input (before.rules) or ufw6-before-input (before6.rules).
  void append_before_rules(std::string& v4, std::string& v6, const IngressRule& rule) const
  {
    auto comment = rule_comment(rule, 250);
    auto line = [&](std::string_view chain, std::string_view source) {
      return fmt::format("-A {} {}-p {} -m comment --comment \"{}\" -j ACCEPT\n",
                         chain,
                         source.empty() ? std::string() : fmt::format("-s {} ", source),
                         ip_protocol_number(rule.protocol),
                         comment);
    };
    if (rule.source == Role::any) {
      v4 += line("ufw-before-input", "");
      v6 += line("ufw6-before-input", "");
      return;
    }
    const auto& set = m_plan.role_sources.at(rule.source);
    for (const auto& source : address_texts(set.v4, AddressForm::prefixes)) v4 += line("ufw-before-input", source);
    for (const auto& source : address_texts(set.v6, AddressForm::prefixes)) v6 += line("ufw6-before-input", source);
  }

  // pm_before_rules FILE: FILE without portmatrix's block, and the lines on
  // stdin (if any) as the new block before FILE's last COMMIT.
  static constexpr const char* k_before_rules_function =
    "pm_before_rules() {\n"
    "  PM_BLOCK=$(cat)\n"
    "  export PM_BLOCK\n"
    "  tmp=$(mktemp)\n"
    "  awk '/^# BEGIN portmatrix/ { skip = 1 } !skip { line[++n] = $0 } /^# END portmatrix/ { skip = 0 }\n"
    "    END { for (last = n; last > 0 && line[last] != \"COMMIT\"; last--) ;\n"
    "          for (i = 1; i <= n; i++) {\n"
    "            if (i == last && ENVIRON[\"PM_BLOCK\"] != \"\") print \"# BEGIN portmatrix\\n\" ENVIRON[\"PM_BLOCK\"] \"\\n# END portmatrix\"\n"
    "            print line[i] } }' \"$1\" >\"$tmp\"\n"
    "  cat \"$tmp\" >\"$1\"\n"
    "  rm -f \"$tmp\"\n"
    "}\n\n";

  static void append(std::string& out, const Lines& lines, std::string_view source)
  {
    for (const auto& tail : lines.tails) {
      out += lines.head;
      out += source;
      out += tail;
    }
  }

  const Plan& m_plan;
  std::vector<std::string> m_admin;                  // rendered once per plan, shared by every node
  std::map<Role, std::vector<std::string>> m_sources; // likewise, per role
};

} // namespace

std::unique_ptr<FirewallGenerator>
make_ufw_generator(const Plan& plan)
{
  return std::make_unique<UfwGenerator>(plan);
}

} // namespace portmatrix
