// The prober's pacing against a stand-in agent on loopback
// (prober_fixture.hpp): silence and how long it costs, retries and hedges,
// the window of probes in flight, the conntrack ceiling, finishing early,
// and the ports of a node whose agent did not answer hello.
#include <algorithm>

#include "prober_fixture.hpp"

namespace portmatrix {

using namespace test;

TEST(Prober, SilentUdpPortIsFilteredAfterTheTimeout)
{
  TestResponder responder(test_token());
  auto port = responder.serve(Protocol::udp, "127.0.0.1", Reply::nothing);
  responder.start();
  // No resend within a try: one datagram per try, counted where it lands.
  auto once = options(300ms);
  once.udp_resend = 60s;
  once.retries = 0;
  auto started = Clock::now();
  auto outcome = probe_one(target(Protocol::udp, "127.0.0.1", port), once);
  EXPECT_EQ(outcome.state, ProbeState::filtered);
  EXPECT_EQ(outcome.error, 0);
  EXPECT_GE(Clock::now() - started, 300ms);
  EXPECT_EQ(responder.silent_datagrams(), 1u) << "tried once";

  // The default: one retry, so two tries, two timeouts.
  auto twice = once;
  twice.retries = 1;
  started = Clock::now();
  outcome = probe_one(target(Protocol::udp, "127.0.0.1", port), twice);
  EXPECT_EQ(outcome.state, ProbeState::filtered);
  EXPECT_GE(Clock::now() - started, 600ms);
  EXPECT_EQ(responder.silent_datagrams(), 2u) << "tried twice";
}

// One UDP probe (300 ms timeout, a resend every 100 ms) to an agent that
// answers as `reply` says, with `retries` after the first pass.
PortOutcome
probe_busy_agent(Reply reply, int retries)
{
  TestResponder responder(test_token());
  auto port = responder.serve(Protocol::udp, "127.0.0.1", reply);
  responder.start();
  auto probe_options = options(300ms);
  probe_options.retries = retries;
  return probe_one(target(Protocol::udp, "127.0.0.1", port), probe_options);
}

TEST(Prober, RetryProvesAPortWhoseAgentAnsweredTooLateTheFirstTime)
{
  // Three datagrams in the first pass, all ignored; the retry's first one is answered.
  auto outcome = probe_busy_agent(Reply::late, 1);
  EXPECT_EQ(outcome.state, ProbeState::open);
  ASSERT_TRUE(outcome.responder);
  EXPECT_TRUE(outcome.responder->authentic);
}

TEST(Prober, LateAnswerToTheFirstTryArrivingDuringTheRetryStillProvesTheAgent)
{
  // The first try's answer comes 350 ms after it, during the retry (which
  // sent another nonce): it is authentic for the first nonce.
  auto outcome = probe_busy_agent(Reply::slow, 1);
  EXPECT_EQ(outcome.state, ProbeState::open);
  ASSERT_TRUE(outcome.responder);
  EXPECT_TRUE(outcome.responder->authentic);
}

TEST(Prober, LateAnswersToAPortsEarlierProbesEachProveTheirOwnTarget)
{
  // An overlay's plain and shaped probes of one port, to an agent that
  // answers each datagram 500 ms after it came (tries of 300 ms, one retry).
  // The port's probes go one at a time: the plain one, the shaped one, then
  // their retries. The plain retry gets the plain first try's answer, the
  // shaped retry the shaped first try's: each is authentic for a nonce sent
  // to that target earlier in the round, not for the one in flight nor the
  // last one sent to the port.
  TestResponder responder(test_token());
  auto port = responder.serve(Protocol::udp, "127.0.0.1", Reply::slower);
  responder.start();
  auto plain = target(Protocol::udp, "127.0.0.1", port);
  auto shaped = plain;
  shaped.encapsulation = Encapsulation::vxlan;
  shaped.vni = 1;
  auto probe_options = options(300ms);
  probe_options.retries = 1;
  auto outcomes = Prober::run(test_token(), {plain, shaped}, probe_options);
  ASSERT_EQ(outcomes.size(), 2u);
  for (const auto& outcome : outcomes) {
    SCOPED_TRACE(outcome.target.encapsulation == Encapsulation::none ? "plain" : "shaped");
    ASSERT_EQ(outcome.ports.size(), 1u);
    EXPECT_EQ(outcome.ports[0].state, ProbeState::open);
    ASSERT_TRUE(outcome.ports[0].responder);
    EXPECT_TRUE(outcome.ports[0].responder->authentic);
  }
}

TEST(Prober, WithoutRetriesALateAgentIsFiltered)
{
  EXPECT_EQ(probe_busy_agent(Reply::late, 0).state, ProbeState::filtered);
}

TEST(Prober, ALongRangeOfWhichNothingOpenedIsFilteredInOneTimeout)
{
  // A firewall's drop: retrying it would only double the wait.
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::udp, "127.0.0.1", std::uint32_t(k_silent_range), Reply::nothing);
  ASSERT_TRUE(range);
  responder.start();
  auto probe_options = options(300ms);
  probe_options.udp_resend = 60s; // one datagram per try
  auto started = Clock::now();
  auto outcomes = Prober::run(test_token(), {target(Protocol::udp, "127.0.0.1", range->min, range->max)}, probe_options);
  for (const auto& port : outcomes.at(0).ports) EXPECT_EQ(port.state, ProbeState::filtered) << port.port;
  EXPECT_GE(Clock::now() - started, 300ms);
  EXPECT_EQ(responder.silent_datagrams(), k_silent_range) << "retried: one try more per port";
}

