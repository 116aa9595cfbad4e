// The streaming expansion (Plan::for_each_flow, flow_groups) against the
// set-based expansion it replaced, kept here as the reference: same flows,
// same order, and group counts that add up to the pairs.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "demo.hpp"

namespace portmatrix {
namespace {

using testing::generated_inventory;
using testing::plan_for;

// Plan::flows() as it was: every pair materialised, duplicates dropped by a
// global set of (from, to, protocol, range).
std::vector<Flow>
reference_flows(const Plan& plan)
{
  const auto& inventory = plan.inventory;
  const auto& matrix = plan.matrix;
  std::vector<std::vector<std::size_t>> by_role(std::size_t(Role::vip) + 1);
  for (std::size_t i = 0; i < inventory.nodes.size(); ++i) {
    for (auto role : inventory.nodes[i].roles) by_role[std::size_t(role)].push_back(i);
  }
  by_role[std::size_t(Role::any)] = by_role[std::size_t(Role::client)];
  std::vector<Flow> flows;
  std::set<std::tuple<std::size_t, std::size_t, Protocol, PortRange>> seen;
  const std::size_t vip_index = inventory.nodes.size();
  for (const auto& requirement : matrix.profile.requirements) {
    if (!matrix.active(requirement)) continue;
    Flow flow;
    flow.protocol = requirement.protocol;
    flow.port = requirement.port;
    flow.purpose = requirement.purpose;
    flow.expect = requirement.expect;
    flow.from_role = requirement.from;
    flow.to_role = requirement.to;
    for (auto from : by_role[std::size_t(requirement.from)]) {
      flow.from = from;
      if (requirement.to == Role::vip) {
        if (!inventory.loadbalancer) continue;
        flow.to.reset();
        flow.range = matrix.vip_range(requirement, &inventory);
        if (seen.emplace(from, vip_index, flow.protocol, flow.range).second) flows.push_back(flow);
        continue;
      }
      flow.range = requirement.range;
      for (auto to : by_role[std::size_t(requirement.to)]) {
        if (to == from) continue;
        flow.to = to;
        if (seen.emplace(from, to, flow.protocol, flow.range).second) flows.push_back(flow);
      }
    }
  }
  return flows;
}

auto
fields(const Flow& f)
{
  return std::tie(f.from, f.to, f.protocol, f.range, f.port, f.purpose, f.expect, f.from_role, f.to_role);
}

std::string
describe(const Plan& plan, const Flow& f)
{
  return fmt::format("{} -> {} {}/{} ({}, {} -> {})", plan.inventory.nodes[f.from].name, plan.flow_target(f),
                     to_string(f.range), to_string(f.protocol), f.port, to_string(f.from_role), to_string(f.to_role));
}

void
expect_same_as_reference(const Plan& plan)
{
  auto expected = reference_flows(plan);
  std::vector<Flow> visited;
  plan.for_each_flow([&](const Flow& flow) { visited.push_back(flow); });
  ASSERT_EQ(visited.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_TRUE(fields(visited[i]) == fields(expected[i]))
      << "flow " << i << ": " << describe(plan, visited[i]) << ", expected " << describe(plan, expected[i]);
  }
  auto wrapped = plan.flows();
  ASSERT_EQ(wrapped.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_TRUE(fields(wrapped[i]) == fields(expected[i]));
}

// Per requirement (from role, to role, protocol, port name: unique in a
// profile), the reference's pairs and the nodes taking part in them.
struct Expected
{
  std::size_t flows = 0;
  std::set<std::size_t> from;
  std::set<std::size_t> to;
};

void
expect_groups_match_reference(const Plan& plan)
{
  auto flows = reference_flows(plan);
  std::map<std::tuple<Role, Role, Protocol, std::string>, Expected> expected;
  for (const auto& f : flows) {
    auto& e = expected[{f.from_role, f.to_role, f.protocol, f.port}];
    ++e.flows;
    e.from.insert(f.from);
    if (f.to) e.to.insert(*f.to);
  }
  std::size_t total = 0;
  std::size_t active = 0;
  for (const auto& r : plan.matrix.profile.requirements) active += plan.matrix.active(r);
  auto groups = plan.flow_groups();
  EXPECT_EQ(groups.size(), active);
  for (const auto& group : groups) {
    const auto& r = *group.requirement;
    EXPECT_EQ(group.vip, r.to == Role::vip);
    const auto e = expected[{r.from, r.to, r.protocol, r.port}];
    auto label = fmt::format("{} -> {} {}/{}", to_string(r.from), to_string(r.to), r.port, to_string(r.protocol));
    EXPECT_EQ(group.flows, e.flows) << label;
    EXPECT_EQ(std::set<std::size_t>(group.from.begin(), group.from.end()), e.from) << label;
    EXPECT_EQ(std::set<std::size_t>(group.to.begin(), group.to.end()), e.to) << label;
    EXPECT_TRUE(std::is_sorted(group.from.begin(), group.from.end())) << label;
    total += group.flows;
  }
  EXPECT_EQ(total, flows.size());
}

std::string
read_text(const std::string& path)
{
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Plan
golden_plan()
{
  return plan_for(read_text(std::string(PORTMATRIX_TEST_DATA) + "/golden/inventory.yaml"));
}

// Requirements that overlap on purpose: the same protocol and range under
// two port names and from several roles (`any` among them), a range and a
// part of it, the same port number over two protocols, a deny over an allow,
// two VIP requirements; nodes with several roles; client CIDRs.
constexpr std::string_view k_overlap_profile = R"(name: overlap
ports:
  api:           {port: 6443, protocol: tcp, purpose: API}
  api-again:     {port: 6443, protocol: tcp, purpose: the API under another name}
  kubelet:       {port: 10250, protocol: tcp, purpose: kubelet}
  vxlan:         {port: 8472, protocol: udp, purpose: VXLAN}
  vxlan-tcp:     {port: 8472, protocol: tcp, purpose: the same number over TCP}
  nodeport:      {port: 30000-32767, protocol: [tcp, udp], purpose: NodePorts}
  nodeport-part: {port: 30000-30010, protocol: tcp, purpose: part of the NodePort range}
requirements:
  - {from: worker, to: master, ports: [api]}
  - {from: [master, worker, any], to: master, ports: [api-again]}
  - {from: master, to: [master, worker], ports: [kubelet]}
  - {from: any, to: worker, ports: [kubelet]}
  - {from: [master, worker], to: [master, worker], ports: [vxlan, vxlan-tcp]}
  - {from: client, to: worker, ports: [nodeport]}
  - {from: any, to: worker, ports: [nodeport, nodeport-part]}
  - {from: [master, worker], to: vip, ports: [api]}
  - {from: any, to: vip, ports: [api-again]}
  - {from: client, to: elasticsearch, ports: [kubelet], expect: deny}
)";

constexpr std::string_view k_overlap_inventory = R"(cluster: overlap
loadbalancer: {vip: 10.0.0.100}
client_cidrs: [192.0.2.0/24]
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: m2, address: 10.0.0.2, roles: [master, worker]}
  - {name: w1, address: 10.0.0.3, roles: [worker]}
  - {name: w2, address: 10.0.0.4, roles: [worker, client]}
  - {name: w3, address: "2001:db8::5", roles: [worker, elasticsearch]}
  - {name: c1, address: 10.0.0.6, roles: [client]}
  - {name: c2, address: 10.0.0.7, roles: [client, master]}
  - {name: w4, address: 10.0.0.9, roles: [worker]}
  - {name: lb, address: 10.0.0.8, roles: [loadbalancer]}
)";

Plan
overlap_plan(std::string_view inventory_text = k_overlap_inventory)
{
  auto profile = parse_profile(k_overlap_profile, "overlap.yaml");
  if (!profile) throw std::runtime_error(to_string(profile.error().front()));
  auto inventory = parse_inventory(inventory_text, "overlap-inventory.yaml");
  if (!inventory) throw std::runtime_error(to_string(inventory.error().front()));
  return make_plan(std::move(*profile), std::move(*inventory));
}

} // namespace

