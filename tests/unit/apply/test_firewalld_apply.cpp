// apply/ for firewalld: drift read from firewalld's own nftables ruleset
// (fixtures/firewalld-worker1.nft.json: `nft -j list ruleset` of a real
// firewalld 1.3 running the zone that `firewall --format firewalld`
// generates for the golden inventory's worker1, bound to eth0), and the
// interface apply binds the zone to.
#include <gtest/gtest.h>

#include <algorithm>

#include "../preflight/fixtures.hpp"
#include "apply/backend.hpp"
#include "apply/drift.hpp"

namespace portmatrix {
namespace {

NftRuleset
firewalld_ruleset()
{
  auto ruleset = NftRuleset::parse(testing::read_fixture("unit/preflight/fixtures/firewalld-worker1.nft.json"));
  if (!ruleset) throw std::runtime_error(ruleset.error());
  return std::move(ruleset.value());
}

FirewalldLive
running_zone(const NftRuleset& table)
{
  return {true, table, true, "portmatrix", "portmatrix\n  interfaces: eth0\n"};
}

bool
has_finding(const DriftReport& report, const std::string& kind, const std::string& detail_start)
{
  return std::any_of(report.findings.begin(), report.findings.end(), [&](const DriftFinding& f) {
    return f.kind == kind && f.detail.starts_with(detail_start);
  });
}

TEST(FirewalldDrift, TheGeneratedZoneRunningInFirewalldIsInSync)
{
  auto plan = testing::golden_plan();
  const auto& worker = *plan.inventory.find("worker1");
  auto live = firewalld_ruleset();
  auto report = firewalld_drift(plan, worker, live, running_zone(live), "eth0");
  EXPECT_EQ(report.backend, "firewalld");
  EXPECT_TRUE(report.table_present);
  EXPECT_GT(report.flows_checked, 10u);
  for (const auto& f : report.findings) ADD_FAILURE() << f.kind << ": " << f.detail << " " << f.flow.rule;
  EXPECT_TRUE(report.other_filters.empty());
}

TEST(FirewalldDrift, AStoppedFirewalldOrAnUnboundZoneIsDrift)
{
  auto plan = testing::golden_plan();
  const auto& worker = *plan.inventory.find("worker1");
  auto live = firewalld_ruleset();
  auto stopped = firewalld_drift(plan, worker, live, FirewalldLive{}, "eth0");
  EXPECT_FALSE(stopped.table_present);
  EXPECT_TRUE(has_finding(stopped, "table-missing", "firewalld is not running"));

  auto no_zone = running_zone(live);
  no_zone.zone_exists = false;
  EXPECT_TRUE(has_finding(firewalld_drift(plan, worker, live, no_zone, "eth0"), "table-missing", "no firewalld zone"));

  auto no_table = running_zone(live); // firewalld on its iptables backend
  no_table.table.reset();
  EXPECT_TRUE(has_finding(firewalld_drift(plan, worker, live, no_table, "eth0"), "table-missing",
                          "firewalld runs the zone portmatrix but has no table inet firewalld"));

  // eth0 moved to the zone public, which also has a source of its own.
  auto moved = running_zone(live);
  moved.interface_zone = "public";
  moved.active_zones = "public\n  interfaces: eth0\n  sources: 203.0.113.0/24\n";
  auto report = firewalld_drift(plan, worker, live, moved, "eth0");
  EXPECT_TRUE(has_finding(report, "table-edited", "the interface eth0 is not in the zone portmatrix (zone public)"));
  EXPECT_EQ(report.other_filters, (std::vector<std::string>{"firewalld zone public (interfaces: eth0)",
                                                            "firewalld zone public (sources: 203.0.113.0/24)"}));
}

TEST(FirewalldDrift, FirewalldsRulesetIsEvaluatedThroughItsZoneChains)
{
  auto live = firewalld_ruleset();
  // Past firewalld's `ct status dnat accept` (a first packet to the node is not NATed) into the zone's chains.
  auto kubelet = live.decide(testing::packet("192.0.2.11", Protocol::tcp, 10250, "192.0.2.21"));
  EXPECT_EQ(kubelet.decision, Decision::accept);
  EXPECT_NE(kubelet.rule.find("inet firewalld filter_IN_portmatrix_allow"), std::string::npos) << kubelet.rule;
  EXPECT_NE(kubelet.rule.find("@pm-master-v4 tcp dport 10250 accept"), std::string::npos) << kubelet.rule;
  // The zone's target DROP.
  auto other = live.decide(testing::packet("198.51.100.7", Protocol::tcp, 10250, "192.0.2.21"));
  EXPECT_EQ(other.decision, Decision::drop);
  EXPECT_NE(other.rule.find("inet firewalld filter_IN_portmatrix"), std::string::npos) << other.rule;
}

TEST(FirewalldApply, TheRulesetNamesTheInterfaceAfterItsFirstLine)
{
  EXPECT_EQ(firewalld_ruleset_for("#!/bin/sh\nset -e\n", "eth0"),
            "#!/bin/sh\nPORTMATRIX_IFACE=eth0 # the interface holding the node's address (firewall apply)\nset -e\n");
  EXPECT_EQ(firewalld_ruleset_for("set -e\n", "ens 3"),
            "PORTMATRIX_IFACE='ens 3' # the interface holding the node's address (firewall apply)\nset -e\n");
}

} // namespace
} // namespace portmatrix
