// The prober's outcomes against a stand-in agent on loopback
// (prober_fixture.hpp): what each answer reads as, in what order, behind a
// VIP (repeat), on the loop, and when file descriptors run out.
#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>

#include "../skip.hpp"
#include "prober_fixture.hpp"

namespace portmatrix {

using namespace test;

namespace {

// Lowers the soft RLIMIT_NOFILE for one test; restores it on every exit.
class SoftFdLimit
{
public:
  explicit SoftFdLimit(rlim_t soft)
  {
    ::getrlimit(RLIMIT_NOFILE, &m_saved);
    rlimit lowered{soft, m_saved.rlim_max};
    ::setrlimit(RLIMIT_NOFILE, &lowered);
  }
  ~SoftFdLimit() { ::setrlimit(RLIMIT_NOFILE, &m_saved); }
  SoftFdLimit(const SoftFdLimit&) = delete;
  SoftFdLimit& operator=(const SoftFdLimit&) = delete;

private:
  rlimit m_saved{};
};

int
lowest_free_fd()
{
  Fd probe(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return probe.get();
}

} // namespace

TEST(ProbeState, HasNames)
{
  EXPECT_EQ(to_string(ProbeState::open), "open");
  EXPECT_EQ(to_string(ProbeState::admin_prohibited), "admin-prohibited");
  EXPECT_EQ(to_string(ProbeState::blocked_locally), "blocked-locally");
}

TEST(Prober, OpenTcpPortAnswersWithAnAuthenticIdentity)
{
  TestResponder responder(test_token());
  auto port = responder.serve(Protocol::tcp, "127.0.0.1", Reply::identity);
  ASSERT_NE(port, 0);
  responder.start();
  expect_authentic_n1(probe_one(target(Protocol::tcp, "127.0.0.1", port)), port);
}

TEST(Prober, OpenUdpPortAnswersWithAnAuthenticIdentity)
{
  TestResponder responder(test_token());
  auto port = responder.serve(Protocol::udp, "127.0.0.1", Reply::identity);
  ASSERT_NE(port, 0);
  responder.start();
  expect_authentic_n1(probe_one(target(Protocol::udp, "127.0.0.1", port)), port);
}

TEST(Prober, ProbesIpv6LikeIpv4)
{
  if (!has_ipv6_loopback()) PORTMATRIX_SKIP() << "no ::1 on this machine";
  TestResponder responder(test_token());
  auto tcp = responder.serve(Protocol::tcp, "::1", Reply::identity);
  auto udp = responder.serve(Protocol::udp, "::1", Reply::identity);
  auto closed_tcp = closed_port(Protocol::tcp, "::1");
  auto closed_udp = closed_port(Protocol::udp, "::1");
  responder.start();
  expect_authentic_n1(probe_one(target(Protocol::tcp, "::1", tcp)), tcp);
  expect_authentic_n1(probe_one(target(Protocol::udp, "::1", udp)), udp);
  EXPECT_EQ(probe_one(target(Protocol::tcp, "::1", closed_tcp)).state, ProbeState::refused);
  auto refused = probe_one(target(Protocol::udp, "::1", closed_udp)); // ICMPv6 port unreachable
  EXPECT_EQ(refused.state, ProbeState::refused);
  EXPECT_EQ(refused.error, ECONNREFUSED);
}

TEST(Prober, ClosedTcpPortIsRefused)
{
  auto outcome = probe_one(target(Protocol::tcp, "127.0.0.1", closed_port(Protocol::tcp, "127.0.0.1")));
  EXPECT_EQ(outcome.state, ProbeState::refused);
  EXPECT_EQ(outcome.error, ECONNREFUSED);
  EXPECT_FALSE(outcome.responder);
}

TEST(Prober, UdpPortWithNothingBoundIsRefused)
{
  auto outcome = probe_one(target(Protocol::udp, "127.0.0.1", closed_port(Protocol::udp, "127.0.0.1")));
  EXPECT_EQ(outcome.state, ProbeState::refused); // ICMP port unreachable, read from the error queue
  EXPECT_EQ(outcome.error, ECONNREFUSED);
}

TEST(Prober, WrongTokenGivesAnIdentityThatIsNotAuthentic)
{
  TestResponder responder(other_token());
  auto tcp = responder.serve(Protocol::tcp, "127.0.0.1", Reply::identity);
  auto udp = responder.serve(Protocol::udp, "127.0.0.1", Reply::identity);
  responder.start();
  for (auto [protocol, port] : {std::pair{Protocol::tcp, tcp}, std::pair{Protocol::udp, udp}}) {
    auto outcome = probe_one(target(protocol, "127.0.0.1", port));
    EXPECT_EQ(outcome.state, ProbeState::open) << to_string(protocol);
    ASSERT_TRUE(outcome.responder) << to_string(protocol);
    EXPECT_EQ(outcome.responder->node, "n1");
    EXPECT_FALSE(outcome.responder->authentic) << to_string(protocol);
    EXPECT_TRUE(outcome.responders.empty()) << to_string(protocol);
  }
}

TEST(Prober, ListenerThatClosesWithoutAWordIsOpenWithoutResponder)
{
  TestResponder responder(test_token());
  auto port = responder.serve(Protocol::tcp, "127.0.0.1", Reply::close_silently);
  responder.start();
  auto started = Clock::now();
  auto outcome = probe_one(target(Protocol::tcp, "127.0.0.1", port));
  EXPECT_EQ(outcome.state, ProbeState::open);
  EXPECT_FALSE(outcome.responder);
  EXPECT_LT(Clock::now() - started, 1s); // settled by the close, not the timeout
}

TEST(Prober, ServiceThatSaysSomethingElseIsOpenWithoutResponder)
{
  TestResponder responder(test_token());
  auto tcp = responder.serve(Protocol::tcp, "127.0.0.1", Reply::garbage);
  auto udp = responder.serve(Protocol::udp, "127.0.0.1", Reply::garbage);
  responder.start();
  for (auto [protocol, port] : {std::pair{Protocol::tcp, tcp}, std::pair{Protocol::udp, udp}}) {
    auto outcome = probe_one(target(protocol, "127.0.0.1", port));
    EXPECT_EQ(outcome.state, ProbeState::open) << to_string(protocol);
    EXPECT_FALSE(outcome.responder) << to_string(protocol);
  }
}


TEST(Prober, AnIcmpErrorAboutOneUdpProbeIsNeverBlamedOnAnother)
{
  // The shared UDP socket reports each ICMP error once more, through the
  // next call on it: a send for an open port right after a closed port's
  // error must not settle the open port as refused.
  PortRange range;
  auto reserved = bind_free_range(Protocol::udp, "127.0.0.1", 200, range);
  ASSERT_EQ(reserved.size(), 200u);
  reserved.clear(); // released: nothing bound, every datagram gets ICMP port unreachable
  TestResponder responder(test_token());
  auto open_port = responder.serve(Protocol::udp, "127.0.0.1", Reply::identity);
  responder.start();
  std::vector<ProbeTarget> targets;
  for (std::uint16_t port = range.min; port <= range.max; ++port) {
    targets.push_back(target(Protocol::udp, "127.0.0.1", port));
    targets.push_back(target(Protocol::udp, "127.0.0.1", open_port)); // each in its turn, between closed ones
  }
  auto outcomes = Prober::run(test_token(), targets, options(2000ms, 8));
  ASSERT_EQ(outcomes.size(), targets.size());
  for (std::size_t i = 0; i < outcomes.size(); i += 2) {
    EXPECT_EQ(outcomes[i].ports.at(0).state, ProbeState::refused) << outcomes[i].ports[0].port;
    EXPECT_EQ(outcomes[i + 1].ports.at(0).state, ProbeState::open) << "open port, probe " << i / 2;
  }
}

TEST(Prober, RangeOfClosedPortsIsAllRefusedInPortOrder)
{
  PortRange range;
  auto reserved = bind_free_range(Protocol::tcp, "127.0.0.1", 200, range);
  ASSERT_EQ(reserved.size(), 200u);
  reserved.clear(); // bound, never listening, now released: closed
  // Fewer probes in flight than ports: finished probes start the next ones.
  auto closed_range = target(Protocol::tcp, "127.0.0.1", range.min, range.max);
  auto outcomes = Prober::run(test_token(), {closed_range}, options(2000ms, 16));
  ASSERT_EQ(outcomes.size(), 1u);
  ASSERT_EQ(outcomes[0].ports.size(), 200u);
  for (std::uint32_t i = 0; i < 200; ++i) {
    EXPECT_EQ(outcomes[0].ports[i].port, range.min + i);
    EXPECT_EQ(outcomes[0].ports[i].state, ProbeState::refused) << outcomes[0].ports[i].port;
  }
}

TEST(Prober, OutcomesFollowTargetOrderAndPortOrder)
{
  TestResponder responder(test_token());
  auto open_range = responder.serve_range(Protocol::tcp, "127.0.0.1", 3, Reply::identity);
  ASSERT_TRUE(open_range);
  auto udp = responder.serve(Protocol::udp, "127.0.0.1", Reply::identity);
  responder.start();
  auto closed = closed_port(Protocol::tcp, "127.0.0.1");
  std::vector<ProbeTarget> targets{
    target(Protocol::udp, "127.0.0.1", udp),
    target(Protocol::tcp, "not-an-address", 80, 81),
    target(Protocol::tcp, "127.0.0.1", open_range->min, open_range->max),
    target(Protocol::tcp, "127.0.0.1", closed),
  };
  auto outcomes = Prober::run(test_token(), targets, options());
  ASSERT_EQ(outcomes.size(), 4u);
  for (std::size_t i = 0; i < targets.size(); ++i) EXPECT_EQ(outcomes[i].target.range, targets[i].range);

  expect_authentic_n1(outcomes[0].ports.at(0), udp);
  ASSERT_EQ(outcomes[1].ports.size(), 2u);
  for (const auto& port : outcomes[1].ports) {
    EXPECT_EQ(port.state, ProbeState::error);
    EXPECT_EQ(port.error, EINVAL);
  }
  EXPECT_EQ(outcomes[1].ports[0].port, 80);
  EXPECT_EQ(outcomes[1].ports[1].port, 81);
  ASSERT_EQ(outcomes[2].ports.size(), 3u);
  for (std::uint16_t i = 0; i < 3; ++i) expect_authentic_n1(outcomes[2].ports[i], std::uint16_t(open_range->min + i));
  EXPECT_EQ(outcomes[3].ports.at(0).state, ProbeState::refused);
}

TEST(Prober, RepeatCollectsEveryResponderBehindOnePort)
{
  TestResponder vip(test_token(), {"n1", "n2", "n3"}); // answers as each backend in turn
  auto port = vip.serve(Protocol::tcp, "127.0.0.1", Reply::identity);
  vip.start();
  auto outcome = probe_one(target(Protocol::tcp, "127.0.0.1", port, port, 6));
  EXPECT_EQ(outcome.state, ProbeState::open);
  ASSERT_TRUE(outcome.responder);
  EXPECT_TRUE(outcome.responder->authentic);
  auto responders = outcome.responders;
  std::sort(responders.begin(), responders.end());
  EXPECT_EQ(responders, (std::vector<std::string>{"n1", "n2", "n3"}));
}

TEST(Prober, AVipBackendThatNeverAnswersIsKnownAfterOneTimeout)
{
  TestResponder vip(test_token(), {"n1", "n2", ""}); // every third connection: accepted, never answered
  auto port = vip.serve(Protocol::tcp, "127.0.0.1", Reply::identity);
  vip.start();
  auto probe_options = options(300ms);
  probe_options.identity_timeout = 5000ms;
  auto start = Clock::now();
  auto outcome = probe_one(target(Protocol::tcp, "127.0.0.1", port, port, 6), probe_options);
  auto took = Clock::now() - start;
  EXPECT_EQ(outcome.state, ProbeState::open);
  auto responders = outcome.responders;
  std::sort(responders.begin(), responders.end());
  EXPECT_EQ(responders, (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(outcome.silent, 2u);
  // One timeout, not the identity line's wait, and no retry: the port is proven.
  EXPECT_LT(took, 2500ms);
}

TEST(Prober, RepeatWithoutAnyAnswerWaitsForTheIdentityLineAndIsNotSilent)
{
  TestResponder vip(test_token(), {""}); // accepts, never answers: no backend to compare with
  auto port = vip.serve(Protocol::tcp, "127.0.0.1", Reply::identity);
  vip.start();
  auto probe_options = options(200ms);
  probe_options.identity_timeout = 400ms;
  probe_options.retries = 0;
  auto start = Clock::now();
  auto outcome = probe_one(target(Protocol::tcp, "127.0.0.1", port, port, 3), probe_options);
  EXPECT_GE(Clock::now() - start, 400ms);
  EXPECT_EQ(outcome.state, ProbeState::open);
  EXPECT_FALSE(outcome.responder);
  EXPECT_EQ(outcome.silent, 0u);
}

TEST(Prober, RepeatToAClosedPortIsRefused)
{
  auto outcome = probe_one(target(Protocol::tcp, "127.0.0.1", closed_port(Protocol::tcp, "127.0.0.1"), 0, 3));
  EXPECT_EQ(outcome.state, ProbeState::refused);
  EXPECT_TRUE(outcome.responders.empty());
}

TEST(Prober, UnparsableAddressesAreErrorsWithoutSockets)
{
  auto outcomes = Prober::run(
    test_token(), {target(Protocol::udp, "127.0.0.256", 53), target(Protocol::tcp, "[::1]", 22)}, options());
  ASSERT_EQ(outcomes.size(), 2u);
  for (const auto& outcome : outcomes) {
    ASSERT_EQ(outcome.ports.size(), 1u);
    EXPECT_EQ(outcome.ports[0].state, ProbeState::error);
    EXPECT_EQ(outcome.ports[0].error, EINVAL);
  }
}

TEST(Prober, CallsDoneOnceFromTheLoop)
{
  EventLoop loop;
  Prober prober(loop, test_token(), options());
  int calls = 0;
  std::vector<TargetOutcome> outcomes;
  prober.start({target(Protocol::tcp, "127.0.0.1", closed_port(Protocol::tcp, "127.0.0.1"))},
               [&](std::vector<TargetOutcome> result) {
                 ++calls;
                 outcomes = std::move(result);
               });
  EXPECT_EQ(calls, 0);
  loop.run_until(Clock::now() + 500ms); // keeps running after done: no second call
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].ports.at(0).state, ProbeState::refused);
  EXPECT_EQ(loop.watched(), 0u);
  EXPECT_EQ(loop.callback_errors(), 0u);
}

TEST(Prober, DestroyedInFlightLeavesNothingOnTheLoop)
{
  TestResponder responder(test_token());
  auto port = responder.serve(Protocol::udp, "127.0.0.1", Reply::nothing);
  responder.start();
  EventLoop loop;
  bool called = false;
  {
    Prober prober(loop, test_token(), options(200ms));
    prober.start({target(Protocol::udp, "127.0.0.1", port)}, [&](const std::vector<TargetOutcome>&) { called = true; });
    EXPECT_EQ(loop.watched(), 1u);
  }
  EXPECT_EQ(loop.watched(), 0u);
  loop.run_until(Clock::now() + 400ms); // past the timeout and the resends: nothing fires
  EXPECT_FALSE(called);
  EXPECT_EQ(loop.callback_errors(), 0u);
}

TEST(Prober, NoTargetsIsDoneAtOnce)
{
  EXPECT_TRUE(Prober::run(test_token(), {}, options()).empty());
}

TEST(Prober, WaitsForFreeFdsWhenTheLimitIsReached)
{
  PortRange range;
  auto reserved = bind_free_range(Protocol::tcp, "127.0.0.1", 40, range);
  ASSERT_EQ(reserved.size(), 40u);
  reserved.clear();
  random_hex(8); // OpenSSL's generator is set up before fds run short
  EventLoop loop;
  Prober prober(loop, test_token(), options(2000ms, 64));
  std::vector<TargetOutcome> outcomes;
  {
    SoftFdLimit limit{rlim_t(lowest_free_fd() + 3)}; // room for 3 sockets, not 40
    prober.start({target(Protocol::tcp, "127.0.0.1", range.min, range.max)},
                 [&](std::vector<TargetOutcome> result) {
                   outcomes = std::move(result);
                   loop.stop();
                 });
    loop.run();
  }
  ASSERT_EQ(outcomes.size(), 1u);
  for (const auto& port : outcomes[0].ports) EXPECT_EQ(port.state, ProbeState::refused) << port.port;
}

TEST(Prober, AnIdleSocketOfAnotherFamilyMakesRoomWhenFdsRunOut)
{
  // Room for one socket: the IPv4 probe's, kept idle once its connection
  // was established; the IPv6 probe after it gets its fd by closing that.
  if (!has_ipv6_loopback()) PORTMATRIX_SKIP() << "no ::1 on this machine";
  auto listener = bind_socket(Protocol::tcp, "127.0.0.1", 0); // never accepts: no line, no fd of its own
  ASSERT_TRUE(listener);
  ASSERT_EQ(::listen(listener.get(), 16), 0);
  auto open_port = local_port(listener.get());
  auto closed = closed_port(Protocol::tcp, "::1");
  random_hex(8); // OpenSSL's generator is set up before fds run short
  auto probe_options = options(2000ms);
  probe_options.identity_timeout = 100ms;
  probe_options.retries = 0;
  EventLoop loop;
  Prober prober(loop, test_token(), probe_options);
  auto run = [&](std::vector<ProbeTarget> targets) {
    std::optional<std::vector<TargetOutcome>> outcomes;
    prober.start(std::move(targets), [&](std::vector<TargetOutcome> result) { outcomes = std::move(result); });
    for (auto until = Clock::now() + 10s; !outcomes && Clock::now() < until;) loop.run_once(100ms);
    return outcomes.value_or(std::vector<TargetOutcome>{});
  };
  run({target(Protocol::tcp, "127.0.0.1", open_port)}); // the loop's epoll set for sockets is made
  std::vector<TargetOutcome> outcomes;
  {
    SoftFdLimit limit{rlim_t(lowest_free_fd() + 1)};
    outcomes = run({target(Protocol::tcp, "127.0.0.1", open_port), target(Protocol::tcp, "::1", closed)});
  }
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].ports.at(0).state, ProbeState::open);
  EXPECT_EQ(outcomes[1].ports.at(0).state, ProbeState::refused);
  EXPECT_EQ(outcomes[1].ports.at(0).error, ECONNREFUSED);
}

