#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "../plan/demo.hpp"
#include "firewall/firewall.hpp"

namespace portmatrix {
namespace {

// Rule lines of an nftables ruleset: lines in a chain that end in a verdict.
std::size_t
nft_rule_count(const std::string& ruleset)
{
  std::istringstream in(ruleset);
  std::size_t count = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find(" accept") != std::string::npos || line.find(" drop") != std::string::npos) {
      if (line.find("elements") == std::string::npos) ++count;
    }
  }
  return count;
}

std::size_t
count_lines_starting(const std::string& text, std::string_view prefix)
{
  std::istringstream in(text);
  std::size_t count = 0;
  for (std::string line; std::getline(in, line);) count += line.starts_with(prefix);
  return count;
}

// A ruleset without its opening comment lines (everything before the
// "# cluster" line, which is where the node or group is named).
std::string
without_header(const std::string& text)
{
  auto at = text.find("\n# cluster ");
  EXPECT_NE(at, std::string::npos);
  return text.substr(at == std::string::npos ? 0 : at);
}

// Mixed roles, listed in either order, and a node of each address family.
const char* const k_mixed_inventory = R"(cluster: mixed
loadbalancer: {vip: 10.0.0.100}
admin_cidrs: [10.0.0.0/24]
nodes:
  - {name: cp1, address: 10.0.0.1, roles: [master, worker]}
  - {name: w1, address: 10.0.0.11, roles: [worker]}
  - {name: cp2, address: 10.0.0.2, roles: [worker, master]}
  - {name: w2, address: 'fd00::12', roles: [worker]}
  - {name: db1, address: 10.0.0.21, roles: [mongodb, elasticsearch]}
  - {name: lb1, address: 10.0.0.5, roles: [loadbalancer]}
  - {name: cp3, address: 10.0.0.3, roles: [master, worker, master]}
)";

} // namespace

// `firewall --all` writes one file per group and links it to every node of
// the group: that is right only while a node's rules depend on nothing but
// its set of roles. Every backend, every node: its own ruleset is its
// group's, apart from the lines that name them.
TEST(Firewall, NodesWithTheSameRolesGetTheSameRuleset)
{
  for (const auto& plan : {testing::demo_plan(), testing::plan_for(k_mixed_inventory)}) {
    for (auto format : {FirewallFormat::nftables, FirewallFormat::iptables, FirewallFormat::firewalld,
                        FirewallFormat::ufw}) {
      auto generator = make_firewall_generator(format, plan);
      std::size_t nodes = 0;
      for (const auto& group : ruleset_groups(plan.inventory)) {
        auto shared = generator->render_group(group);
        for (const Node* node : group) {
          EXPECT_EQ(without_header(generator->render(*node)), without_header(shared))
            << plan.inventory.cluster << " " << to_string(format) << " " << node->name;
        }
        nodes += group.size();
      }
      EXPECT_EQ(nodes, plan.inventory.nodes.size());
    }
  }
}

TEST(Firewall, RulesetGroupsFollowTheSetOfRolesInInventoryOrder)
{
  auto plan = testing::plan_for(k_mixed_inventory);
  std::vector<std::vector<std::string>> names;
  for (const auto& group : ruleset_groups(plan.inventory)) {
    names.emplace_back();
    for (const Node* node : group) names.back().push_back(node->name);
  }
  std::vector<std::vector<std::string>> expected{{"cp1", "cp2", "cp3"}, {"w1", "w2"}, {"db1"}, {"lb1"}};
  EXPECT_EQ(names, expected);
  // Different sets of roles, different rules: the groups are not merged too far.
  auto nft = make_nftables_generator(plan);
  EXPECT_NE(without_header(nft->render(*plan.inventory.find("cp1"))),
            without_header(nft->render(*plan.inventory.find("w1"))));
}

TEST(Firewall, AGroupsHeaderNamesItsNodes)
{
  auto plan = testing::plan_for(k_mixed_inventory);
  auto groups = ruleset_groups(plan.inventory);
  auto text = make_iptables_generator(plan)->render_group(groups[0]);
  EXPECT_TRUE(text.starts_with("#!/bin/sh\n# portmatrix: iptables host firewall for the 3 nodes with roles: master, "
                               "worker\n# cp1 (10.0.0.1), cp2 (10.0.0.2), cp3 (10.0.0.3)\n"))
    << text.substr(0, 300);
  auto one = make_iptables_generator(plan)->render_group(groups[2]);
  EXPECT_NE(one.find("# portmatrix: iptables host firewall for node db1 (10.0.0.21; roles: mongodb, elasticsearch)\n"),
            std::string::npos);
  auto large = testing::plan_for(testing::generated_inventory(100));
  auto groups_100 = ruleset_groups(large.inventory); // lb1, client1, masters, mongodb, elasticsearch, workers
  ASSERT_EQ(groups_100.size(), 6u);
  auto workers = groups_100[5];
  ASSERT_EQ(workers.front()->name, "n5");
  auto header = make_ufw_generator(large)->render_group(workers).substr(0, 400);
  EXPECT_NE(header.find("for the 77 nodes with roles: worker\n# n5 (10.0.0.5), n6 (10.0.0.6)"), std::string::npos)
    << header;
  EXPECT_NE(header.find(", n12 (10.0.0.12) and 69 more\n"), std::string::npos) << header;
}

