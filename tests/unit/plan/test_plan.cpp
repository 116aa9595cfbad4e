#include <gtest/gtest.h>

#include <algorithm>

#include "demo.hpp"

namespace portmatrix {
namespace {

using testing::demo_plan;
using testing::plan_for;

bool
has_flow(const Plan& plan, std::string_view from, std::string_view to, Protocol protocol, PortRange range,
         Expect expect = Expect::allow)
{
  auto flows = plan.flows();
  return std::any_of(flows.begin(), flows.end(), [&](const Flow& f) {
    return plan.inventory.nodes[f.from].name == from && plan.flow_target(f) == to && f.protocol == protocol &&
           f.range == range && f.expect == expect;
  });
}

const IngressRule*
rule(const std::vector<IngressRule>& rules, Role source, Protocol protocol)
{
  for (const auto& r : rules) {
    if (r.source == source && r.protocol == protocol) return &r;
  }
  return nullptr;
}

} // namespace

TEST(MergeRanges, MergesOverlappingAndAdjacent)
{
  auto merged = merge_ranges({{30000, 32767}, {8472, 8472}, {30080, 30080}, {8473, 8480}, {1, 1}});
  EXPECT_EQ(merged, (std::vector<PortRange>{{1, 1}, {8472, 8480}, {30000, 32767}}));
}

TEST(Flows, DemoHasTheGuidesFlowsAndTheCorrections)
{
  auto plan = demo_plan();
  EXPECT_TRUE(has_flow(plan, "worker1", "master2", Protocol::udp, {8472, 8472}));
  EXPECT_TRUE(has_flow(plan, "worker1", "worker2", Protocol::udp, {8472, 8472}));  // the guide's gap
  EXPECT_TRUE(has_flow(plan, "master1", "worker3", Protocol::udp, {30000, 32767}));
  EXPECT_TRUE(has_flow(plan, "worker2", "vip", Protocol::tcp, {6443, 6443}));
  EXPECT_TRUE(has_flow(plan, "lb1", "master3", Protocol::tcp, {6443, 6443}));
  EXPECT_TRUE(has_flow(plan, "client1", "worker1", Protocol::tcp, {32080, 32080}));
  EXPECT_TRUE(has_flow(plan, "client1", "master1", Protocol::tcp, {2379, 2380}, Expect::deny));
  EXPECT_FALSE(has_flow(plan, "worker1", "worker1", Protocol::udp, {8472, 8472}));  // never to itself
  EXPECT_FALSE(has_flow(plan, "worker1", "master1", Protocol::udp, {51820, 51821})); // wireguard is off
}

// Issue 17 point 4: the generated haproxy.cfg never probes kube-proxy's
// 10256, so the load balancers reach it only under kube_proxy_health_checks.
TEST(Options, KubeProxyHealthIsOpenedOnlyUnderItsOption)
{
  const char* nodes = R"(
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: w1, address: 10.0.0.3, roles: [worker]}
  - {name: lb1, address: 10.0.0.5, roles: [loadbalancer]}
)";
  EXPECT_FALSE(has_flow(plan_for(nodes), "lb1", "w1", Protocol::tcp, {10256, 10256}));
  EXPECT_FALSE(has_flow(demo_plan(), "lb1", "worker1", Protocol::tcp, {10256, 10256}));
  auto on = plan_for(std::string("options: {kube_proxy_health_checks: \"true\"}") + nodes);
  EXPECT_TRUE(has_flow(on, "lb1", "w1", Protocol::tcp, {10256, 10256}));
}

TEST(Flows, FlowsAreUnique)
{
  auto plan = demo_plan();
  auto flows = plan.flows();
  std::set<std::tuple<std::size_t, std::string, Protocol, PortRange>> seen;
  for (const auto& f : flows) EXPECT_TRUE(seen.emplace(f.from, plan.flow_target(f), f.protocol, f.range).second);
}