TEST(Prober, SilenceOnASinglePortIsFinalWhereALongRangeOfTheSameHostWasRefusedAndNothingOpened)
{
  // A dead agent's node: its NodePort range is refused (nothing listens),
  // and its single ports (8472, say) fall silent with it once its kernel
  // rate-limits the ICMP errors. Asking them again would only cost a second
  // timeout.
  auto probe_options = options(300ms);
  probe_options.udp_resend = 60s; // one datagram per try
  PortRange closed;
  auto reserved = bind_free_range(Protocol::udp, "127.0.0.1", std::uint32_t(k_silent_range), closed);
  ASSERT_EQ(reserved.size(), k_silent_range);
  reserved.clear(); // bound, now released: closed
  TestResponder dead(test_token());
  auto single = dead.serve(Protocol::udp, "127.0.0.1", Reply::nothing);
  ASSERT_NE(single, 0);
  dead.start();
  auto outcomes = Prober::run(test_token(),
                              {target(Protocol::udp, "127.0.0.1", single),
                               target(Protocol::udp, "127.0.0.1", closed.min, closed.max)},
                              probe_options);
  EXPECT_EQ(outcomes.at(0).ports.at(0).state, ProbeState::filtered);
  for (const auto& port : outcomes.at(1).ports) EXPECT_EQ(port.state, ProbeState::refused) << port.port;
  EXPECT_EQ(dead.silent_datagrams(), 1u) << "the single port was asked again";

  // The comparisons: a long range that is only silent (one that must stay
  // closed, dropped by a live node's firewall), or one that opened, says
  // nothing of the single port: its silence is asked again.
  for (auto reply : {Reply::nothing, Reply::identity}) {
    TestResponder live(test_token());
    auto range = live.serve_range(Protocol::udp, "127.0.0.1", std::uint32_t(k_silent_range), reply);
    auto quiet = live.serve(Protocol::udp, "127.0.0.1", Reply::nothing);
    ASSERT_TRUE(range && quiet != 0);
    live.start();
    outcomes = Prober::run(test_token(),
                           {target(Protocol::udp, "127.0.0.1", quiet),
                            target(Protocol::udp, "127.0.0.1", range->min, range->max)},
                           probe_options);
    EXPECT_EQ(outcomes.at(0).ports.at(0).state, ProbeState::filtered);
    auto range_silent = reply == Reply::nothing ? k_silent_range : 0;
    EXPECT_EQ(live.silent_datagrams(), range_silent + 2) << "the single port tried twice";
  }
}

