// check --coverage: which ports of each flow are probed, and the counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "demo.hpp"
#include "plan/coverage.hpp"

namespace portmatrix {
namespace {

using testing::generated_inventory;
using testing::plan_for;

std::uint64_t
ports_in(const std::vector<PortRange>& ranges)
{
  std::uint64_t total = 0;
  for (const auto& range : ranges) total += range.size();
  return total;
}

TEST(SamplePorts, EdgesPlusDistinctSeededPortsSortedAndMerged)
{
  auto ports = sample_ports({30000, 32767}, 8, 42, 7);
  ASSERT_GE(ports.size(), 2u);
  EXPECT_EQ(ports.front().min, 30000);
  EXPECT_EQ(ports.back().max, 32767);
  EXPECT_EQ(ports_in(ports), 10u);
  for (std::size_t i = 1; i < ports.size(); ++i) EXPECT_GT(ports[i].min, ports[i - 1].max + 1);
  EXPECT_EQ(sample_ports({30000, 32767}, 8, 42, 7), ports); // the same seed and key: the same ports
  EXPECT_NE(sample_ports({30000, 32767}, 8, 43, 7), ports); // another seed: others
  EXPECT_NE(sample_ports({30000, 32767}, 8, 42, 8), ports); // another flow: others
}

TEST(SamplePorts, ASmallRangeIsProbedWhole)
{
  EXPECT_EQ(sample_ports({2379, 2380}, 8, 1, 1), std::vector<PortRange>({{2379, 2380}}));
  EXPECT_EQ(sample_ports({10, 19}, 8, 1, 1), std::vector<PortRange>({{10, 19}}));
  EXPECT_EQ(sample_ports({6443, 6443}, 0, 1, 1), std::vector<PortRange>({{6443, 6443}}));
  EXPECT_EQ(ports_in(sample_ports({10, 20}, 8, 1, 1)), 10u); // 11 ports: 2 edges + 8
  EXPECT_EQ(ports_in(sample_ports({10, 2000}, 0, 1, 1)), 2u);
}

// Every pair of ruleset groups with flows has exactly one representative
// pair, probed on every port; every other pair of nodes with a flow is
// probed too (path coverage), on a sample of a long range.
TEST(CoverageSelector, OneFullPairPerPairOfGroupsAndEveryPairProbed)
{
  auto plan = plan_for(generated_inventory(60));
  CoverageSelector selector(plan, {CoverageMode::sample, 5, 4});
  auto group_of = ruleset_group_of(plan.inventory);
  std::map<std::pair<std::size_t, std::size_t>, std::set<std::pair<std::size_t, std::size_t>>> full_pairs;
  std::set<std::pair<std::size_t, std::size_t>> group_pairs;
  std::uint64_t sampled = 0;
  plan.for_each_flow([&](const Flow& flow) {
    auto ports = selector.ports(flow);
    ASSERT_FALSE(ports.empty());
    EXPECT_EQ(ports.front().min, flow.range.min);
    EXPECT_EQ(ports.back().max, flow.range.max);
    if (!flow.to) {
      EXPECT_TRUE(selector.full(flow));
      return;
    }
    auto groups = std::make_pair(group_of[flow.from], group_of[*flow.to]);
    group_pairs.insert(groups);
    if (selector.representative(flow)) {
      full_pairs[groups].emplace(flow.from, *flow.to);
      EXPECT_EQ(ports, std::vector<PortRange>{flow.range});
    } else if (flow.range.size() > 6) {
      EXPECT_EQ(ports_in(ports), 6u);
      ++sampled;
    }
  });
  EXPECT_EQ(full_pairs.size(), group_pairs.size()); // every pair of groups has its full pair
  for (const auto& [groups, pairs] : full_pairs) EXPECT_EQ(pairs.size(), 1u);
  EXPECT_GT(sampled, 0u);
}

TEST(CoverageSelector, FullModeProbesEveryPort)
{
  auto plan = plan_for(generated_inventory(20));
  CoverageSelector selector(plan, {CoverageMode::full, 5, 4});
  plan.for_each_flow([&](const Flow& flow) { EXPECT_EQ(selector.ports(flow), std::vector<PortRange>{flow.range}); });
  auto estimate = estimate_coverage(plan, selector);
  EXPECT_EQ(estimate.tally.flows_sampled, 0u);
  EXPECT_EQ(estimate.tally.ports_probed, estimate.tally.ports_required);
}

TEST(CoverageEstimate, SampleProbesFewerPortsAndCountsEveryFlow)
{
  auto plan = plan_for(generated_inventory(100));
  auto full = estimate_coverage(plan, CoverageSelector(plan, {CoverageMode::full, 1, 8}));
  auto sample = estimate_coverage(plan, CoverageSelector(plan, {CoverageMode::sample, 1, 8}));
  auto flows = plan.flows();
  EXPECT_EQ(full.flows, std::size_t(std::count_if(flows.begin(), flows.end(),
                                                  [](const Flow& f) { return f.protocol != Protocol::vrrp; })));
  EXPECT_EQ(sample.flows, full.flows);
  EXPECT_EQ(sample.tally.flows_full + sample.tally.flows_sampled, sample.flows);
  EXPECT_EQ(sample.tally.ports_required, full.tally.ports_required);
  EXPECT_LT(sample.probes * 20, full.probes); // the NodePort ranges dominate the full mesh
  EXPECT_GT(sample.busiest_probes, 0u);
  EXPECT_LE(sample.busiest_probes, full.busiest_probes);
}

TEST(CoverageEstimate, EveryTcpProbeAndEveryUdpPortIsAnEntryAtBothEnds)
{
  auto plan = plan_for(generated_inventory(20));
  auto estimate = estimate_coverage(plan, CoverageSelector(plan, {CoverageMode::full, 1, 8}));
  ASSERT_EQ(estimate.tables.size(), plan.inventory.nodes.size());
  std::vector<TableLoad> expected(plan.inventory.nodes.size());
  plan.for_each_flow([&](const Flow& flow) {
    if (flow.protocol != Protocol::tcp && flow.protocol != Protocol::udp) return;
    auto repeat = flow.to ? 1u : std::uint64_t(vip_repeat(plan, flow));
    auto add = [&](std::size_t node) {
      auto& load = expected[node];
      (flow.protocol == Protocol::tcp ? load.tcp : load.udp) +=
        flow.range.size() * (flow.protocol == Protocol::tcp ? repeat : 1);
    };
    add(flow.from);
    if (flow.to) add(*flow.to);
  });
  for (std::size_t node = 0; node < expected.size(); ++node) {
    EXPECT_EQ(estimate.tables[node].tcp, expected[node].tcp) << plan.inventory.nodes[node].name;
    EXPECT_EQ(estimate.tables[node].udp, expected[node].udp) << plan.inventory.nodes[node].name;
  }
  auto busiest = estimate.tables[estimate.busiest_source];
  EXPECT_GT(busiest.tcp, 0u);
  EXPECT_GT(busiest.udp, 0u);
}

TEST(TableSeconds, EntriesThatFitTakeTheirCpuTime)
{
  TableModel model{1000, 10, 30};
  EXPECT_DOUBLE_EQ(table_seconds({600, 400}, 2.5, model), 2.5);
  EXPECT_DOUBLE_EQ(table_seconds({0, 0}, 0.0, model), 0.0);
}

TEST(TableSeconds, TcpEntriesPastTheCapacityWaitForTheFirstToExpire)
{
  // 2,500 TCP entries made in 1 s, 1,000 at a time live for 10 s each: the
  // first 1,000 by 0.4 s, the next 1,000 as those expire (10-10.4 s), the
  // last 500 as the second thousand expire (from 20 s): about 20.2 s.
  auto seconds = table_seconds({2500, 0}, 1.0, {1000, 10, 30});
  EXPECT_GT(seconds, 20.0);
  EXPECT_LT(seconds, 20.5);
}

TEST(TableSeconds, UdpEntriesLiveLongerThanTcp)
{
  auto tcp = table_seconds({2500, 0}, 1.0, {1000, 10, 30});
  auto udp = table_seconds({0, 2500}, 1.0, {1000, 10, 30});
  auto mixed = table_seconds({1250, 1250}, 1.0, {1000, 10, 30});
  EXPECT_GT(udp, 60.0);
  EXPECT_LT(udp, 60.5);
  EXPECT_GT(mixed, tcp);
  EXPECT_LT(mixed, udp);
}

TEST(TableSeconds, ANodeWithoutRoomNeverFinishes)
{
  EXPECT_TRUE(std::isinf(table_seconds({10, 10}, 1.0, {0, 10, 30})));
}

TEST(RulesetGroups, IndexAndListsAgree)
{
  auto plan = plan_for(generated_inventory(30));
  auto groups = ruleset_groups(plan.inventory);
  auto group_of = ruleset_group_of(plan.inventory);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (const auto* node : groups[g]) EXPECT_EQ(group_of[std::size_t(node - plan.inventory.nodes.data())], g);
  }
}

} // namespace
} // namespace portmatrix