TEST(Prober, NoFdAtAllIsAnErrorForEveryPort)
{
  random_hex(8);
  EventLoop loop;
  Prober prober(loop, test_token(), options());
  std::vector<TargetOutcome> outcomes;
  {
    SoftFdLimit limit{rlim_t(lowest_free_fd())};
    prober.start({target(Protocol::udp, "127.0.0.1", 1000, 1004)}, [&](std::vector<TargetOutcome> result) {
      outcomes = std::move(result);
      loop.stop();
    });
    loop.run();
  }
  ASSERT_EQ(outcomes.size(), 1u);
  ASSERT_EQ(outcomes[0].ports.size(), 5u);
  for (const auto& port : outcomes[0].ports) {
    EXPECT_EQ(port.state, ProbeState::error);
    EXPECT_EQ(port.error, EMFILE);
  }
}

TEST(RaiseFdLimit, NeverLowersAndStaysWithinTheHardLimit)
{
  rlimit before{};
  ::getrlimit(RLIMIT_NOFILE, &before);
  auto raised = raise_fd_limit();
  EXPECT_GE(raised, std::size_t(before.rlim_cur));
  EXPECT_LE(raised, std::size_t(before.rlim_max));
  EXPECT_EQ(raise_fd_limit(16), raised); // asking for less does not lower it
}