TEST(Prober, SilenceInARangeWhereOtherPortsOpenedIsAskedAgain)
{
  // Most of the range answers at once, a few ports only the retry: loss,
  // not a firewall, so the silent ones are retried and proven.
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::udp, "127.0.0.1", 32,
                                     [](std::uint32_t i) { return i % 8 == 5 ? Reply::late : Reply::identity; });
  ASSERT_TRUE(range);
  responder.start();
  auto outcomes = Prober::run(test_token(), {target(Protocol::udp, "127.0.0.1", range->min, range->max)}, options(300ms));
  for (const auto& port : outcomes.at(0).ports) {
    EXPECT_EQ(port.state, ProbeState::open) << port.port;
    EXPECT_TRUE(port.responder && port.responder->authentic) << port.port;
  }
}

TEST(Prober, ASilentTcpPortCostsHedgeAfterAndOneTimeoutNotTwoTimeouts)
{
  // A flow that must be denied: its one port stays silent, and its retry
  // runs beside the first try (from hedge_after on), not after it.
  TestResponder responder(test_token());
  auto port = responder.serve(Protocol::tcp, "127.0.0.1", Reply::deaf);
  ASSERT_NE(port, 0);
  responder.start();
  // The comparison: without a hedge within the timeout, the retry waits
  // for the pass (two timeouts, 2 s), measured here on this machine as it is now.
  auto sequential = options(1000ms);
  sequential.hedge_after = 1000ms;
  auto started = Clock::now();
  auto outcome = probe_one(target(Protocol::tcp, "127.0.0.1", port), sequential);
  auto two_timeouts = Clock::now() - started;
  EXPECT_EQ(outcome.state, ProbeState::filtered);
  EXPECT_GE(two_timeouts, 2000ms);

  // Hedged after 100 ms: 1.1 s, the 0.9 s it saves far beyond any jitter of the comparison.
  auto hedged = options(1000ms);
  hedged.hedge_after = 100ms;
  started = Clock::now();
  outcome = probe_one(target(Protocol::tcp, "127.0.0.1", port), hedged);
  auto elapsed = Clock::now() - started;
  EXPECT_EQ(outcome.state, ProbeState::filtered);
  EXPECT_GE(elapsed, 1100ms);
  EXPECT_LT(elapsed, two_timeouts - 400ms) << "the retry waited for the first try: two timeouts";
}

TEST(Prober, AHedgeProvesATcpPortWhoseFirstSynWasLost)
{
  // The first SYN is dropped (the kernel would resend it only after a
  // second); the hedge, started at hedge_after, is answered before the
  // first try's timeout. Compared with the same probe without a hedge,
  // answered only by the retry after the first try's timeout, measured here.
  auto answered_after = [](std::chrono::milliseconds hedge_after) -> std::optional<Clock::duration> {
    TestResponder responder(test_token());
    auto port = responder.serve(Protocol::tcp, "127.0.0.1", Reply::deaf_at_first);
    if (port == 0) return std::nullopt;
    responder.start();
    auto probe_options = options(900ms);
    probe_options.hedge_after = hedge_after;
    auto started = Clock::now();
    auto outcome = probe_one(target(Protocol::tcp, "127.0.0.1", port), probe_options);
    expect_authentic_n1(outcome, port);
    auto answers = responder.answered_at();
    EXPECT_FALSE(answers.empty()) << "hedge_after " << hedge_after.count() << " ms";
    if (answers.empty()) return std::nullopt;
    return *std::min_element(answers.begin(), answers.end()) - started;
  };
  auto unhedged = answered_after(900ms);
  auto hedged = answered_after(300ms);
  ASSERT_TRUE(unhedged && hedged);
  EXPECT_GE(*unhedged, 900ms) << "answered before the first try's timeout without a hedge";
  EXPECT_GE(*hedged, 300ms);
  EXPECT_LT(*hedged, *unhedged - 300ms) << "answered only after the first try's timeout: no hedge";
}

