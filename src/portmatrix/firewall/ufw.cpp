// ufw backend: `ufw` commands. ufw has no address sets, so each peer address
// gets its own rule: unlike the other backends, the rule count grows with the
// cluster (the header says so). ufw skips a rule that already exists, so
// running the script twice gives the same state; it never resets other rules.
#include <fmt/format.h>

#include "firewall/firewall.hpp"

namespace portmatrix {
namespace {

class UfwGenerator : public FirewallGenerator
{
public:
  explicit UfwGenerator(const Plan& plan) : m_plan(plan) {}

  std::string render(const Node& node) const override
  {
    std::string out = "#!/bin/sh\n" + firewall_header(m_plan, node, "ufw");
    out += "# Apply with: sh FILE (as root). ufw has no address sets: one rule per peer address.\n";
    out += "# ufw's own before.rules already admit established traffic, loopback and ICMP.\n";
    out += "set -e\n\n";
    IngressRule admin{Role::any, Protocol::tcp, admin_ports(m_plan), {"SSH", "portmatrix agent"}};
    if (m_plan.inventory.admin_cidrs.empty()) {
      out += render_rule(admin, "any", "SSH and portmatrix agent");
    } else {
      for (const auto& cidr : m_plan.inventory.admin_cidrs) out += render_rule(admin, cidr, "SSH and portmatrix agent");
    }
    for (const auto& rule : m_plan.ingress(node)) {
      auto comment = rule_comment(rule);
      if (rule.source == Role::any) {
        out += render_rule(rule, "any", comment);
        continue;
      }
      const auto& sources = m_plan.role_sources.at(rule.source);
      for (const auto* family : {&sources.v4, &sources.v6}) {
        for (const auto& address : *family) out += render_rule(rule, address, comment);
      }
    }
    out += "ufw default deny incoming\nufw --force enable\n";
    return out;
  }

  std::string file_name(const Node& node) const override { return node.name + ".ufw.sh"; }

private:
  static std::string render_rule(const IngressRule& rule, const std::string& source, const std::string& comment)
  {
    if (rule.protocol == Protocol::vrrp) {
      return fmt::format("ufw allow proto vrrp from {} comment '{}'\n", source, comment);
    }
    std::string out;
    for (const auto& list : port_lists(rule.ports)) {
      out += fmt::format("ufw allow proto {} from {} to any port {} comment '{}'\n",
                         to_string(rule.protocol),
                         source,
                         list,
                         comment);
    }
    return out;
  }

  const Plan& m_plan;
};

} // namespace

std::unique_ptr<FirewallGenerator>
make_ufw_generator(const Plan& plan)
{
  return std::make_unique<UfwGenerator>(plan);
}

} // namespace portmatrix
