// The evaluate request's work and wire format: preflight's evaluators over a
// node's inbound flows, counted per port, failures listed up to a bound; and
// the firewall reader's frame.
#include <gtest/gtest.h>

#include <algorithm>

#include "../preflight/fixtures.hpp"
#include "agent/evaluate.hpp"
#include "agent/firewall_reader.hpp"

namespace portmatrix {
namespace {

FirewallText
golden_worker1_text()
{
  FirewallText text;
  text.nft_present = true;
  text.nft = testing::read_fixture("unit/preflight/fixtures/golden-worker1.nft.json");
  return text;
}

std::uint64_t
inbound_ports(const Plan& plan, const Node& node)
{
  std::uint64_t ports = 0;
  plan.for_each_flow([&](const Flow& flow) {
    if (flow.to && &plan.inventory.nodes[*flow.to] == &node &&
        (flow.protocol == Protocol::tcp || flow.protocol == Protocol::udp)) {
      ports += flow.range.size();
    }
  });
  return ports;
}

TEST(Evaluate, TheGeneratedRulesetPassesEveryPortOfEveryInboundFlow)
{
  auto plan = testing::golden_plan();
  const auto& worker = *plan.inventory.find("worker1");
  auto reply = evaluate_firewalls(plan, worker, golden_worker1_text(), "");
  EXPECT_EQ(reply.error, "");
  EXPECT_EQ(reply.backend, "nftables");
  EXPECT_EQ(reply.ports, inbound_ports(plan, worker));
  EXPECT_EQ(reply.failed, 0u);
  EXPECT_EQ(reply.passed + reply.unknown, reply.ports);
  for (const auto& f : reply.failures) EXPECT_EQ(f.decision, Decision::unknown) << f.rule; // IPv6 sources only
}

TEST(Evaluate, ADroppedPortIsAFailureNamingItsRule)
{
  auto plan = testing::golden_plan();
  const auto& worker = *plan.inventory.find("worker1");
  // No firewall text at all: nothing is dropped, so expect-deny flows fail.
  FirewallText none;
  auto open = evaluate_firewalls(plan, worker, none, "");
  EXPECT_EQ(open.backend, "none");
  EXPECT_GT(open.failed, 0u);
  // The failures (undecided ones too: the IPv6 sources to this IPv4 node)
  // include the expect-deny flows, which nothing drops now.
  auto denied = std::find_if(open.failures.begin(), open.failures.end(),
                             [](const EvaluateFailure& f) { return f.decision != Decision::unknown; });
  ASSERT_NE(denied, open.failures.end());
  EXPECT_EQ(denied->expect, Expect::deny);
  EXPECT_EQ(denied->decision, Decision::accept);
}

TEST(Evaluate, AnUnreadableFirewallIsAnErrorNotAPass)
{
  auto plan = testing::golden_plan();
  const auto& worker = *plan.inventory.find("worker1");
  auto reply = evaluate_firewalls(plan, worker, unexpected(std::string("nft: permission denied")), "");
  EXPECT_EQ(reply.error, "nft: permission denied");
  EXPECT_EQ(reply.ports, 0u);
  FirewallText bad;
  bad.nft_present = true;
  bad.nft = "{not json";
  EXPECT_NE(evaluate_firewalls(plan, worker, bad, "").error, "");
}

TEST(Evaluate, ReplyRoundTripsThroughJson)
{
  EvaluateReply reply;
  reply.backend = "nftables+iptables";
  reply.ports = 5536;
  reply.passed = 5535;
  reply.failed = 1;
  reply.failures.push_back({"master1", Protocol::udp, {31000, 31000}, Expect::allow, Decision::drop, "inet x input #3"});
  reply.failures_left_out = 7;
  auto back = parse_evaluate_reply(to_json(reply));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->backend, reply.backend);
  EXPECT_EQ(back->ports, 5536u);
  EXPECT_EQ(back->failed, 1u);
  EXPECT_EQ(back->failures_left_out, 7u);
  ASSERT_EQ(back->failures.size(), 1u);
  EXPECT_EQ(back->failures[0].from, "master1");
  EXPECT_EQ(back->failures[0].protocol, Protocol::udp);
  EXPECT_EQ(back->failures[0].ports, (PortRange{31000, 31000}));
  EXPECT_EQ(back->failures[0].decision, Decision::drop);
  EXPECT_FALSE(parse_evaluate_reply("[]"));
  EXPECT_FALSE(parse_evaluate_reply(R"({"error": ""})"));
}

TEST(FirewallReader, FrameRoundTripsAndToleratesBytesThatAreNotUtf8)
{
  FirewallText text = golden_worker1_text();
  text.iptables = "-A INPUT -m comment --comment \"\xff\" -j DROP\n";
  auto back = decode_firewall_text(encode_firewall_text(text));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->nft, text.nft);
  EXPECT_TRUE(back->nft_present);
  EXPECT_NE(back->iptables.find("-j DROP"), std::string::npos);
  EXPECT_FALSE(decode_firewall_text("{}"));
}

} // namespace
} // namespace portmatrix