// The sizes of the later benchmark: a range answered by agents settles in
// well under a second; a silent range settles in one timeout round.
TEST(ProberScale, ThousandsOfOpenTcpPortsSettleFast)
{
  raise_fd_limit();
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::tcp, "127.0.0.1", 2768, Reply::identity);
  ASSERT_TRUE(range);
  responder.start();
  auto started = Clock::now();
  auto outcomes = Prober::run(test_token(), {target(Protocol::tcp, "127.0.0.1", range->min, range->max)}, options());
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  std::cout << "[ timing ] 2768 open TCP ports with identity: " << elapsed.count() << " ms\n";
  ASSERT_EQ(outcomes.at(0).ports.size(), 2768u);
  std::size_t authentic = 0;
  for (const auto& port : outcomes[0].ports) authentic += port.responder && port.responder->authentic;
  EXPECT_EQ(authentic, 2768u); // (how fast: bench/, not a unit test's limit)
}

TEST(ProberScale, ThousandsOfSilentUdpPortsSettleInOneTimeoutRound)
{
  raise_fd_limit();
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::udp, "127.0.0.1", 2768, Reply::nothing);
  ASSERT_TRUE(range);
  responder.start();
  auto silent_range = target(Protocol::udp, "127.0.0.1", range->min, range->max);
  // A window of 512: silent probes leave it after quiet_after, so the whole
  // range is in flight within the timeout (else: six windows, six seconds).
  auto windowed = options(1000ms, 512);
  windowed.quiet_after = 50ms;
  // The comparison, on this machine as it is now: one window's worth alone (one timeout round).
  auto started = Clock::now();
  Prober::run(test_token(), {target(Protocol::udp, "127.0.0.1", range->min, std::uint16_t(range->min + 511))}, windowed);
  auto one_window = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  started = Clock::now();
  auto outcomes = Prober::run(test_token(), {silent_range}, windowed);
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  std::cout << "[ timing ] 2768 silent UDP ports, timeout 1000 ms, window 512: " << elapsed.count() << " ms (512 of them: "
            << one_window.count() << " ms)\n";
  ASSERT_EQ(outcomes.at(0).ports.size(), 2768u);
  for (const auto& port : outcomes[0].ports) EXPECT_EQ(port.state, ProbeState::filtered) << port.port;
  EXPECT_GE(elapsed, 1000ms);
  EXPECT_LT(elapsed, 3 * one_window) << "one window after another: six timeouts, not one";
}

} // namespace portmatrix