TEST(Prober, ARangeKeepsItsFirstRoundTripsThoughOnlyThoseAreAskedOf)
{
  // The handshake's round trip is asked of the kernel (TCP_INFO) only while
  // the target keeps more: a range longer than k_max_rtt_samples still
  // reports that many, each measured.
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::tcp, "127.0.0.1", 200, Reply::identity);
  ASSERT_TRUE(range);
  responder.start();
  auto outcomes = Prober::run(test_token(), {target(Protocol::tcp, "127.0.0.1", range->min, range->max)}, options());
  for (const auto& port : outcomes.at(0).ports) EXPECT_EQ(port.state, ProbeState::open) << port.port;
  const auto& rtts = outcomes.at(0).rtts;
  EXPECT_EQ(rtts.size(), k_max_rtt_samples);
  for (auto rtt : rtts) EXPECT_GT(rtt.count(), 0);
}

TEST(Prober, FewerProbesAreInFlightWhenAnswersQueueUp)
{
  // An agent that answers 500 lines a second: 256 probes in flight would
  // wait ~0.5 s each, past 30% of the timeout. The window shrinks until
  // answers are prompt again, and every port is still proven.
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::tcp, "127.0.0.1", 768, Reply::busy);
  ASSERT_TRUE(range);
  responder.start();
  auto outcomes =
    Prober::run(test_token(), {target(Protocol::tcp, "127.0.0.1", range->min, range->max)}, options(1000ms, 256));
  for (const auto& port : outcomes.at(0).ports) {
    EXPECT_EQ(port.state, ProbeState::open) << port.port;
    EXPECT_TRUE(port.responder && port.responder->authentic) << port.port;
  }
  auto open = responder.open_at_accept();
  ASSERT_EQ(open.size(), 768u);
  EXPECT_GE(*std::max_element(open.begin(), open.begin() + 256), 200u) << "the whole window at first";
  auto later = *std::max_element(open.begin() + 512, open.end());
  EXPECT_LT(later, 160u) << "still the whole window in flight while answers queued for ~0.5 s";
}

TEST(Prober, IdentityLinesThatWaitBehindABusyTurnAreReadNotTakenForSilence)
{
  // A loop that falls behind takes one batch of readiness events per turn
  // (256) and runs the due deadlines after it. Here every identity line
  // arrives while the loop is held up past every identity deadline: the
  // lines whose events did not fit in the next batch are in their sockets
  // all the same, and must be read, not taken for a responder that never
  // said who it is. No retries, so a wrong first verdict would stay.
  constexpr std::uint32_t k_ports = 600;
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::tcp, "127.0.0.1", k_ports, Reply::held);
  ASSERT_TRUE(range);
  responder.start();
  auto probe_options = options(2000ms, 1024);
  probe_options.identity_timeout = 300ms;
  probe_options.retries = 0;
  EventLoop loop;
  Prober prober(loop, test_token(), probe_options);
  std::optional<std::vector<TargetOutcome>> outcomes;
  prober.start({target(Protocol::tcp, "127.0.0.1", range->min, range->max)},
               [&](std::vector<TargetOutcome> result) { outcomes = std::move(result); });
  std::function<void()> hold_up = [&] {
    if (responder.held() < k_ports) {
      loop.after(5ms, hold_up);
      return;
    }
    responder.release();
    for (auto until = Clock::now() + 5s; responder.answered_at().size() < k_ports && Clock::now() < until;) {
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(probe_options.identity_timeout + 100ms); // every identity deadline passes
  };
  loop.after(5ms, hold_up);
  for (auto until = Clock::now() + 10s; !outcomes && Clock::now() < until;) loop.run_once(100ms);
  ASSERT_TRUE(outcomes);
  ASSERT_EQ(responder.answered_at().size(), k_ports);
  std::size_t proven = 0;
  for (const auto& port : outcomes->at(0).ports) proven += port.responder && port.responder->authentic;
  EXPECT_EQ(proven, k_ports) << "identity lines already in their sockets were not read";
}

