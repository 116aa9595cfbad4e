// A TCP probe's socket reused for the next probe (tcp_probe.cpp), against a
// stand-in agent on loopback (prober_fixture.hpp).
#include <sys/stat.h>

#include "prober_fixture.hpp"

namespace portmatrix {

using namespace test;

// The inode of this process's TCP socket connected to a port of `range`
// from a port outside it (the prober's end, not the responder's), or 0.
ino_t
prober_socket_to(const PortRange& range)
{
  auto in_range = [&](std::uint16_t port) { return port >= range.min && port <= range.max; };
  for (int fd = 0; fd < 4096; ++fd) {
    struct stat status{};
    if (::fstat(fd, &status) != 0 || !S_ISSOCK(status.st_mode)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t local_length = sizeof local, peer_length = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) != 0) continue;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0) continue;
    auto local_port = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&local), local_length).port();
    auto peer_port = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&peer), peer_length).port();
    if (in_range(peer_port) && !in_range(local_port)) return status.st_ino;
  }
  return 0;
}

TEST(Prober, ASocketWhoseConnectionWasEstablishedServesTheNextProbe)
{
  // One probe at a time (a window of one), each held by its agent until the
  // test has seen which socket carries it: the same socket, disconnected
  // and connected again, carries all three.
  constexpr std::uint32_t k_ports = 3;
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::tcp, "127.0.0.1", k_ports, Reply::held);
  ASSERT_TRUE(range);
  responder.start();
  auto probe_options = options(2000ms, 1);
  probe_options.retries = 0;
  EventLoop loop;
  Prober prober(loop, test_token(), probe_options);
  std::optional<std::vector<TargetOutcome>> outcomes;
  std::size_t watched_at_done = SIZE_MAX;
  prober.start({target(Protocol::tcp, "127.0.0.1", range->min, range->max)}, [&](std::vector<TargetOutcome> result) {
    outcomes = std::move(result);
    watched_at_done = loop.watched();
  });
  std::vector<ino_t> sockets;
  std::function<void()> look = [&] {
    // The next probe's line is held, and every earlier one was answered.
    if (responder.held() == 1 && responder.answered_at().size() == sockets.size()) {
      sockets.push_back(prober_socket_to(*range));
      responder.release();
    }
    if (sockets.size() < k_ports) loop.after(2ms, look);
  };
  loop.after(2ms, look);
  for (auto until = Clock::now() + 10s; !outcomes && Clock::now() < until;) loop.run_once(100ms);
  ASSERT_TRUE(outcomes);
  for (const auto& port : outcomes->at(0).ports) expect_authentic_n1(port, port.port);
  ASSERT_EQ(sockets.size(), k_ports);
  EXPECT_NE(sockets[0], ino_t(0));
  EXPECT_EQ(sockets, std::vector<ino_t>(k_ports, sockets[0])) << "a new socket for a probe after an open port";
  EXPECT_EQ(watched_at_done, 0u) << "a kept socket outlived its round";
}

TEST(Prober, AReusedSocketTellsEachPortsOwnAnswer)
{
  // Through one socket at a time: after an agent's port, a service's, a
  // listener that closes, a silent port and a closed port, each answers as
  // its own, never as the connection the socket carried before.
  enum Kind : std::uint32_t { agent, service, closes, silent, agent_again, k_kinds };
  TestResponder responder(test_token());
  auto range = responder.serve_range(Protocol::tcp, "127.0.0.1", k_kinds, [](std::uint32_t i) {
    switch (i) {
    case service: return Reply::garbage;
    case closes: return Reply::close_silently;
    case silent: return Reply::deaf;
    default: return Reply::identity;
    }
  });
  ASSERT_TRUE(range);
  auto closed = closed_port(Protocol::tcp, "127.0.0.1");
  responder.start();
  auto probe_options = options(300ms, 1);
  probe_options.retries = 0;
  // Single ports start first, in their order: the agent's port leaves a
  // socket that the closed port's probe gets; then the range, in port order.
  auto outcomes = Prober::run(test_token(),
                              {target(Protocol::tcp, "127.0.0.1", range->min, range->max),
                               target(Protocol::tcp, "127.0.0.1", range->min + agent),
                               target(Protocol::tcp, "127.0.0.1", closed)},
                              probe_options);
  ASSERT_EQ(outcomes.size(), 3u);
  const auto& ports = outcomes[0].ports;
  ASSERT_EQ(ports.size(), std::size_t(k_kinds));
  expect_authentic_n1(ports[agent], ports[agent].port);
  EXPECT_EQ(ports[service].state, ProbeState::open);
  EXPECT_FALSE(ports[service].responder);
  EXPECT_EQ(ports[closes].state, ProbeState::open);
  EXPECT_FALSE(ports[closes].responder);
  EXPECT_EQ(ports[silent].state, ProbeState::filtered);
  expect_authentic_n1(ports[agent_again], ports[agent_again].port);
  expect_authentic_n1(outcomes[1].ports.at(0), std::uint16_t(range->min + agent));
  EXPECT_EQ(outcomes[2].ports.at(0).state, ProbeState::refused);
  EXPECT_EQ(outcomes[2].ports.at(0).error, ECONNREFUSED);
}

} // namespace portmatrix
