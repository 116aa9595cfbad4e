// Backend selection and the pieces every backend shares.
#include "firewall/firewall.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace portmatrix {

const char* const k_icmp_types[] = {
  "echo-request", "destination-unreachable", "time-exceeded", "parameter-problem", nullptr};
const char* const k_icmpv6_types[] = {"destination-unreachable",
                                      "packet-too-big",
                                      "time-exceeded",
                                      "parameter-problem",
                                      "echo-request",
                                      "nd-router-solicit",
                                      "nd-router-advert",
                                      "nd-neighbor-solicit",
                                      "nd-neighbor-advert",
                                      nullptr};

std::string
icmpv6_legacy_name(std::string_view nft_name)
{
  if (nft_name == "nd-router-solicit") return "router-solicitation";
  if (nft_name == "nd-router-advert") return "router-advertisement";
  if (nft_name == "nd-neighbor-solicit") return "neighbour-solicitation";
  if (nft_name == "nd-neighbor-advert") return "neighbour-advertisement";
  return std::string(nft_name);
}

std::optional<FirewallFormat>
parse_firewall_format(std::string_view text)
{
  if (text == "nftables" || text == "nft") return FirewallFormat::nftables;
  if (text == "iptables") return FirewallFormat::iptables;
  if (text == "firewalld") return FirewallFormat::firewalld;
  if (text == "ufw") return FirewallFormat::ufw;
  return std::nullopt;
}

std::string_view
to_string(FirewallFormat format)
{
  switch (format) {
  case FirewallFormat::nftables: return "nftables";
  case FirewallFormat::iptables: return "iptables";
  case FirewallFormat::firewalld: return "firewalld";
  case FirewallFormat::ufw: return "ufw";
  }
  return "?";
}

std::unique_ptr<FirewallGenerator>
make_firewall_generator(FirewallFormat format, const Plan& plan)
{
  switch (format) {
  case FirewallFormat::nftables: return make_nftables_generator(plan);
  case FirewallFormat::iptables: return make_iptables_generator(plan);
  case FirewallFormat::firewalld: return make_firewalld_generator(plan);
  case FirewallFormat::ufw: return make_ufw_generator(plan);
  }
  return nullptr;
}

std::string
FirewallGenerator::render(const Node& node) const
{
  const Node* one = &node;
  return render_group({&one, 1});
}

std::string
firewall_header(const Plan& plan, std::span<const Node* const> nodes, std::string_view backend)
{
  // A group's names, up to this many; then how many more.
  constexpr std::size_t k_named = 8;
  const Node& first = *nodes.front();
  std::string text;
  if (nodes.size() == 1) {
    text = fmt::format("# portmatrix: {} host firewall for node {} ({}; roles: {})\n",
                       backend,
                       first.name,
                       first.address,
                       plan.describe_roles(first));
  } else {
    std::string names;
    for (std::size_t i = 0; i < nodes.size() && i < k_named; ++i) {
      names += fmt::format("{}{} ({})", i ? ", " : "", nodes[i]->name, nodes[i]->address);
    }
    if (nodes.size() > k_named) names += fmt::format(" and {} more", nodes.size() - k_named);
    text = fmt::format("# portmatrix: {} host firewall for the {} nodes with roles: {}\n# {}\n",
                       backend,
                       nodes.size(),
                       plan.describe_roles(first),
                       names);
    text += "# Nodes with the same roles get the same rules: `firewall --all` writes this file once\n"
            "# and links it to every node's name.\n";
  }
  text += fmt::format("# cluster {}, profile {} {}. Generated: edit the inventory or profile, not this file.\n",
                      plan.inventory.cluster,
                      plan.matrix.profile.name,
                      plan.matrix.profile.version);
  if (plan.inventory.admin_cidrs.empty()) {
    text += "# admin_cidrs is empty: SSH and the agent's control port are open to every source, so that\n"
            "# this firewall cannot lock the administrator out. Set admin_cidrs to narrow them.\n";
  }
  return text;
}

std::string
source_label(Role role)
{
  return std::string(to_string(role));
}

std::string
rule_comment(const IngressRule& rule, std::size_t limit)
{
  std::string text = fmt::format("from {}:", source_label(rule.source));
  for (std::size_t i = 0; i < rule.names.size(); ++i) text += fmt::format("{}{}", i ? ", " : " ", rule.names[i]);
  if (text.size() > limit) text = text.substr(0, limit - 3) + "...";
  return text;
}

std::vector<std::string>
port_lists(const std::vector<PortRange>& ports)
{
  std::vector<std::string> lists;
  std::string current;
  int used = 0;
  for (const auto& range : ports) {
    int cost = range.single() ? 1 : 2;
    if (used + cost > 15) {
      lists.push_back(current);
      current.clear();
      used = 0;
    }
    current += fmt::format("{}{}", current.empty() ? "" : ",", to_string(range, ":"));
    used += cost;
  }
  if (!current.empty()) lists.push_back(current);
  return lists;
}

std::string
ipset_name(std::string_view role, bool ipv6)
{
  return fmt::format("pm-{}-{}", role, ipv6 ? "v6" : "v4");
}

std::vector<PortRange>
admin_ports(const Plan& plan)
{
  return merge_ranges({{plan.inventory.ssh_port, plan.inventory.ssh_port},
                       {plan.inventory.control_port, plan.inventory.control_port}});
}

} // namespace portmatrix