TEST(Prober, FinishNowKeepsWhatIsKnownAndLeavesTheRestUnprobed)
{
  // Half a range answers at once, half is dropped, with a timeout far past
  // the finish: the answers are kept, the silent ports are unprobed (not
  // filtered: they never had their timeout), and the run ends at once.
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::tcp, "127.0.0.1", 64,
                                     [](std::uint32_t i) { return i % 2 ? Reply::deaf : Reply::identity; });
  ASSERT_TRUE(range);
  responder.start();
  EventLoop loop;
  Prober prober(loop, test_token(), options(5000ms, 256));
  std::optional<std::vector<TargetOutcome>> outcomes;
  auto started = Clock::now();
  prober.start({target(Protocol::tcp, "127.0.0.1", range->min, range->max)},
               [&](std::vector<TargetOutcome> result) { outcomes = std::move(result); });
  loop.after(300ms, [&] { prober.finish_now(); });
  for (auto until = started + 10s; !outcomes && Clock::now() < until;) loop.run_once(100ms);
  // Ended before its silent ports' 5 s timeout: they are unprobed, not filtered.
  ASSERT_TRUE(outcomes) << "the run went on after finish_now";
  for (const auto& port : outcomes->at(0).ports) {
    if ((port.port - range->min) % 2) {
      EXPECT_EQ(port.state, ProbeState::unprobed) << port.port;
    } else {
      EXPECT_EQ(port.state, ProbeState::open) << port.port;
      EXPECT_TRUE(port.responder && port.responder->authentic) << port.port;
    }
  }
  prober.finish_now(); // no run in progress: nothing happens
  loop.run_once(10ms);
}

// A conntrack table that reads as full (its count at the ceiling, 75% of its
// maximum) holds back every probe until it has room again; the run then
// proves every port, and says how long it held them back and how full the
// table was. A table below the ceiling, or none, holds nothing back.
TEST(Prober, NoProbeStartsWhileTheConntrackTableIsFull)
{
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::tcp, "127.0.0.1", 32, [](std::uint32_t) { return Reply::identity; });
  ASSERT_TRUE(range);
  responder.start();
  auto started = Clock::now();
  int readings = 0;
  auto probe_options = options(2000ms);
  probe_options.conntrack = [&]() -> std::optional<TableFill> {
    ++readings;
    if (Clock::now() - started < 400ms) return TableFill{750, 1000};
    return TableFill{749, 1000};
  };
  EventLoop loop;
  Prober prober(loop, test_token(), probe_options);
  std::optional<std::vector<TargetOutcome>> outcomes;
  prober.start({target(Protocol::tcp, "127.0.0.1", range->min, range->max)},
               [&](std::vector<TargetOutcome> result) { outcomes = std::move(result); });
  for (auto until = started + 10s; !outcomes && Clock::now() < until;) loop.run_once(20ms);
  ASSERT_TRUE(outcomes);
  auto answered = responder.answered_at();
  ASSERT_FALSE(answered.empty());
  auto first_answer = *std::min_element(answered.begin(), answered.end()) - started;
  EXPECT_GE(first_answer, 400ms) << "a probe started while the table was full";
  // (Resumed once it had room: every port below is proven, within the run.)
  for (const auto& port : outcomes->at(0).ports) {
    EXPECT_EQ(port.state, ProbeState::open) << port.port;
    EXPECT_TRUE(port.responder && port.responder->authentic) << port.port;
  }
  auto held = prober.held_for_conntrack();
  EXPECT_GE(held.time, 350ms);
  EXPECT_LE(held.time, first_answer) << "held for longer than probes waited";
  EXPECT_EQ(held.fullest.count, 750u);
  EXPECT_EQ(held.fullest.max, 1000u);
  EXPECT_LT(readings, 40) << "read at most every k_table_recheck while full, and rarely once there is room";

  // No table (nullopt), or one with room: nothing held back.
  for (auto reading : {std::optional<TableFill>{}, std::optional<TableFill>{TableFill{10, 1000}}}) {
    auto quick = options(2000ms);
    quick.conntrack = [reading] { return reading; };
    EventLoop other;
    Prober unheld(other, test_token(), quick);
    std::optional<std::vector<TargetOutcome>> result;
    unheld.start({target(Protocol::tcp, "127.0.0.1", range->min, range->max)},
                 [&](std::vector<TargetOutcome> r) { result = std::move(r); });
    for (auto until = Clock::now() + 10s; !result && Clock::now() < until;) other.run_once(20ms);
    ASSERT_TRUE(result);
    EXPECT_EQ(unheld.held_for_conntrack().time, 0ms);
    EXPECT_EQ(result->at(0).ports.front().state, ProbeState::open);
  }
}