TEST(Options, WireguardBackendSwitchesTheOverlayPorts)
{
  auto plan = plan_for(R"(options: {flannel_backend: wireguard}
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: m2, address: 10.0.0.2, roles: [master]}
  - {name: w1, address: 10.0.0.3, roles: [worker]}
)");
  EXPECT_TRUE(has_flow(plan, "m1", "m2", Protocol::udp, {51820, 51820}));
  EXPECT_TRUE(has_flow(plan, "w1", "m1", Protocol::udp, {51820, 51820}));
  EXPECT_FALSE(has_flow(plan, "w1", "m1", Protocol::udp, {8472, 8472}));
  // No IPv6 address: flannel's IPv6 WireGuard port 51821 is not needed.
  EXPECT_FALSE(has_flow(plan, "w1", "m1", Protocol::udp, {51821, 51821}));
  EXPECT_EQ(plan.matrix.options.at("flannel_ipv6"), "false");
}

// flannel_ipv6's default comes from the inventory: on when a node has an
// IPv6 address, and the inventory's own choice wins either way.
TEST(Options, FlannelWireguardIpv6PortFollowsTheInventorysAddresses)
{
  const char* nodes = R"(
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: w6, address: "2001:db8::3", roles: [worker]}
)";
  auto dual = plan_for(std::string("options: {flannel_backend: wireguard}") + nodes);
  EXPECT_EQ(dual.matrix.options.at("flannel_ipv6"), "true");
  EXPECT_TRUE(has_flow(dual, "w6", "m1", Protocol::udp, {51821, 51821}));
  EXPECT_TRUE(has_flow(dual, "m1", "w6", Protocol::udp, {51821, 51821}));
  EXPECT_TRUE(has_flow(dual, "w6", "m1", Protocol::udp, {51820, 51820}));
  auto off = plan_for(std::string("options: {flannel_backend: wireguard, flannel_ipv6: \"false\"}") + nodes);
  EXPECT_FALSE(has_flow(off, "w6", "m1", Protocol::udp, {51821, 51821}));
  auto vxlan = plan_for(std::string("options: {flannel_backend: vxlan}") + nodes);
  EXPECT_FALSE(has_flow(vxlan, "w6", "m1", Protocol::udp, {51821, 51821})); // both conditions hold, or none
  auto forced = plan_for(R"(options: {flannel_backend: wireguard, flannel_ipv6: "true"}
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: w1, address: 10.0.0.3, roles: [worker]}
)");
  EXPECT_TRUE(has_flow(forced, "w1", "m1", Protocol::udp, {51821, 51821}));
  for (auto name : {"flannel-0.27", "kubernetes-1.31,flannel-0.27"}) {
    auto plugin = plan_for(std::string("options: {flannel_backend: wireguard}") + nodes, name);
    EXPECT_TRUE(has_flow(plugin, "w6", "m1", Protocol::udp, {51821, 51821})) << name;
    auto v4 = plan_for("options: {flannel_backend: wireguard}\nnodes:\n  - {name: m1, address: 10.0.0.1, roles: [master]}\n"
                       "  - {name: w1, address: 10.0.0.3, roles: [worker]}\n", name);
    EXPECT_TRUE(has_flow(v4, "w1", "m1", Protocol::udp, {51820, 51820})) << name;
    EXPECT_FALSE(has_flow(v4, "w1", "m1", Protocol::udp, {51821, 51821})) << name;
  }
}

