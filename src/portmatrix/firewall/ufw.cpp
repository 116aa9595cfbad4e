// ufw backend: `ufw` commands. ufw has no address sets and no address ranges,
// so each peer CIDR prefix gets its own rule (consecutive peers share the
// fewest prefixes that hold exactly them; a lone peer is its address): unlike
// the other backends, the rule count grows with the cluster (the header says
// so). ufw skips a rule that already exists, so running the script twice gives
// the same state; it never resets other rules.
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
    m_sources[Role::admin] = m_admin;
  }

  std::string render_group(std::span<const Node* const> nodes) const override
  {
    std::string out = "#!/bin/sh\n" + firewall_header(m_plan, nodes, "ufw");
    out += "# Apply with: sh FILE (as root). ufw has no address sets: one rule per peer address or prefix.\n";
    out += "# ufw's own before.rules already admit established traffic, loopback and ICMP.\n";
    out += "set -e\n\n";
    IngressRule admin{Role::any, Protocol::tcp, admin_ports(m_plan), {"SSH", "portmatrix agent"}};
    const auto admin_lines = rule_lines(admin, "SSH and portmatrix agent");
    if (m_plan.inventory.admin_cidrs.empty()) {
      append(out, admin_lines, "any");
    } else {
      for (const auto& source : m_admin) append(out, admin_lines, source);
    }
    for (const auto& rule : m_plan.ingress(*nodes.front())) {
      const auto lines = rule_lines(rule, rule_comment(rule));
      if (rule.source == Role::any) {
        append(out, lines, "any");
        continue;
      }
      for (const auto& source : m_sources.at(rule.source)) append(out, lines, source);
    }
    out += "ufw default deny incoming\nufw --force enable\n";
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

  static Lines rule_lines(const IngressRule& rule, const std::string& comment)
  {
    Lines lines{fmt::format("ufw allow proto {} from ", to_string(rule.protocol)), {}};
    if (rule.protocol == Protocol::vrrp) {
      lines.tails.push_back(fmt::format(" comment '{}'\n", comment));
      return lines;
    }
    for (const auto& list : port_lists(rule.ports)) lines.tails.push_back(fmt::format(" to any port {} comment '{}'\n", list, comment));
    return lines;
  }

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
