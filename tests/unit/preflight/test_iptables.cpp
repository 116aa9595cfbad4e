// The iptables-save evaluator: the generated rules for the golden
// inventory's worker1 (tests/golden/expected/firewall-worker1.iptables, whose
// ipset and iptables-restore bodies are exactly what ipset save and
// iptables-save print) and a hand-written ruleset.
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "preflight/iptables.hpp"
#include "preflight/preflight.hpp"

namespace portmatrix {
namespace {

using testing::packet;

// The here-document after `opener` in the generated script.
std::string
heredoc(const std::string& script, const std::string& opener)
{
  auto start = script.find(opener);
  if (start == std::string::npos) throw std::runtime_error("no " + opener);
  start = script.find('\n', start) + 1;
  auto end = script.find("PORTMATRIX_", start);
  return script.substr(start, end - start);
}

// The generated chain as iptables-save shows it once applied: INPUT jumps to it.
std::string
as_saved(std::string restore)
{
  return "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j PORTMATRIX-INPUT\n" + restore.substr(restore.find('\n') + 1);
}

IptablesRuleset
generated_worker1()
{
  auto script = testing::read_fixture("golden/expected/firewall-worker1.iptables");
  auto v4 = heredoc(script, "iptables-restore --noflush");
  auto v6 = heredoc(script.substr(script.find("ip6tables-restore")), "ip6tables-restore --noflush");
  return IptablesRuleset::parse(as_saved(v4), as_saved(v6), heredoc(script, "ipset restore"));
}

IptablesRuleset
handwritten()
{
  return IptablesRuleset::parse(testing::read_fixture("unit/preflight/fixtures/handwritten.iptables"), "",
                                testing::read_fixture("unit/preflight/fixtures/handwritten.ipset"));
}

TEST(IptablesRuleset, GeneratedRulesAcceptEveryRequiredFlowOfTheWorker)
{
  auto plan = testing::golden_plan();
  auto ruleset = generated_worker1();
  ASSERT_FALSE(ruleset.empty());
  auto results = check_firewall(plan, *plan.inventory.find("worker1"), {&ruleset});
  ASSERT_GT(results.size(), 10u);
  for (const auto& r : results) {
    if (r.status == CheckStatus::skip) continue;
    auto expected = r.expect == Expect::allow ? Decision::accept : Decision::drop; // client -> kubelet stays closed
    EXPECT_EQ(r.decision, expected) << r.from << " " << to_string(r.ports) << " " << r.rule;
    EXPECT_EQ(r.status, CheckStatus::pass) << r.rule;
    EXPECT_NE(r.rule.find("-A PORTMATRIX-INPUT"), std::string::npos) << r.rule;
  }
  auto d = ruleset.decide(packet("192.0.2.11", Protocol::tcp, 6443, "192.0.2.21"));
  EXPECT_EQ(d.decision, Decision::drop);
  EXPECT_EQ(d.rule, "-A PORTMATRIX-INPUT -j DROP");
  // IPv6: worker6 reaches worker1's VXLAN port through the ip6tables rules.
  d = ruleset.decide(packet("2001:db8::26", Protocol::udp, 8472, "2001:db8::21"));
  EXPECT_EQ(d.decision, Decision::accept);
  EXPECT_NE(d.rule.find("pm-worker-v6"), std::string::npos) << d.rule;
}

TEST(IptablesRuleset, DropBeforeAcceptDecidesAndIsNamed)
{
  auto ruleset = handwritten();
  auto d = ruleset.decide(packet("10.0.0.5", Protocol::tcp, 10250));
  EXPECT_EQ(d.decision, Decision::drop);
  EXPECT_EQ(d.rule, "-A INPUT -p tcp -m tcp --dport 10250 -m comment --comment \"no kubelet\" -j DROP");
  d = ruleset.decide(packet("10.0.0.5", Protocol::tcp, 6443));
  EXPECT_EQ(d.decision, Decision::accept);
  EXPECT_EQ(d.rule, "-A FROM-PEERS -p tcp -m multiport --dports 6443,10250,30000:32767 -j ACCEPT");
}

TEST(IptablesRuleset, UserChainsReturnAndReject)
{
  auto ruleset = handwritten();
  EXPECT_EQ(ruleset.decide(packet("10.0.0.5", Protocol::tcp, 22)).decision, Decision::reject);
  auto d = ruleset.decide(packet("10.0.0.99", Protocol::tcp, 6443));
  EXPECT_EQ(d.decision, Decision::drop);
  EXPECT_EQ(d.rule, "iptables INPUT policy DROP");
  // ipset entries: 10.1.0.5 is in peers, 10.1.0.6 is not.
  EXPECT_EQ(ruleset.decide(packet("10.1.0.5", Protocol::tcp, 31000)).decision, Decision::accept);
  EXPECT_EQ(ruleset.decide(packet("10.1.0.6", Protocol::tcp, 31000)).decision, Decision::drop);
}

TEST(IptablesRuleset, NegationMultiportAndUnknownOptions)
{
  auto ruleset = handwritten();
  EXPECT_EQ(ruleset.decide(packet("192.168.7.3", Protocol::udp, 31000)).decision, Decision::accept);
  EXPECT_EQ(ruleset.decide(packet("192.168.8.3", Protocol::udp, 31000)).decision, Decision::drop);
  EXPECT_EQ(ruleset.decide(packet("192.168.8.3", Protocol::tcp, 9000)).decision, Decision::reject);
  EXPECT_EQ(ruleset.decide(packet("172.16.1.1", Protocol::tcp, 9000)).decision, Decision::drop);
  auto d = ruleset.decide(packet("192.168.8.3", Protocol::udp, 4789));
  EXPECT_EQ(d.decision, Decision::unknown);
  EXPECT_NE(d.rule.find("-m addrtype"), std::string::npos) << d.rule;
}

TEST(IptablesRuleset, EmptyOrAcceptingInputIsNoFirewall)
{
  EXPECT_TRUE(IptablesRuleset::parse("", "", "").empty());
  EXPECT_TRUE(IptablesRuleset::parse("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", "", "").empty());
  EXPECT_FALSE(handwritten().empty());
}

} // namespace
} // namespace portmatrix