TEST(Nftables, RuleCountDoesNotGrowWithTheCluster)
{
  auto small = testing::plan_for(testing::generated_inventory(10));
  auto large = testing::plan_for(testing::generated_inventory(5000));
  for (const auto* name : {"n0", "n5", "n3", "n4", "lb1", "client1"}) {
    auto small_rules = make_nftables_generator(small)->render(*small.inventory.find(name));
    auto large_rules = make_nftables_generator(large)->render(*large.inventory.find(name));
    EXPECT_EQ(nft_rule_count(small_rules), nft_rule_count(large_rules)) << name;
    EXPECT_GT(large_rules.size(), small_rules.size()) << name;  // the sets grew, not the rules
  }
}

// Every firewall-cmd call costs about a second: the number of calls in a
// node's script must not grow with the cluster (the entries go in from a
// file, one call per set), while the entries do.
TEST(Firewalld, CallCountDoesNotGrowWithTheCluster)
{
  auto small = testing::plan_for(testing::generated_inventory(10));
  auto large = testing::plan_for(testing::generated_inventory(5000));
  for (const auto* name : {"n0", "n5", "n3", "n4", "lb1", "client1"}) {
    auto small_script = make_firewalld_generator(small)->render(*small.inventory.find(name));
    auto large_script = make_firewalld_generator(large)->render(*large.inventory.find(name));
    EXPECT_EQ(count_lines_starting(small_script, "$fw "), count_lines_starting(large_script, "$fw ")) << name;
    EXPECT_GT(large_script.size(), small_script.size() + 5000) << name;
    EXPECT_EQ(large_script.find("--add-entry="), std::string::npos) << name;
  }
}

TEST(Nftables, OwnsOnlyItsTableAndDropsByDefault)
{
  auto plan = testing::demo_plan();
  auto rules = make_nftables_generator(plan)->render(*plan.inventory.find("master1"));
  EXPECT_NE(rules.find("table inet portmatrix\ndelete table inet portmatrix\n"), std::string::npos);
  EXPECT_NE(rules.find("type filter hook input priority filter; policy drop;"), std::string::npos);
  EXPECT_EQ(rules.find("flush ruleset"), std::string::npos);
  EXPECT_NE(rules.find("ip saddr @admin_v4 tcp dport { 22, 7946 } accept"), std::string::npos);
  EXPECT_NE(rules.find("ip saddr @worker_v4 udp dport 8472 accept"), std::string::npos);
  EXPECT_NE(rules.find("ip6 saddr @worker_v6 udp dport 8472 accept"), std::string::npos);
  EXPECT_NE(rules.find("nd-neighbor-solicit"), std::string::npos);
  EXPECT_NE(rules.find("ct state established,related accept"), std::string::npos);
}

TEST(Firewall, SshStaysOpenWithoutAdminCidrs)
{
  auto plan = testing::plan_for("nodes: [{name: m1, address: 10.0.0.1, roles: [master]}]\n");
  for (auto format : {FirewallFormat::nftables, FirewallFormat::iptables, FirewallFormat::firewalld, FirewallFormat::ufw}) {
    auto rules = make_firewall_generator(format, plan)->render(plan.inventory.nodes[0]);
    EXPECT_NE(rules.find("admin_cidrs is empty"), std::string::npos) << to_string(format);
    switch (format) {
    case FirewallFormat::nftables:
      EXPECT_NE(rules.find("\t\ttcp dport { 22, 7946 } accept"), std::string::npos);
      break;
    case FirewallFormat::iptables:
      EXPECT_NE(rules.find("-A PORTMATRIX-INPUT -p tcp -m multiport --dports 22,7946 "), std::string::npos);
      break;
    case FirewallFormat::firewalld:
      EXPECT_NE(rules.find("'rule port port=\"22\" protocol=\"tcp\" accept'"), std::string::npos);
      break;
    case FirewallFormat::ufw:
      EXPECT_NE(rules.find("ufw allow proto tcp from any to any port 22,7946"), std::string::npos);
      break;
    }
  }
}