// A table that stays full until the end: finish_now ends the run with every
// port unprobed, and the hold lasted until then.
TEST(Prober, ATableThatStaysFullLeavesThePortsUnprobedAtTheFinish)
{
  TestResponder responder(test_token());
  auto port = responder.serve(Protocol::tcp, "127.0.0.1", Reply::identity);
  ASSERT_NE(port, 0);
  responder.start();
  auto probe_options = options(2000ms);
  probe_options.conntrack = [] { return std::optional<TableFill>{TableFill{900, 1000}}; };
  EventLoop loop;
  Prober prober(loop, test_token(), probe_options);
  std::optional<std::vector<TargetOutcome>> outcomes;
  prober.start({target(Protocol::tcp, "127.0.0.1", port)},
               [&](std::vector<TargetOutcome> result) { outcomes = std::move(result); });
  loop.after(300ms, [&] { prober.finish_now(); });
  for (auto until = Clock::now() + 5s; !outcomes && Clock::now() < until;) loop.run_once(20ms);
  ASSERT_TRUE(outcomes);
  EXPECT_EQ(outcomes->at(0).ports.front().state, ProbeState::unprobed);
  EXPECT_TRUE(responder.answered_at().empty());
  EXPECT_GE(prober.held_for_conntrack().time, 250ms);
  EXPECT_EQ(prober.held_for_conntrack().fullest.count, 900u);
}

TEST(Prober, AWindowNarrowedByQueuedAnswersOpensAgainWhenOnlySilenceIsLeft)
{
  // First a range whose answers queue up (the window narrows), then a longer
  // one that is silent (a dead agent's ports): with no answers left to
  // judge the load by, the whole window is in flight again, or the silent
  // range would go through a few dozen probes a timeout.
  TestResponder responder(test_token());
  auto busy = responder.serve_range(Protocol::tcp, "127.0.0.1", 300, Reply::busy);
  auto silent = responder.serve_range(Protocol::udp, "127.0.0.1", 1000, Reply::nothing);
  ASSERT_TRUE(busy && silent);
  responder.start();
  auto probe_options = options(500ms, 256);
  probe_options.retries = 0;
  auto busy_range = target(Protocol::tcp, "127.0.0.1", busy->min, busy->max);
  auto silent_range = target(Protocol::udp, "127.0.0.1", silent->min, silent->max);
  // The comparison, on this machine as it is now: each range alone, with the whole window.
  auto time_of = [&](std::vector<ProbeTarget> targets) {
    auto started = Clock::now();
    auto outcomes = Prober::run(test_token(), std::move(targets), probe_options);
    return std::pair{Clock::now() - started, std::move(outcomes)};
  };
  auto [busy_alone, busy_outcomes] = time_of({busy_range});
  auto [silent_alone, silent_outcomes] = time_of({silent_range});
  auto [elapsed, outcomes] = time_of({busy_range, silent_range});
  for (const auto& port : outcomes.at(0).ports) EXPECT_EQ(port.state, ProbeState::open) << port.port;
  for (const auto& port : outcomes.at(1).ports) EXPECT_EQ(port.state, ProbeState::filtered) << port.port;
  // The busy range takes ~0.6 s (2 ms an answer), the silent one a few
  // timeouts with the whole window; at the narrowest window (32, an eighth)
  // it would take eight times as long.
  EXPECT_LT(elapsed, 2 * (busy_alone + silent_alone)) << "the silent range crawled through a narrow window";
}