TEST(Overrides, MovedPortsFollowEverywhere)
{
  auto plan = plan_for(R"(options: {apinizer_worker_port: "30090"}
ports: {kube-apiserver: 8443, etcd: 12379-12380}
loadbalancer: {vip: 10.0.0.100, port: 16443}
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: w1, address: 10.0.0.3, roles: [worker]}
  - {name: lb1, address: 10.0.0.5, roles: [loadbalancer]}
  - {name: c1, address: 10.0.0.9, roles: [client]}
)");
  EXPECT_TRUE(has_flow(plan, "w1", "m1", Protocol::tcp, {8443, 8443}));
  EXPECT_TRUE(has_flow(plan, "w1", "m1", Protocol::tcp, {12379, 12380}, Expect::deny));
  EXPECT_TRUE(has_flow(plan, "w1", "vip", Protocol::tcp, {16443, 16443}));
  EXPECT_TRUE(has_flow(plan, "c1", "w1", Protocol::tcp, {30090, 30090}));
  EXPECT_FALSE(has_flow(plan, "c1", "w1", Protocol::tcp, {30080, 30080}));
  auto lb_rules = plan.ingress(*plan.inventory.find("lb1"));
  const auto* from_workers = rule(lb_rules, Role::worker, Protocol::tcp);
  ASSERT_TRUE(from_workers);
  EXPECT_EQ(from_workers->ports, (std::vector<PortRange>{{16443, 16443}}));
}

TEST(Ingress, MasterReceivesWhatTheMatrixSaysFromWhom)
{
  auto plan = demo_plan();
  auto rules = plan.ingress(*plan.inventory.find("master1"));
  const auto* workers_tcp = rule(rules, Role::worker, Protocol::tcp);
  ASSERT_TRUE(workers_tcp);
  // Least privilege (issue 17): the workers reach the API server only.
  EXPECT_EQ(workers_tcp->ports, (std::vector<PortRange>{{6443, 6443}}));
  const auto* admin_tcp = rule(rules, Role::admin, Protocol::tcp);
  ASSERT_TRUE(admin_tcp);
  EXPECT_EQ(admin_tcp->ports, (std::vector<PortRange>{{6443, 6443}}));
  const auto* lb_tcp = rule(rules, Role::loadbalancer, Protocol::tcp);
  ASSERT_TRUE(lb_tcp);
  EXPECT_EQ(lb_tcp->ports, (std::vector<PortRange>{{6443, 6443}}));
  EXPECT_EQ(rule(rules, Role::worker, Protocol::udp)->ports, (std::vector<PortRange>{{8472, 8472}}));
  EXPECT_FALSE(rule(rules, Role::client, Protocol::tcp));  // deny requirements open nothing
  EXPECT_FALSE(rule(rules, Role::mongodb, Protocol::tcp));
}

// The ports the agent also holds, so that a deny passes on the evidence that
// something listened and the firewall stopped the probe.
TEST(Ingress, DeniedPortsOfAMaster)
{
  auto plan = demo_plan();
  auto denied = plan.denied(*plan.inventory.find("master1"));
  const auto* workers = rule(denied, Role::worker, Protocol::tcp);
  ASSERT_TRUE(workers);
  EXPECT_EQ(workers->ports, (std::vector<PortRange>{{2379, 2380}, {10257, 10257}, {10259, 10259}}));
  ASSERT_TRUE(rule(denied, Role::client, Protocol::tcp));
  EXPECT_TRUE(plan.denied(*plan.inventory.find("lb1")).empty());
}

TEST(Ingress, OptionsOpenTheControlPlaneToItsConsumers)
{
  auto plan = plan_for(R"(options: {metrics_server: "true", control_plane_monitoring: "true"}
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: w1, address: 10.0.0.3, roles: [worker]}
  - {name: w2, address: 10.0.0.4, roles: [worker]}
)");
  auto rules = plan.ingress(*plan.inventory.find("m1"));
  const auto* workers = rule(rules, Role::worker, Protocol::tcp);
  ASSERT_TRUE(workers);
  EXPECT_EQ(workers->ports, (std::vector<PortRange>{{6443, 6443}, {10250, 10250}, {10257, 10257}, {10259, 10259}}));
  EXPECT_TRUE(has_flow(plan, "w1", "w2", Protocol::tcp, {10250, 10250}));
  auto closed = plan.denied(*plan.inventory.find("m1"));
  const auto* denied = rule(closed, Role::worker, Protocol::tcp);
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->ports, (std::vector<PortRange>{{2379, 2380}}));
}