TEST(ForEachFlow, GuideInventoryMatchesTheSetBasedExpansion)
{
  auto plan = golden_plan();
  ASSERT_GT(reference_flows(plan).size(), 100u);
  expect_same_as_reference(plan);
}

TEST(ForEachFlow, OverlappingRequirementsMatchTheSetBasedExpansion)
{
  auto plan = overlap_plan();
  auto flows = reference_flows(plan);
  // The overlap is real: the global set dropped pairs here.
  std::size_t pairs = 0;
  for (const auto& r : plan.matrix.profile.requirements) {
    std::size_t from = 0;
    std::size_t to = 0;
    std::size_t both = 0;
    for (const auto& node : plan.inventory.nodes) {
      bool sends = node.has(r.from) || (r.from == Role::any && node.has(Role::client));
      bool receives = r.to == Role::vip || node.has(r.to);
      from += sends;
      to += receives && r.to != Role::vip;
      both += sends && receives && r.to != Role::vip;
    }
    pairs += r.to == Role::vip ? from : from * to - both;
  }
  ASSERT_LT(flows.size(), pairs);
  expect_same_as_reference(plan);
}

TEST(ForEachFlow, VipWithAndWithoutALoadBalancer)
{
  auto with = overlap_plan();
  std::size_t vip_flows = 0;
  with.for_each_flow([&](const Flow& flow) { vip_flows += !flow.to; });
  EXPECT_GT(vip_flows, 0u);
  std::string text(k_overlap_inventory);
  text.erase(text.find("loadbalancer: {vip: 10.0.0.100}\n"), std::string_view("loadbalancer: {vip: 10.0.0.100}\n").size());
  auto without = overlap_plan(text);
  ASSERT_FALSE(without.inventory.loadbalancer);
  expect_same_as_reference(without);
  without.for_each_flow([](const Flow& flow) { EXPECT_TRUE(flow.to.has_value()); });
}

TEST(ForEachFlow, OptionsAndGeneratedInventoryMatchTheSetBasedExpansion)
{
  expect_same_as_reference(plan_for(generated_inventory(150, "options: {flannel_backend: wireguard}\n")));
  expect_same_as_reference(plan_for(generated_inventory(40), "kubernetes-1.31,flannel-0.27"));
}

TEST(FlowGroups, CountsAndNodesMatchThePairs)
{
  expect_groups_match_reference(golden_plan());
  expect_groups_match_reference(overlap_plan());
  expect_groups_match_reference(plan_for(generated_inventory(60)));
}

TEST(FlowGroups, ARequirementCoveredByEarlierOnesHasNoPairs)
{
  auto plan = overlap_plan();
  bool found = false;
  for (const auto& group : plan.flow_groups()) {
    const auto& r = *group.requirement;
    if (r.port == "nodeport-part") {
      found = true;
      EXPECT_GT(group.flows, 0u); // another range: not a duplicate of nodeport
    }
    if (r.port == "nodeport" && r.from == Role::any && r.protocol == Protocol::tcp) {
      EXPECT_EQ(group.flows, 0u); // client -> worker gave every such pair already
      EXPECT_TRUE(group.from.empty());
      EXPECT_TRUE(group.to.empty());
    }
  }
  EXPECT_TRUE(found);
}

} // namespace portmatrix