TEST(Prober, ARangeWhoseFirstPortStaysSilentLeavesTheWindowAfterHedgeAfter)
{
  // A dropped range, four windows long, with the window's own release
  // (quiet_after) switched off: its first port (the scout) is silent at
  // hedge_after, so the range is presumed dropped and each of its probes
  // leaves the window hedge_after after it started. Without that, each
  // window of silent probes would wait out the timeout: four timeouts.
  TestResponder responder(test_token());
  auto silent = responder.serve_range(Protocol::udp, "127.0.0.1", 1000, Reply::nothing);
  ASSERT_TRUE(silent);
  responder.start();
  auto probe_options = options(1000ms, 256);
  probe_options.quiet_after = probe_options.timeout; // no release but the scout's
  probe_options.hedge_after = 100ms;
  auto started = Clock::now();
  auto outcomes = Prober::run(test_token(), {target(Protocol::udp, "127.0.0.1", silent->min, silent->max)}, probe_options);
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  std::cout << "[ timing ] 1000 dropped ports, window 256, timeout 1000 ms, hedge_after 100 ms: " << elapsed.count()
            << " ms\n";
  for (const auto& port : outcomes.at(0).ports) EXPECT_EQ(port.state, ProbeState::filtered) << port.port;
  EXPECT_GE(elapsed, 1000ms);
  // ~1.4 s: four windows 100 ms apart, then one timeout.
  EXPECT_LT(elapsed, 2000ms) << "a window at a time, each waiting out the timeout";
}

TEST(Prober, SilenceInARangeThatAnsweredDoesNotShrinkTheWindow)
{
  // Half a range dropped (every other port deaf), the rest answering at
  // once: silence is not load, so the window stays whole and the dropped
  // half waits out its timeout all at once (then once more: the retry).
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::tcp, "127.0.0.1", 600,
                                     [](std::uint32_t i) { return i % 2 ? Reply::deaf : Reply::identity; });
  auto deaf = responder.serve_range(Protocol::tcp, "127.0.0.1", 300, Reply::deaf);
  ASSERT_TRUE(range && deaf);
  responder.start();
  auto probe_options = options(500ms, 320);
  probe_options.hedge_after = 500ms;
  // The comparison, on this machine as it is now: as many dropped ports
  // alone, in the same window (all at once: two timeouts with the retry).
  auto started = Clock::now();
  auto alone = Prober::run(test_token(), {target(Protocol::tcp, "127.0.0.1", deaf->min, deaf->max)}, probe_options);
  auto dropped_alone = Clock::now() - started;
  for (const auto& port : alone.at(0).ports) EXPECT_EQ(port.state, ProbeState::filtered) << port.port;
  started = Clock::now();
  auto outcomes = Prober::run(test_token(), {target(Protocol::tcp, "127.0.0.1", range->min, range->max)}, probe_options);
  auto elapsed = Clock::now() - started;
  for (const auto& port : outcomes.at(0).ports) {
    auto expected = (port.port - range->min) % 2 ? ProbeState::filtered : ProbeState::open;
    EXPECT_EQ(port.state, expected) << port.port;
  }
  // The dropped range alone settles in one timeout (a range of which nothing
  // opened is not retried); the dropped half here in two (first try and
  // retry). A narrowed window (32) would take it ten windows' timeouts, twice.
  EXPECT_LT(elapsed, 4 * dropped_alone) << "the window shrank: dropped probes went a few at a time";
}


// Connections that a listener's backlog completed and nobody accepted,
// taken off its queue now.
std::size_t
drain_backlog(int listener)
{
  std::size_t count = 0;
  while (Fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC))) ++count;
  return count;
}