TEST(Ingress, LoadBalancerAdmitsTheVipPortsAndVrrp)
{
  auto plan = demo_plan();
  auto rules = plan.ingress(*plan.inventory.find("lb1"));
  EXPECT_EQ(rule(rules, Role::master, Protocol::tcp)->ports, (std::vector<PortRange>{{6443, 6443}}));
  EXPECT_EQ(rule(rules, Role::any, Protocol::tcp)->ports, (std::vector<PortRange>{{30080, 30080}, {32080, 32080}}));
  EXPECT_TRUE(rule(rules, Role::loadbalancer, Protocol::vrrp));
}

TEST(Ingress, ClientReceivesNothing)
{
  auto plan = demo_plan();
  EXPECT_TRUE(plan.ingress(*plan.inventory.find("client1")).empty());
}

TEST(Plan, SourceSetsSplitByFamily)
{
  auto plan = plan_for(R"(client_cidrs: [192.0.2.0/24, "2001:db8::/32"]
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: m2, address: "fd00::2", roles: [master, worker]}
)");
  auto texts = [](const std::vector<AddressRange>& cover) { return address_texts(cover, AddressForm::ranges); };
  using Texts = std::vector<std::string>;
  EXPECT_EQ(texts(plan.role_sources.at(Role::master).v4), Texts{"10.0.0.1"});
  EXPECT_EQ(texts(plan.role_sources.at(Role::master).v6), Texts{"fd00::2"});
  EXPECT_EQ(texts(plan.role_sources.at(Role::worker).v6), Texts{"fd00::2"});
  EXPECT_EQ(texts(plan.role_sources.at(Role::client).v4), Texts{"192.0.2.0/24"});
  EXPECT_EQ(texts(plan.role_sources.at(Role::client).v6), Texts{"2001:db8::/32"});
}

// Consecutive addresses become one range, in address order whatever the
// inventory's order; a client node inside a client CIDR adds nothing. (A CIDR
// with host bits set is refused by the inventory; address sets drop them: see
// test_address_set.)
TEST(Plan, SourceSetsAreExactMergedCovers)
{
  auto plan = plan_for(R"(client_cidrs: [192.0.2.0/25, "2001:db8::4/126"]
admin_cidrs: [10.9.0.0/24, 10.9.1.0/24, "fd00::/64", "fd00::1"]
nodes:
  - {name: m3, address: 10.0.0.13, roles: [master]}
  - {name: m1, address: 10.0.0.11, roles: [master]}
  - {name: m2, address: 10.0.0.12, roles: [master]}
  - {name: w1, address: 10.0.0.21, roles: [worker]}
  - {name: w3, address: 10.0.0.23, roles: [worker]}
  - {name: w6, address: "fd00::6", roles: [worker]}
  - {name: w7, address: "fd00::7", roles: [worker]}
  - {name: c1, address: 192.0.2.5, roles: [client]}
  - {name: c2, address: 192.0.2.128, roles: [client]}
)");
  auto texts = [](const std::vector<AddressRange>& cover) { return address_texts(cover, AddressForm::ranges); };
  using Texts = std::vector<std::string>;
  EXPECT_EQ(texts(plan.role_sources.at(Role::master).v4), Texts{"10.0.0.11-10.0.0.13"});
  EXPECT_EQ(texts(plan.role_sources.at(Role::worker).v4), (Texts{"10.0.0.21", "10.0.0.23"}));
  EXPECT_EQ(texts(plan.role_sources.at(Role::worker).v6), Texts{"fd00::6/127"});
  EXPECT_EQ(texts(plan.role_sources.at(Role::client).v4), Texts{"192.0.2.0-192.0.2.128"});
  EXPECT_EQ(texts(plan.role_sources.at(Role::client).v6), Texts{"2001:db8::4/126"});
  EXPECT_EQ(texts(plan.admin_sources.v4), Texts{"10.9.0.0/23"});
  EXPECT_EQ(texts(plan.admin_sources.v6), Texts{"fd00::/64"});
  EXPECT_TRUE(plan.role_sources.at(Role::mongodb).v4.empty());
}

} // namespace portmatrix
