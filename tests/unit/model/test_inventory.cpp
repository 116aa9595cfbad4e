#include <gtest/gtest.h>

#include "model/inventory.hpp"

namespace portmatrix {
namespace {

Diagnostics
errors_of(std::string_view text)
{
  auto result = parse_inventory(text, "inv.yaml");
  EXPECT_FALSE(result.has_value());
  return result ? Diagnostics{} : result.error();
}

bool
has(const Diagnostics& diagnostics, int line, int column, std::string_view fragment)
{
  for (const auto& d : diagnostics) {
    if (d.line == line && d.column == column && d.message.find(fragment) != std::string::npos) return true;
  }
  std::string all;
  for (const auto& d : diagnostics) all += to_string(d) + "\n";
  ADD_FAILURE() << "no diagnostic at " << line << ":" << column << " containing '" << fragment << "' in:\n" << all;
  return false;
}

} // namespace

TEST(Inventory, LoadsTheDesignExample)
{
  auto inventory = parse_inventory(R"(cluster: prod
profile: apinizer
options: {flannel_backend: vxlan, apinizer_worker_port: 30080}
loadbalancer: {vip: 10.0.0.100, port: 6443}
ports: {kube-apiserver: 6443}
admin_cidrs: [10.0.0.0/24]
agent: {control_port: 7946}
nodes:
  - {name: master1, address: 10.0.0.11, roles: [master]}
  - {name: worker1, address: 10.0.0.21, roles: [worker]}
  - {name: lb1,     address: 10.0.0.5,  roles: [loadbalancer]}
  - {name: cp6,     address: "fd00::6", roles: [control-plane, worker]}
)",
                                   "inv.yaml");
  ASSERT_TRUE(inventory.has_value());
  EXPECT_EQ(inventory->cluster, "prod");
  ASSERT_EQ(inventory->nodes.size(), 4u);
  EXPECT_TRUE(inventory->nodes[3].ipv6);
  EXPECT_TRUE(inventory->nodes[3].has(Role::master));
  EXPECT_TRUE(inventory->nodes[3].has(Role::worker));
  EXPECT_EQ(inventory->loadbalancer->vip, "10.0.0.100");
  EXPECT_EQ(inventory->control_port, 7946);
  EXPECT_EQ(inventory->port_overrides.at("kube-apiserver").value, (PortRange{6443, 6443}));
}

TEST(Inventory, ReportsEveryErrorOfAFileAtOnceWithPositions)
{
  auto errors = errors_of(R"(cluster: prod
colour: blue
ports: {kube-apiserver: 70000, etcd: 2380-2379}
admin_cidrs: [10.0.0.0/33]
nodes:
  - {name: m1, address: 10.0.0.11, roles: [master]}
  - {name: m1, address: 10.0.0.12, roles: [wizard]}
  - {name: w1, address: 10.0.0.11, roles: [worker]}
  - {name: w2, address: 10.0.0.300, roles: [worker]}
  - {name: w3, address: 10.0.0.31}
  - {name: w4, address: 10.0.0.41, roles: []}
)");
  EXPECT_TRUE(has(errors, 2, 1, "unknown key 'colour'"));
  EXPECT_TRUE(has(errors, 3, 25, "outside 1-65535"));
  EXPECT_TRUE(has(errors, 3, 38, "first port above its last"));
  EXPECT_TRUE(has(errors, 4, 15, "not an address or CIDR"));
  EXPECT_TRUE(has(errors, 7, 12, "duplicate node name 'm1'"));
  EXPECT_TRUE(has(errors, 7, 44, "unknown role 'wizard'"));
  EXPECT_TRUE(has(errors, 8, 25, "duplicate address 10.0.0.11"));
  EXPECT_TRUE(has(errors, 9, 25, "not an IPv4 or IPv6 address"));
  EXPECT_TRUE(has(errors, 10, 5, "has no roles"));
  EXPECT_TRUE(has(errors, 11, 43, "has no roles"));
  EXPECT_EQ(errors.size(), 10u);
}

TEST(Inventory, ReportsSyntaxErrorsWithTheirPosition)
{
  auto errors = errors_of("nodes:\n  - {name: a, address: [\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].file, "inv.yaml");
  EXPECT_GT(errors[0].line, 0);
}

TEST(Inventory, RejectsEmptyAndNonMappingDocuments)
{
  EXPECT_TRUE(has(errors_of(""), 0, 0, "empty"));
  EXPECT_TRUE(has(errors_of("- a\n- b\n"), 1, 1, "must be a mapping"));
  EXPECT_TRUE(has(errors_of("cluster: x\n"), 1, 1, "no 'nodes'"));
}

TEST(Inventory, ChecksOptionsAndOverridesAgainstTheProfile)
{
  auto inventory = parse_inventory(R"(options: {flannel_backend: calico, colour: red}
ports: {kube-apiserver: 8443, etcdd: 2379}
nodes: [{name: m1, address: 10.0.0.1, roles: [master]}]
)",
                                   "inv.yaml");
  ASSERT_TRUE(inventory.has_value());
  auto profile = load_profile("apinizer");
  ASSERT_TRUE(profile.has_value());
  auto problems = check_against(*inventory, *profile);
  EXPECT_TRUE(has(problems, 1, 11, "cannot be 'calico'"));
  EXPECT_TRUE(has(problems, 1, 36, "unknown option 'colour'"));
  EXPECT_TRUE(has(problems, 2, 31, "override of port 'etcdd'"));
  EXPECT_EQ(problems.size(), 3u);
}

TEST(Inventory, AddressAndCidrParsing)
{
  bool ipv6 = false;
  EXPECT_TRUE(parse_cidr("10.0.0.0/8", ipv6));
  EXPECT_FALSE(ipv6);
  EXPECT_TRUE(parse_cidr("fd00::/64", ipv6));
  EXPECT_TRUE(ipv6);
  EXPECT_FALSE(parse_cidr("fd00::/129", ipv6));
  EXPECT_FALSE(parse_cidr("10.0.0.0/", ipv6));
  EXPECT_FALSE(parse_address("10.0.0", ipv6));
}

} // namespace portmatrix