// A frozen agent's node (the coordinator's hello got nothing back): its
// kernel answers SYNs for the agent's listeners and nothing accepts. Marked
// `identity = false`, the SYN-ACK is the port's answer: the probe resets at
// once (its handshake ACK, held back to ride on the payload, never goes,
// so the listener's queue never gets the connection), waits for no line,
// and no port is asked again. Marked as an agent's, the same ports wait out
// identity_timeout and are retried.
TEST(Prober, APortOfANodeWhoseAgentDidNotAnswerIsAskedOnceAndItsConnectionIsTheAnswer)
{
  auto listener = bind_socket(Protocol::tcp, "127.0.0.1", 0);
  ASSERT_TRUE(listener);
  ASSERT_EQ(::listen(listener.get(), 16), 0);
  auto tcp_port = local_port(listener.get());
  TestResponder responder(test_token());
  auto udp_port = responder.serve(Protocol::udp, "127.0.0.1", Reply::nothing);
  responder.start();
  auto probe_options = options(300ms);
  probe_options.identity_timeout = 1500ms;
  probe_options.udp_resend = 60s; // one datagram a try, counted where it lands
  ASSERT_EQ(probe_options.retries, 1);

  for (bool identity : {false, true}) {
    SCOPED_TRACE(identity ? "an agent's node" : "a node whose agent did not answer");
    auto tcp = target(Protocol::tcp, "127.0.0.1", tcp_port);
    auto udp = target(Protocol::udp, "127.0.0.1", udp_port);
    tcp.identity = udp.identity = identity;
    auto started = Clock::now();
    auto outcomes = Prober::run(test_token(), {tcp, udp}, probe_options);
    auto took = Clock::now() - started;
    ASSERT_EQ(outcomes.size(), 2u);
    EXPECT_EQ(outcomes[0].ports.at(0).state, ProbeState::open);
    EXPECT_FALSE(outcomes[0].ports.at(0).responder);
    EXPECT_EQ(outcomes[1].ports.at(0).state, ProbeState::filtered);
    auto completed = drain_backlog(listener.get());
    auto datagrams = responder.silent_datagrams();
    if (!identity) {
      EXPECT_EQ(completed, 0u) << "reset at the SYN-ACK, before its handshake ACK";
      EXPECT_EQ(datagrams, 1u) << "sent once: silence is final";
      EXPECT_LT(took, 1200ms) << "the UDP port's one timeout (300 ms); no identity wait (1,500 ms)";
    } else {
      EXPECT_EQ(completed, 2u) << "the payload completed the handshake; no line came, so it was asked again";
      EXPECT_EQ(datagrams, 2u);
      EXPECT_GE(took, 3000ms) << "two identity waits";
    }
  }
}

// Probes to a node without an agent load no agent: they are not in the
// window, so a silent range of them is in flight at once and over in one
// timeout, even when the window holds one probe. The same range marked as an
// agent's goes through the window: each silent probe holds it for
// hedge_after.
TEST(Prober, PortsOfANodeWithoutAnAgentAreAllInFlightAtOnceOutsideTheWindow)
{
  PortRange range{};
  auto silent = bind_free_range(Protocol::udp, "127.0.0.1", 32, range); // bound, never read: no answer, no ICMP
  ASSERT_EQ(silent.size(), 32u);
  auto probe_options = options(300ms, 1);
  probe_options.hedge_after = 50ms;
  probe_options.udp_resend = 60s;
  probe_options.retries = 0;
  for (bool identity : {false, true}) {
    SCOPED_TRACE(identity ? "an agent's node" : "a node whose agent did not answer");
    auto udp = target(Protocol::udp, "127.0.0.1", range.min, range.max);
    udp.identity = identity;
    auto started = Clock::now();
    auto outcomes = Prober::run(test_token(), {udp}, probe_options);
    auto took = Clock::now() - started;
    ASSERT_EQ(outcomes.size(), 1u);
    for (const auto& port : outcomes[0].ports) EXPECT_EQ(port.state, ProbeState::filtered) << port.port;
    if (!identity) {
      EXPECT_LT(took, 600ms) << "all 32 in flight at once: one 300 ms timeout";
    } else {
      EXPECT_GE(took, 1500ms) << "one at a time, each holding the window for hedge_after (31 x 50 ms), then a timeout";
    }
  }
}

} // namespace portmatrix
