// The nftables evaluator on real `nft -j list ruleset` output: the generated
// ruleset for the golden inventory's worker1 (fixtures/golden-worker1.nft.json,
// from tests/golden/expected/firewall-worker1.nftables) and a hand-written one
// (fixtures/handwritten.nft, listed as handwritten.nft.json).
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "preflight/nftables.hpp"
#include "preflight/preflight.hpp"

namespace portmatrix {
namespace {

using testing::packet;

NftRuleset
load(const std::string& name)
{
  auto ruleset = NftRuleset::parse(testing::read_fixture("unit/preflight/fixtures/" + name));
  if (!ruleset) throw std::runtime_error(ruleset.error());
  return std::move(ruleset.value());
}

TEST(NftRuleset, GeneratedRulesetAcceptsEveryRequiredFlowOfTheWorker)
{
  auto plan = testing::golden_plan();
  auto ruleset = load("golden-worker1.nft.json");
  const auto& worker = *plan.inventory.find("worker1");
  auto results = check_firewall(plan, worker, {&ruleset});
  ASSERT_GT(results.size(), 10u);
  std::size_t from_masters = 0;
  for (const auto& r : results) {
    if (r.status == CheckStatus::skip) continue; // an IPv6 source to an IPv4 node
    // Flows the profile says must stay closed (client -> kubelet) are dropped by the policy.
    auto expected = r.expect == Expect::allow ? Decision::accept : Decision::drop;
    EXPECT_EQ(r.decision, expected) << r.from << " " << to_string(r.ports) << " " << r.rule;
    EXPECT_EQ(r.status, CheckStatus::pass) << r.rule;
    EXPECT_TRUE(r.rule.starts_with(r.expect == Expect::allow ? "inet portmatrix input #" : "inet portmatrix input policy drop"))
      << r.rule;
    if (r.from.starts_with("master") && r.expect == Expect::allow) ++from_masters;
  }
  EXPECT_GE(from_masters, 3u * 4); // 10250/tcp, 30000-32767 tcp and udp, 8472/udp from each master
}

TEST(NftRuleset, GeneratedRulesetDropsAPortTheWorkerDoesNotNeedByPolicy)
{
  auto ruleset = load("golden-worker1.nft.json");
  auto d = ruleset.decide(packet("192.0.2.11", Protocol::tcp, 6443, "192.0.2.21"));
  EXPECT_EQ(d.decision, Decision::drop);
  EXPECT_EQ(d.rule, "inet portmatrix input policy drop");
  // The NodePort range from a master: one decision for the whole range.
  auto runs = decide_by_interval({30000, 32767}, ruleset.breakpoints(), [&](std::uint16_t port) {
    return ruleset.decide(packet("192.0.2.12", Protocol::udp, port, "192.0.2.21"));
  });
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].decision, Decision::accept);
  EXPECT_NE(runs[0].rule.find("@master_v4 udp dport { 8472, 30000-32767 } accept"), std::string::npos) << runs[0].rule;
  // A worker may not reach the kubelet of another worker.
  EXPECT_EQ(ruleset.decide(packet("192.0.2.22", Protocol::tcp, 10250, "192.0.2.21")).decision, Decision::drop);
}

TEST(NftRuleset, DropBeforeAcceptDecidesAndIsNamed)
{
  auto ruleset = load("handwritten.nft.json");
  auto d = ruleset.decide(packet("10.0.0.5", Protocol::tcp, 10250));
  EXPECT_EQ(d.decision, Decision::drop);
  EXPECT_EQ(d.rule, "inet filter input #8: tcp dport 10250 drop comment \"no kubelet\"");
  d = ruleset.decide(packet("10.0.0.5", Protocol::tcp, 6443));
  EXPECT_EQ(d.decision, Decision::accept);
  EXPECT_EQ(d.rule.substr(0, d.rule.find(';')), "ip early in policy accept");
  EXPECT_NE(d.rule.find("inet filter from_peers #15"), std::string::npos) << d.rule;
}

TEST(NftRuleset, BaseChainsRunInPriorityOrder)
{
  auto ruleset = load("handwritten.nft.json");
  auto d = ruleset.decide(packet("10.0.0.5", Protocol::tcp, 2379));
  EXPECT_EQ(d.decision, Decision::drop);
  EXPECT_EQ(d.rule, "ip early in #2: tcp dport 2379 drop");
}