TEST(Firewall, SshPortFollowsTheInventory)
{
  auto plan = testing::plan_for("ssh_port: 2222\nadmin_cidrs: [10.0.0.0/24]\n"
                                "nodes: [{name: m1, address: 10.0.0.1, roles: [master]}]\n");
  auto rules = make_nftables_generator(plan)->render(plan.inventory.nodes[0]);
  EXPECT_NE(rules.find("ip saddr @admin_v4 tcp dport { 2222, 7946 } accept"), std::string::npos);
}

TEST(Iptables, IpsetsKeepTheRuleCountFlatAndMultiportStaysWithinFifteen)
{
  auto small = testing::plan_for(testing::generated_inventory(10));
  auto large = testing::plan_for(testing::generated_inventory(2000));
  auto small_rules = make_iptables_generator(small)->render(*small.inventory.find("n5"));
  auto large_rules = make_iptables_generator(large)->render(*large.inventory.find("n5"));
  EXPECT_EQ(count_lines_starting(small_rules, "-A "), count_lines_starting(large_rules, "-A "));
  EXPECT_GT(count_lines_starting(large_rules, "add "), count_lines_starting(small_rules, "add "));
  EXPECT_EQ(port_lists({{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {7, 7}, {10, 20}, {30, 40}, {50, 60}, {70, 80},
                        {90, 90}})
              .size(),
            2u);
}

TEST(Ufw, OneRulePerPeerAddress)
{
  auto plan = testing::demo_plan();
  auto rules = make_ufw_generator(plan)->render(*plan.inventory.find("master1"));
  EXPECT_NE(rules.find("ufw allow proto udp from 10.213.0.21 to any port 8472"), std::string::npos);
  EXPECT_NE(rules.find("ufw allow proto tcp from 10.213.0.0/24 to any port 22,7946"), std::string::npos);
  EXPECT_NE(rules.find("ufw default deny incoming"), std::string::npos);
  EXPECT_EQ(rules.find("ufw reset"), std::string::npos);
}

// Consecutive peers collapse into the most compact exact form each backend
// takes: nftables interval sets a range, ipset an IPv4 range and IPv6
// prefixes, firewalld and ufw prefixes; a lone address stays plain.
TEST(Firewall, ConsecutivePeersCollapseInEachBackendsForm)
{
  auto plan = testing::plan_for(R"(admin_cidrs: [10.0.0.0/24]
nodes:
  - {name: m1, address: 10.0.0.11, roles: [master]}
  - {name: m2, address: 10.0.0.12, roles: [master]}
  - {name: m3, address: 10.0.0.13, roles: [master]}
  - {name: w1, address: 10.0.0.21, roles: [worker]}
  - {name: w5, address: "fd00::5", roles: [worker]}
  - {name: w6, address: "fd00::6", roles: [worker]}
  - {name: w7, address: "fd00::7", roles: [worker]}
)");
  const auto& node = *plan.inventory.find("w1");
  auto nft = make_nftables_generator(plan)->render(node);
  EXPECT_NE(nft.find("set master_v4 {\n\t\ttype ipv4_addr; flags interval; auto-merge;\n\t\telements = {\n"
                     "\t\t\t10.0.0.11-10.0.0.13\n"),
            std::string::npos);
  EXPECT_NE(nft.find("\t\t\tfd00::5-fd00::7\n"), std::string::npos);
  EXPECT_NE(nft.find("\t\t\t10.0.0.0/24\n"), std::string::npos);

  auto ipt = make_iptables_generator(plan)->render(node);
  EXPECT_NE(ipt.find("\nadd pm-master-v4 10.0.0.11-10.0.0.13\n"), std::string::npos);
  EXPECT_NE(ipt.find("\nadd pm-worker-v4 10.0.0.21\n"), std::string::npos);
  EXPECT_NE(ipt.find("\nadd pm-worker-v6 fd00::5\nadd pm-worker-v6 fd00::6/127\n"), std::string::npos);

  auto firewalld = make_firewalld_generator(plan)->render(node);
  EXPECT_NE(firewalld.find("$fw --new-ipset=pm-master-v4 --type=hash:net\ncat >\"$entries\" <<'PORTMATRIX_ENTRIES'\n"
                           "10.0.0.11\n10.0.0.12/31\nPORTMATRIX_ENTRIES\n"
                           "$fw --ipset=pm-master-v4 --add-entries-from-file=\"$entries\"\n"),
            std::string::npos);
  EXPECT_EQ(firewalld.find("10.0.0.11-"), std::string::npos);

  auto ufw = make_ufw_generator(plan)->render(*plan.inventory.find("m1"));
  EXPECT_NE(ufw.find("ufw allow proto tcp from 10.0.0.11 to any port "), std::string::npos);
  EXPECT_NE(ufw.find("ufw allow proto tcp from 10.0.0.12/31 to any port "), std::string::npos);
  EXPECT_EQ(ufw.find("from 10.0.0.13 "), std::string::npos);

  for (const auto* text : {&nft, &ipt, &firewalld, &ufw}) {
    EXPECT_EQ(text->find("/32"), std::string::npos);
    EXPECT_EQ(text->find("/128"), std::string::npos);
  }
}

// A client node inside a client CIDR is not listed twice: firewalld rejects
// an ipset entry that overlaps another.
TEST(Firewall, NoOverlappingEntries)
{
  auto plan = testing::plan_for(R"(client_cidrs: [192.0.2.0/24]
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: c1, address: 192.0.2.51, roles: [client]}
)");
  auto firewalld = make_firewalld_generator(plan)->render(plan.inventory.nodes[0]);
  EXPECT_NE(firewalld.find("<<'PORTMATRIX_ENTRIES'\n192.0.2.0/24\nPORTMATRIX_ENTRIES\n$fw --ipset=pm-client-v4 "),
            std::string::npos);
  EXPECT_EQ(firewalld.find("192.0.2.51"), std::string::npos);
}

} // namespace portmatrix

