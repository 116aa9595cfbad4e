// nftables backend. Everything lives in the table `inet portmatrix`; the file
// first creates that table (a no-op when it exists), deletes it, and defines it
// again, and `nft -f` applies a file atomically, so applying twice leaves the
// same state and no other table is touched. Peers are named sets per role and
// family (set elements are rendered once per plan and shared by every node), so
// a node's rule count depends on its roles, never on the cluster's size. The
// sets are interval sets: consecutive peers are one element, a range
// "10.0.0.21-10.0.0.60" (or a prefix, when the range is exactly one).
#include <fmt/format.h>

#include "firewall/firewall.hpp"

namespace portmatrix {
namespace {

std::string
port_expression(const std::vector<PortRange>& ports)
{
  if (ports.size() == 1) return to_string(ports[0]);
  std::string text = "{ ";
  for (std::size_t i = 0; i < ports.size(); ++i) text += fmt::format("{}{}", i ? ", " : "", to_string(ports[i]));
  return text + " }";
}

std::string
set_definition(const std::string& name, bool ipv6, const std::vector<std::string>& elements)
{
  std::string text =
    fmt::format("\tset {} {{\n\t\ttype {}; flags interval; auto-merge;\n", name, ipv6 ? "ipv6_addr" : "ipv4_addr");
  if (!elements.empty()) {
    text += "\t\telements = {";
    for (std::size_t i = 0; i < elements.size(); ++i) {
      text += i % 8 == 0 ? "\n\t\t\t" : " ";
      text += elements[i];
      if (i + 1 < elements.size()) text += ",";
    }
    text += "\n\t\t}\n";
  }
  return text + "\t}\n";
}

class NftablesGenerator : public FirewallGenerator
{
public:
  explicit NftablesGenerator(const Plan& plan) : m_plan(plan)
  {
    auto add = [this](const std::string& name, const SourceSet& sources) {
      m_sets += set_definition(name + "_v4", false, address_texts(sources.v4, AddressForm::ranges));
      m_sets += set_definition(name + "_v6", true, address_texts(sources.v6, AddressForm::ranges));
    };
    add("admin", plan.admin_sources);
    for (const auto& [role, sources] : plan.role_sources) add(std::string(to_string(role)), sources);
  }

  std::string render_group(std::span<const Node* const> nodes) const override
  {
    std::string out = "#!/usr/sbin/nft -f\n" + firewall_header(m_plan, nodes, "nftables");
    out += "# Apply with: nft -f FILE (atomic; applying again replaces only table inet portmatrix).\n\n";
    out += "table inet portmatrix\ndelete table inet portmatrix\n\ntable inet portmatrix {\n";
    out += m_sets;
    out += "\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n";
    out += "\t\tct state established,related accept\n";
    out += "\t\tct state invalid drop\n";
    out += "\t\tiif \"lo\" accept\n";
    out += "\t\tmeta l4proto icmp icmp type { " + join(k_icmp_types) + " } accept\n";
    out += "\t\tmeta l4proto ipv6-icmp icmpv6 type { " + join(k_icmpv6_types) + " } accept\n";
    auto admin = port_expression(admin_ports(m_plan));
    if (m_plan.inventory.admin_cidrs.empty()) {
      out += fmt::format("\t\ttcp dport {} accept comment \"SSH and portmatrix agent\"\n", admin);
    } else {
      out += fmt::format("\t\tip saddr @admin_v4 tcp dport {} accept comment \"SSH and portmatrix agent\"\n", admin);
      out += fmt::format("\t\tip6 saddr @admin_v6 tcp dport {} accept comment \"SSH and portmatrix agent\"\n", admin);
    }
    for (const auto& rule : m_plan.ingress(*nodes.front())) out += render_rule(rule);
    out += "\t}\n}\n";
    return out;
  }

  std::string file_name(const Node& node) const override { return node.name + ".nft"; }

private:
  static std::string join(const char* const* items)
  {
    std::string text;
    for (auto item = items; *item; ++item) text += fmt::format("{}{}", item == items ? "" : ", ", *item);
    return text;
  }

  static std::string render_rule(const IngressRule& rule)
  {
    std::string match;
    if (!has_ports(rule.protocol)) {
      match = fmt::format("meta l4proto {}", ip_protocol_number(rule.protocol));
    } else {
      match = fmt::format("{} dport {}", to_string(rule.protocol), port_expression(rule.ports));
    }
    auto comment = rule_comment(rule);
    if (rule.source == Role::any) return fmt::format("\t\t{} accept comment \"{}\"\n", match, comment);
    auto role = to_string(rule.source);
    return fmt::format("\t\tip saddr @{}_v4 {} accept comment \"{}\"\n", role, match, comment) +
           fmt::format("\t\tip6 saddr @{}_v6 {} accept comment \"{}\"\n", role, match, comment);
  }

  const Plan& m_plan;
  std::string m_sets;
};

} // namespace

std::unique_ptr<FirewallGenerator>
make_nftables_generator(const Plan& plan)
{
  return std::make_unique<NftablesGenerator>(plan);
}

} // namespace portmatrix