TEST(NftRuleset, JumpReturnAndRejectInAUserChain)
{
  auto ruleset = load("handwritten.nft.json");
  EXPECT_EQ(ruleset.decide(packet("10.0.0.5", Protocol::tcp, 22)).decision, Decision::reject);
  // 10.0.0.99 returns from from_peers before its accepts: the input policy decides.
  auto d = ruleset.decide(packet("10.0.0.99", Protocol::tcp, 6443));
  EXPECT_EQ(d.decision, Decision::drop);
  EXPECT_EQ(d.rule, "inet filter input policy drop");
}

TEST(NftRuleset, NamedIntervalAndConcatenatedSets)
{
  auto ruleset = load("handwritten.nft.json");
  // 10.1.0.5 is inside the range element 10.1.0.1-10.1.0.9 of @peers.
  EXPECT_EQ(ruleset.decide(packet("10.1.0.5", Protocol::udp, 31000)).decision, Decision::accept);
  EXPECT_EQ(ruleset.decide(packet("10.1.0.10", Protocol::udp, 31000)).decision, Decision::drop);
  // ip saddr . tcp dport @svc: 10.0.0.11 . 9000-9010.
  auto d = ruleset.decide(packet("10.0.0.11", Protocol::tcp, 9005));
  EXPECT_EQ(d.decision, Decision::accept);
  EXPECT_NE(d.rule.find("#10: ip saddr . tcp dport @svc accept"), std::string::npos) << d.rule;
  EXPECT_EQ(ruleset.decide(packet("10.0.0.12", Protocol::tcp, 9005)).decision, Decision::drop);
  EXPECT_EQ(ruleset.decide(packet("10.0.0.11", Protocol::tcp, 9011)).decision, Decision::drop);
}

TEST(NftRuleset, AnExpressionItDoesNotModelMakesTheDecisionUnknownNamingTheRule)
{
  auto ruleset = load("handwritten.nft.json");
  auto d = ruleset.decide(packet("192.168.1.1", Protocol::udp, 8472));
  EXPECT_EQ(d.decision, Decision::unknown);
  EXPECT_NE(d.rule.find("inet filter input #11"), std::string::npos) << d.rule;
  EXPECT_NE(d.rule.find("fib"), std::string::npos) << d.rule;
  // The same rule does not apply to TCP: its known match fails first, so no unknown.
  EXPECT_EQ(ruleset.decide(packet("192.168.1.1", Protocol::tcp, 8472)).decision, Decision::drop);
}

TEST(NftRuleset, ARangeIsEvaluatedPerDistinctDecision)
{
  auto ruleset = load("handwritten.nft.json");
  auto runs = decide_by_interval({1, 65535}, ruleset.breakpoints(), [&](std::uint16_t port) {
    return ruleset.decide(packet("10.0.0.5", Protocol::tcp, port));
  });
  std::vector<std::pair<std::string, Decision>> seen;
  for (const auto& run : runs) seen.emplace_back(to_string(run.ports), run.decision);
  std::vector<std::pair<std::string, Decision>> expected{
    {"1-21", Decision::drop},       {"22", Decision::reject},       {"23-2378", Decision::drop},
    {"2379", Decision::drop},       {"2380-6442", Decision::drop},  {"6443", Decision::accept},
    {"6444-10249", Decision::drop}, {"10250", Decision::drop},      {"10251-29999", Decision::drop},
    {"30000-32767", Decision::accept}, {"32768-65535", Decision::drop}};
  EXPECT_EQ(seen, expected);
}

TEST(NftRuleset, NotNftJsonIsAnError)
{
  EXPECT_FALSE(NftRuleset::parse("{\"x\": 1}"));
  EXPECT_FALSE(NftRuleset::parse("table inet x {}"));
  auto empty = NftRuleset::parse(R"({"nftables": [{"metainfo": {"version": "1.0.6"}}]})");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(empty->decide(packet("10.0.0.5", Protocol::tcp, 1)).decision, Decision::accept);
}

} // namespace
} // namespace portmatrix