namespace portmatrix {
namespace {

// Calico's IP-in-IP and Cilium's IPsec: IP protocols 4 and 50, no ports.
const char* const k_portless_inventory = R"(cluster: tunnels
options: {calico_encapsulation: ipip}
admin_cidrs: [10.0.0.0/24]
nodes:
  - {name: cp1, address: 10.0.0.1, roles: [master]}
  - {name: w1, address: 10.0.0.11, roles: [worker]}
  - {name: w6, address: 'fd00::12', roles: [worker]}
)";

} // namespace

// Protocol 4 goes by number everywhere: /etc/protocols names it "ipencap",
// and its "ipip" is protocol 94.
TEST(Firewall, IpInIpIsAdmittedByNumberInEveryBackend)
{
  auto plan = testing::plan_for(k_portless_inventory, "kubernetes-1.31,calico-3.29");
  const auto& node = *plan.inventory.find("w1");
  auto nft = make_nftables_generator(plan)->render(node);
  EXPECT_NE(nft.find("ip saddr @master_v4 meta l4proto 4 accept"), std::string::npos) << nft;
  EXPECT_NE(nft.find("ip6 saddr @worker_v6 meta l4proto 4 accept"), std::string::npos);
  auto iptables = make_iptables_generator(plan)->render(node);
  EXPECT_NE(iptables.find("-m set --match-set pm-worker-v4 src -p 4 -m comment"), std::string::npos) << iptables;
  auto firewalld = make_firewalld_generator(plan)->render(node);
  EXPECT_NE(firewalld.find("source ipset=\"pm-master-v4\" protocol value=\"4\" accept"), std::string::npos) << firewalld;
  EXPECT_EQ(firewalld.find("value=\"ipip\""), std::string::npos);
  // ufw's proto knows no IP-in-IP: before.rules and before6.rules get it.
  auto ufw = make_ufw_generator(plan)->render(node);
  EXPECT_EQ(ufw.find("ufw allow proto ipip"), std::string::npos);
  EXPECT_NE(ufw.find("-A ufw-before-input -s 10.0.0.1 -p 4 -m comment"), std::string::npos) << ufw;
  EXPECT_NE(ufw.find("-A ufw6-before-input -s fd00::12 -p 4 -m comment"), std::string::npos) << ufw;
  EXPECT_NE(ufw.find("pm_before_rules \"${UFW_BEFORE6_RULES:-/etc/ufw/before6.rules}\""), std::string::npos);
}

TEST(Firewall, EspIsAdmittedByNumberOrName)
{
  auto plan = testing::plan_for(R"(cluster: ipsec
options: {cilium_encryption: ipsec}
nodes:
  - {name: cp1, address: 10.0.0.1, roles: [master]}
  - {name: w1, address: 10.0.0.11, roles: [worker]}
)",
                                "kubernetes-1.31,cilium-1.16");
  const auto& node = *plan.inventory.find("cp1");
  EXPECT_NE(make_nftables_generator(plan)->render(node).find("meta l4proto 50 accept"), std::string::npos);
  EXPECT_NE(make_iptables_generator(plan)->render(node).find("src -p 50 -m comment"), std::string::npos);
  EXPECT_NE(make_firewalld_generator(plan)->render(node).find("protocol value=\"esp\" accept"), std::string::npos);
  EXPECT_NE(make_ufw_generator(plan)->render(node).find("ufw allow proto esp from 10.0.0.11 comment"), std::string::npos);
}

} // namespace portmatrix
