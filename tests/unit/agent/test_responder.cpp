// The responder on 127.0.0.1 (and ::1) only: plain blocking client sockets talk to it
// while its EventLoop runs in a thread. Ports are picked by the kernel (bind
// to port 0) or at random above 10000, below the ephemeral range.
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <random>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "agent/identity.hpp"
#include "agent/responder.hpp"
#include "net/address.hpp"
#include "net/fd.hpp"
#include "probe/prober.hpp"
#include "../skip.hpp"

namespace portmatrix {
namespace {

using namespace std::chrono_literals;

constexpr const char* k_node = "node-a";
constexpr const char* k_loopback = "127.0.0.1";

Token
test_token()
{
  return *Token::from_text("unit-test-secret-0123456789");
}

// Runs the loop on its own thread until destroyed; the test reads the
// responder only after that, so nothing is shared while it runs.
class LoopThread
{
public:
  explicit LoopThread(EventLoop& loop)
    : m_thread([this, &loop] {
        while (!m_done) loop.run_once(10ms);
      })
  {
  }
  ~LoopThread() { join(); }
  void join()
  {
    m_done = true;
    if (m_thread.joinable()) m_thread.join();
  }

private:
  std::atomic<bool> m_done{false};
  std::thread m_thread;
};

void
set_receive_timeout(const Fd& socket, std::chrono::milliseconds timeout)
{
  timeval value{timeout.count() / 1000, (timeout.count() % 1000) * 1000};
  ::setsockopt(socket.get(), SOL_SOCKET, SO_RCVTIMEO, &value, sizeof(value));
}

// A socket of `type` bound to 127.0.0.1 on a port the kernel picked (and
// listening, for TCP); `port` receives it.
Fd
bound_socket(int type, std::uint16_t& port, const char* host = k_loopback)
{
  auto address = *SocketAddress::parse(host, 0);
  Fd socket(::socket(address.family(), type | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::bind(socket.get(), address.get(), address.length()), 0);
  if (type == SOCK_STREAM) {
    EXPECT_EQ(::listen(socket.get(), 16), 0);
  }
  socklen_t length = sizeof(sockaddr_storage);
  ::getsockname(socket.get(), address.get(), &length);
  port = SocketAddress::from_sockaddr(address.get(), length).port();
  return socket;
}

// A port that was free a moment ago.
std::uint16_t
free_port(int type, const char* host = k_loopback)
{
  std::uint16_t port = 0;
  bound_socket(type, port, host);
  return port;
}

Fd
connect_tcp(std::uint16_t port, const char* host = k_loopback)
{
  auto address = *SocketAddress::parse(host, port);
  Fd socket(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(socket.get(), address.get(), address.length()), 0) << std::strerror(errno);
  set_receive_timeout(socket, 5s);
  return socket;
}

void
send_text(const Fd& socket, std::string_view text)
{
  ASSERT_EQ(::send(socket.get(), text.data(), text.size(), MSG_NOSIGNAL), ssize_t(text.size()));
}

// Everything until the peer closes (or the receive timeout passes); `how`,
// if given, gets how it ended: 0 for a close, else the errno (ECONNRESET for
// a reset, EAGAIN for our receive timeout).
std::string
read_to_end(const Fd& socket, int* how = nullptr)
{
  std::string received;
  char buffer[512];
  ssize_t length;
  while ((length = ::recv(socket.get(), buffer, sizeof(buffer), 0)) > 0) received.append(buffer, std::size_t(length));
  if (how) *how = length == 0 ? 0 : errno;
  return received;
}

// True while the peer has neither closed nor reset the connection (nothing read).
bool
still_open(const Fd& socket)
{
  char byte;
  return ::recv(socket.get(), &byte, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
}

// Sends one datagram to `host`:`port` and returns the reply, or "" when
// none came within `timeout`.
std::string
udp_exchange(std::uint16_t port, std::string_view payload, std::chrono::milliseconds timeout = 3000ms,
             const char* host = k_loopback)
{
  auto address = *SocketAddress::parse(host, port);
  Fd socket(::socket(address.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  set_receive_timeout(socket, timeout);
  ::sendto(socket.get(), payload.data(), payload.size(), 0, address.get(), address.length());
  char buffer[512];
  auto length = ::recv(socket.get(), buffer, sizeof(buffer), 0);
  return length > 0 ? std::string(buffer, std::size_t(length)) : std::string();
}

std::optional<Identity>
tcp_probe(std::uint16_t port, const std::string& nonce, const char* host = k_loopback)
{
  Fd socket = connect_tcp(port, host);
  send_text(socket, make_probe_payload(nonce));
  return parse_identity_reply(test_token(), read_to_end(socket), nonce, Protocol::tcp);
}

std::string
own_comm()
{
  std::ifstream file("/proc/self/comm");
  std::string name;
  std::getline(file, name);
  return name;
}

long
rss_kib()
{
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return -1;
}

// Raises the soft fd limit to at least `needed`; false when the hard limit
// does not allow it.
bool
ensure_fd_limit(rlim_t needed)
{
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur >= needed) return true;
  if (limit.rlim_max < needed) return false;
  limit.rlim_cur = limit.rlim_max;
  return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

// Binds `responder` to one TCP and one UDP port that were free a moment ago;
// returns them (TCP, UDP).
std::pair<std::uint16_t, std::uint16_t>
bind_tcp_and_udp(Responder& responder)
{
  auto tcp_port = free_port(SOCK_STREAM);
  auto udp_port = free_port(SOCK_DGRAM);
  responder.bind({{Protocol::tcp, {tcp_port, tcp_port}}, {Protocol::udp, {udp_port, udp_port}}});
  return {tcp_port, udp_port};
}

TEST(Responder, AnswersTcpAndUdpProbesWithAnAuthenticIdentity)
{
  auto token = test_token();
  EventLoop loop;
  Responder responder(loop, token, k_node, k_loopback);
  auto [tcp_port, udp_port] = bind_tcp_and_udp(responder);
  ASSERT_TRUE(responder.owners().empty()) << responder.owners().front().error;
  EXPECT_EQ(responder.listener_count(), 2u);
  EXPECT_TRUE(responder.listening(Protocol::tcp, tcp_port));
  EXPECT_TRUE(responder.listening(Protocol::udp, udp_port));
  EXPECT_FALSE(responder.listening(Protocol::udp, tcp_port));

  std::string tcp_reply;
  std::string udp_reply;
  {
    LoopThread thread(loop);
    // The probe line arrives in pieces.
    Fd client = connect_tcp(tcp_port);
    auto line = make_probe_payload("0123456789abcdef");
    send_text(client, line.substr(0, 9));
    std::this_thread::sleep_for(50ms);
    send_text(client, line.substr(9));
    tcp_reply = read_to_end(client);
    udp_reply = udp_exchange(udp_port, make_probe_payload("fedcba9876543210"));
  }

  auto tcp_identity = parse_identity_reply(token, tcp_reply, "0123456789abcdef", Protocol::tcp);
  ASSERT_TRUE(tcp_identity) << tcp_reply;
  EXPECT_TRUE(tcp_identity->authentic);
  EXPECT_EQ(tcp_identity->node, k_node);
  EXPECT_EQ(tcp_identity->port, tcp_port);

  auto udp_identity = parse_identity_reply(token, udp_reply, "fedcba9876543210", Protocol::udp);
  ASSERT_TRUE(udp_identity) << udp_reply;
  EXPECT_TRUE(udp_identity->authentic);
  EXPECT_EQ(udp_identity->node, k_node);
  EXPECT_EQ(udp_identity->port, udp_port);
  // A UDP reply does not authenticate as TCP: the protocol is in the mac.
  EXPECT_FALSE(parse_identity_reply(token, udp_reply, "fedcba9876543210", Protocol::tcp)->authentic);

  EXPECT_EQ(responder.answered(), 2u);
}

// Every raw IP-in-IP socket on the host gets every protocol-4 packet on
// loopback, and ctest runs the unit tests two at a time, each in its own
// process: two IP-in-IP tests at once answered each other's probes (a
// responder counted two answers, a prober without one got its neighbour's).
// Each holds this lock, on a file all processes share, while it probes.
class IpipTestLock
{
public:
  IpipTestLock() : m_fd(::open("/tmp/portmatrix-unit-tests-ipip.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600))
  {
    if (m_fd) ::flock(m_fd.get(), LOCK_EX);
  }

private:
  Fd m_fd; // closing it releases the lock
};

// IP-in-IP (IP protocol 4): the prober's encapsulated probe, sent on its raw
// socket, reaches the responder's raw socket, which answers the same way;
// the prober's own socket sees the probe too (on loopback) and takes it for
// no answer. Without the responder the probe gets nothing.
TEST(Responder, AnswersIpInIpProbesOnItsRawSocket)
{
  if (!Fd(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_IPIP))) {
    PORTMATRIX_SKIP() << "a raw IPPROTO_IPIP socket needs CAP_NET_RAW";
  }
  IpipTestLock lock;
  auto token = test_token();
  ProbeOptions options;
  options.timeout = 500ms;
  options.retries = 0;
  std::vector<ProbeTarget> targets = {{Protocol::ipip, k_loopback, {0, 0}, 1}};
  std::vector<TargetOutcome> outcomes;
  {
    EventLoop loop;
    Responder responder(loop, token, k_node, k_loopback);
    responder.bind({{Protocol::ipip, {0, 0}}});
    EXPECT_TRUE(responder.listening(Protocol::ipip, 0));
    EXPECT_FALSE(responder.listening(Protocol::udp, 0));
    EXPECT_EQ(responder.listener_count(), 1u);
    {
      LoopThread thread(loop);
      outcomes = Prober::run(token, targets, options);
    }
    EXPECT_EQ(responder.answered_to(Protocol::ipip, k_loopback, 0), 1u);
    EXPECT_EQ(responder.answered_to(Protocol::udp, k_loopback, 0), 0u);
  }
  ASSERT_EQ(outcomes.size(), 1u);
  ASSERT_EQ(outcomes[0].ports.size(), 1u);
  const auto& port = outcomes[0].ports[0];
  EXPECT_EQ(port.port, 0);
  EXPECT_EQ(port.state, ProbeState::open);
  ASSERT_TRUE(port.responder);
  EXPECT_TRUE(port.responder->authentic);
  EXPECT_EQ(port.responder->node, k_node);

  auto silent = Prober::run(token, targets, options); // the prober's own raw socket still takes protocol 4
  EXPECT_EQ(silent[0].ports[0].state, ProbeState::filtered);
  ProbeTarget ipv6{Protocol::ipip, "::1", {0, 0}, 1};
  auto refused = Prober::run(token, {ipv6}, options);
  EXPECT_EQ(refused[0].ports[0].state, ProbeState::error);
  EXPECT_EQ(refused[0].ports[0].error, EAFNOSUPPORT);
  options.source_address = "::1"; // from an IPv6 node
  refused = Prober::run(token, targets, options);
  EXPECT_EQ(refused[0].ports[0].error, EAFNOSUPPORT);
}

// Two checks probing at once: every raw IP-in-IP socket sees every answer,
// and each prober takes only the answer to its own nonce.
TEST(Responder, TwoProbersAtOnceEachGetTheirOwnIpInIpAnswer)
{
  if (!Fd(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_IPIP))) {
    PORTMATRIX_SKIP() << "a raw IPPROTO_IPIP socket needs CAP_NET_RAW";
  }
  IpipTestLock lock;
  auto token = test_token();
  EventLoop responder_loop;
  Responder responder(responder_loop, token, k_node, k_loopback);
  responder.bind({{Protocol::ipip, {0, 0}}});
  ProbeOptions options;
  options.timeout = 1000ms;
  options.retries = 0;
  options.udp_resend = 50ms; // many answers in flight at once
  std::vector<ProbeTarget> targets = {{Protocol::ipip, k_loopback, {0, 0}, 1}};
  EventLoop loop;
  Prober first(loop, token, options);
  Prober second(loop, token, options);
  std::vector<TargetOutcome> first_outcome, second_outcome;
  {
    LoopThread thread(responder_loop);
    first.start(targets, [&](std::vector<TargetOutcome> outcomes) { first_outcome = std::move(outcomes); });
    second.start(targets, [&](std::vector<TargetOutcome> outcomes) { second_outcome = std::move(outcomes); });
    for (int turn = 0; turn < 400 && (first_outcome.empty() || second_outcome.empty()); ++turn) loop.run_once(10ms);
  }
  for (const auto* outcome : {&first_outcome, &second_outcome}) {
    ASSERT_EQ(outcome->size(), 1u);
    const auto& port = (*outcome)[0].ports[0];
    EXPECT_EQ(port.state, ProbeState::open);
    ASSERT_TRUE(port.responder);
    EXPECT_TRUE(port.responder->authentic) << "took the other prober's answer";
  }
}

TEST(Responder, AnswersOnIpv6)
{
  constexpr const char* k_ipv6_loopback = "::1";
  auto token = test_token();
  EventLoop loop;
  Responder responder(loop, token, k_node, k_ipv6_loopback);
  auto tcp_port = free_port(SOCK_STREAM, k_ipv6_loopback);
  auto udp_port = free_port(SOCK_DGRAM, k_ipv6_loopback);
  if (tcp_port == 0 || udp_port == 0) PORTMATRIX_SKIP() << "no IPv6 on lo";
  responder.bind({{Protocol::tcp, {tcp_port, tcp_port}}, {Protocol::udp, {udp_port, udp_port}}});
  ASSERT_TRUE(responder.owners().empty()) << responder.owners().front().error;
  std::optional<Identity> tcp;
  std::string udp_reply;
  {
    LoopThread thread(loop);
    tcp = tcp_probe(tcp_port, "0123456789abcdef", k_ipv6_loopback);
    udp_reply = udp_exchange(udp_port, make_probe_payload("0123456789abcdef"), 3000ms, k_ipv6_loopback);
  }
  ASSERT_TRUE(tcp);
  EXPECT_TRUE(tcp->authentic && tcp->port == tcp_port);
  auto udp = parse_identity_reply(token, udp_reply, "0123456789abcdef", Protocol::udp);
  ASSERT_TRUE(udp) << udp_reply;
  EXPECT_TRUE(udp->authentic && udp->port == udp_port);
  EXPECT_EQ(responder.answered_to(Protocol::tcp, k_ipv6_loopback, tcp_port), 1u);
  EXPECT_EQ(responder.answered_to(Protocol::udp, k_ipv6_loopback, udp_port), 1u);
}

// The check asks a destination whether it answered a probe its prober never
// heard back from: the responder keeps, per (protocol, prober's address,
// port), the identity replies it sent, and a mark to leave earlier ones out.
TEST(Responder, RemembersWhomItAnsweredOnWhichPortEvenAfterTheProberLeft)
{
  auto token = test_token();
  EventLoop loop;
  Responder responder(loop, token, k_node, k_loopback);
  auto [tcp_port, udp_port] = bind_tcp_and_udp(responder);
  ASSERT_TRUE(responder.owners().empty()) << responder.owners().front().error;
  auto start = responder.answered_mark();
  EXPECT_EQ(responder.answered_to(Protocol::udp, k_loopback, udp_port), 0u);

  // A UDP prober that gave up before the loop ran: its socket is gone when
  // the answer leaves. And garbage, which is no probe and is not answered.
  {
    auto address = *SocketAddress::parse(k_loopback, udp_port);
    Fd gone(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    auto probe = make_probe_payload("0123456789abcdef");
    ASSERT_EQ(::sendto(gone.get(), probe.data(), probe.size(), 0, address.get(), address.length()),
              ssize_t(probe.size()));
    Fd garbage(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::sendto(garbage.get(), "hello\n", 6, 0, address.get(), address.length()), 6);
  }
  std::optional<Identity> tcp;
  {
    LoopThread thread(loop);
    tcp = tcp_probe(tcp_port, "fedcba9876543210");
  }
  // The datagrams were queued before the thread started: the loop, on this
  // thread now, takes turns until it has answered the probe among them.
  for (auto until = std::chrono::steady_clock::now() + 10s;
       responder.answered() < 2 && std::chrono::steady_clock::now() < until;) {
    loop.run_once(10ms);
  }
  ASSERT_TRUE(tcp && tcp->authentic);
  EXPECT_EQ(responder.answered(), 2u);
  EXPECT_EQ(responder.answered_to(Protocol::udp, k_loopback, udp_port), 1u);
  EXPECT_EQ(responder.answered_to(Protocol::tcp, k_loopback, tcp_port), 1u);
  EXPECT_EQ(responder.answered_to(Protocol::tcp, k_loopback, tcp_port, start), 1u);
  // Another protocol, port or prober was not answered.
  EXPECT_EQ(responder.answered_to(Protocol::udp, k_loopback, tcp_port), 0u);
  EXPECT_EQ(responder.answered_to(Protocol::tcp, k_loopback, udp_port), 0u);
  EXPECT_EQ(responder.answered_to(Protocol::tcp, "127.0.0.2", tcp_port), 0u);
  EXPECT_EQ(responder.answered_to(Protocol::tcp, "not an address", tcp_port), 0u);
  // Nothing answered since a later mark.
  EXPECT_EQ(responder.answered_mark(), start + 2);
  EXPECT_EQ(responder.answered_to(Protocol::tcp, k_loopback, tcp_port, responder.answered_mark()), 0u);
}

// TIME_WAIT sockets of this network namespace between `port` and one of
// `peers` (/proc/net/tcp): only the test's own connections, whatever other
// tests running at the same time leave behind.
std::size_t
time_wait_on(std::uint16_t port, const std::set<std::uint16_t>& peers)
{
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line); // header
  std::size_t count = 0;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    auto port_of = [](const std::string& address) { return std::stoul(address.substr(address.find(':') + 1), nullptr, 16); };
    auto here = port_of(local);
    auto there = port_of(remote);
    if (state == "06" && ((here == port && peers.contains(std::uint16_t(there))) ||
                          (there == port && peers.contains(std::uint16_t(here))))) {
      ++count;
    }
  }
  return count;
}

// An answered TCP probe ends with an RST right after the identity line: the
// prober reads the line, then a reset (not a FIN), and neither side keeps
// the connection in TIME_WAIT, however many probes came.
TEST(Responder, ClosesAProbeWithAnRstAndLeavesNoTimeWait)
{
  auto token = test_token();
  EventLoop loop;
  Responder responder(loop, token, k_node, k_loopback);
  auto tcp_port = free_port(SOCK_STREAM);
  responder.bind({{Protocol::tcp, {tcp_port, tcp_port}}});
  ASSERT_TRUE(responder.owners().empty());
  constexpr int k_probes = 20;
  int authentic = 0;
  int reset = 0;
  std::set<std::uint16_t> clients;
  {
    LoopThread thread(loop);
    for (int i = 0; i < k_probes; ++i) {
      Fd client = connect_tcp(tcp_port);
      sockaddr_in self{};
      socklen_t length = sizeof self;
      ASSERT_EQ(::getsockname(client.get(), reinterpret_cast<sockaddr*>(&self), &length), 0);
      clients.insert(ntohs(self.sin_port));
      auto nonce = fmt::format("{:016x}", 0xc0ffee00 + i);
      send_text(client, make_probe_payload(nonce));
      int how = -1;
      auto reply = read_to_end(client, &how);
      auto identity = parse_identity_reply(token, reply, nonce, Protocol::tcp);
      authentic += identity && identity->authentic;
      reset += how == ECONNRESET;
    }
  }
  EXPECT_EQ(authentic, k_probes);
  EXPECT_EQ(reset, k_probes) << "closed with a FIN (or not at all) instead of an RST";
  EXPECT_EQ(time_wait_on(tcp_port, clients), 0u);
}

TEST(Responder, IgnoresGarbageAndSilenceAndKeepsAnsweringOthers)
{
  auto token = test_token();
  EventLoop loop;
  Responder responder(loop, token, k_node, k_loopback);
  auto tcp_port = free_port(SOCK_STREAM);
  auto udp_port = free_port(SOCK_DGRAM);
  responder.bind({{Protocol::tcp, {tcp_port, tcp_port}}, {Protocol::udp, {udp_port, udp_port}}});
  ASSERT_TRUE(responder.owners().empty());

  std::string garbage_reply;
  std::string udp_garbage_reply;
  std::optional<Identity> while_silent;
  bool silent_open_after_probe = false;
  std::string silent_reply;
  int silent_end = -1;
  std::chrono::milliseconds silent_closed_after{};
  {
    LoopThread thread(loop);
    Fd garbage = connect_tcp(tcp_port);
    send_text(garbage, "GET / HTTP/1.1\r\n\r\n");
    garbage_reply = read_to_end(garbage);
    udp_garbage_reply = udp_exchange(udp_port, "PMX1 not-a-nonce\n", 300ms);

    auto opened = std::chrono::steady_clock::now();
    Fd silent = connect_tcp(tcp_port);
    Fd half_line = connect_tcp(tcp_port);
    send_text(half_line, "PMX1 01234");
    while_silent = tcp_probe(tcp_port, "00000000000000aa");
    // Answered while the silent clients were still held: they delayed nothing.
    silent_open_after_probe = still_open(silent) && still_open(half_line);
    int half_line_end = -1;
    silent_reply = read_to_end(silent, &silent_end) + read_to_end(half_line, &half_line_end);
    if (silent_end == 0 || silent_end == ECONNRESET) silent_end = half_line_end;
    silent_closed_after =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - opened);
  }

  EXPECT_EQ(garbage_reply, "");
  EXPECT_EQ(udp_garbage_reply, "");
  ASSERT_TRUE(while_silent);
  EXPECT_TRUE(while_silent->authentic);
  EXPECT_TRUE(silent_open_after_probe) << "a silent client delayed another";
  EXPECT_EQ(silent_reply, "");
  // Closed by the responder after its per-connection timeout (~2 s), not by
  // our 5 s receive timeout (EAGAIN).
  EXPECT_GE(silent_closed_after, 1500ms);
  EXPECT_TRUE(silent_end == 0 || silent_end == ECONNRESET) << "ended by " << std::strerror(silent_end);
  EXPECT_EQ(responder.answered(), 1u);
}

// 4,000 idle connections (a slow or hostile client) delay no probe, and the
// responder closes them itself after its per-connection timeout.
TEST(Responder, ThousandsOfIdleConnectionsDelayNoProbe)
{
  if (!ensure_fd_limit(10000)) PORTMATRIX_SKIP() << "needs RLIMIT_NOFILE >= 10000";
  auto token = test_token();
  EventLoop loop;
  Responder responder(loop, token, k_node, k_loopback);
  auto tcp_port = free_port(SOCK_STREAM);
  responder.bind({{Protocol::tcp, {tcp_port, tcp_port}}});
  int authentic = 0;
  auto slowest = 0ms;
  ssize_t oldest_read = -1;
  int read_error = 0;
  std::chrono::milliseconds oldest_lived{};
  {
    LoopThread thread(loop);
    std::vector<Fd> idle;
    auto first_connected = std::chrono::steady_clock::now();
    for (int i = 1; i <= 4000; ++i) {
      idle.push_back(connect_tcp(tcp_port));
      // The answer also paces us: the listener accepts in order, so every
      // earlier connection is accepted by now and its queue never overflows
      // (which would cost a 1 s SYN retransmission).
      if (i % 100 == 0) {
        auto start = std::chrono::steady_clock::now();
        auto identity = tcp_probe(tcp_port, "00000000000000bb");
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        slowest = std::max(slowest, took);
        authentic += identity && identity->authentic;
      }
    }
    char byte;
    oldest_read = ::recv(idle.front().get(), &byte, 1, 0); // up to the 5 s receive timeout
    read_error = oldest_read < 0 ? errno : 0;
    oldest_lived =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - first_connected);
  }
  EXPECT_EQ(authentic, 40);
  EXPECT_EQ(responder.answered(), 40u);
  // A probe held up by the idle connections would wait for their timeout,
  // as long as the oldest one lived here (~2 s): the comparison, measured.
  EXPECT_LT(slowest, oldest_lived / 2) << "an idle connection delayed a probe";
  // Without a word: a reset (connections are closed with SO_LINGER 0), not a
  // timeout of our receive (EAGAIN) and never data.
  EXPECT_EQ(oldest_read, -1);
  EXPECT_EQ(read_error, ECONNRESET) << "the responder closes an idle connection without a word";
}

TEST(Responder, ABurstOnOnePortWaitsInTheQueueWhileTheLoopIsBusy)
{
  // A node busy probing falls behind its listeners: a burst of connections
  // to one port (the load balancer's to the API port) must wait in the
  // accept queue. One that overflowed would have its SYNs dropped: a
  // firewall's silence, for a port that is open.
  constexpr int k_burst = 600;
  if (!ensure_fd_limit(2 * k_burst + 100)) PORTMATRIX_SKIP() << "needs RLIMIT_NOFILE >= " << 2 * k_burst + 100;
  std::ifstream somaxconn_file("/proc/sys/net/core/somaxconn");
  int somaxconn = 0;
  somaxconn_file >> somaxconn;
  if (somaxconn <= k_burst) PORTMATRIX_SKIP() << "net.core.somaxconn (" << somaxconn << ") caps every listen queue below the burst";
  auto token = test_token();
  EventLoop loop;
  Responder responder(loop, token, k_node, k_loopback);
  auto tcp_port = free_port(SOCK_STREAM);
  responder.bind({{Protocol::tcp, {tcp_port, tcp_port}}});
  auto address = *SocketAddress::parse(k_loopback, tcp_port);
  auto payload = make_probe_payload("00000000000000cc");
  std::vector<Fd> clients;
  for (int i = 0; i < k_burst; ++i) { // the loop does not run meanwhile
    Fd socket(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ::connect(socket.get(), address.get(), address.length());
    clients.push_back(std::move(socket));
  }
  std::vector<pollfd> polls;
  for (const auto& client : clients) polls.push_back({client.get(), POLLOUT, 0});
  ::poll(polls.data(), polls.size(), 300); // the handshakes are the kernel's: milliseconds
  ::poll(polls.data(), polls.size(), 0);
  std::vector<Fd> connected; // the others are closed here, unanswered
  for (std::size_t i = 0; i < clients.size(); ++i) {
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(clients[i].get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (!(polls[i].revents & POLLOUT) || error != 0) continue;
    ::send(clients[i].get(), payload.data(), payload.size(), MSG_NOSIGNAL);
    connected.push_back(std::move(clients[i]));
  }
  clients.clear();
  EXPECT_EQ(connected.size(), std::size_t(k_burst)) << "SYNs dropped while the loop was busy: the accept queue overflowed";
  std::size_t authentic = 0;
  {
    LoopThread thread(loop);
    for (auto& client : connected) {
      int flags = ::fcntl(client.get(), F_GETFL);
      ::fcntl(client.get(), F_SETFL, flags & ~O_NONBLOCK);
      set_receive_timeout(client, 5s);
      auto identity = parse_identity_reply(token, read_to_end(client), "00000000000000cc", Protocol::tcp);
      authentic += identity && identity->authentic;
    }
  }
  EXPECT_EQ(authentic, connected.size());
}

TEST(Responder, AQueueOnOneListenerDrainsInAFewTurns)
{
  // One accept a turn spares the accept() that would say EAGAIN when a
  // probe comes alone; a listener ready turn after turn has a queue, which
  // drains many a turn, or the last of a burst would wait hundreds of turns
  // of a loop that the node's own probing keeps busy.
  constexpr int k_queued = 300;
  if (!ensure_fd_limit(2 * k_queued + 100)) PORTMATRIX_SKIP() << "needs RLIMIT_NOFILE >= " << 2 * k_queued + 100;
  auto token = test_token();
  EventLoop loop;
  Responder responder(loop, token, k_node, k_loopback);
  auto tcp_port = free_port(SOCK_STREAM);
  responder.bind({{Protocol::tcp, {tcp_port, tcp_port}}});
  std::vector<Fd> clients;
  for (int i = 0; i < k_queued; ++i) { // handshakes are the kernel's: the loop does not run meanwhile
    clients.push_back(connect_tcp(tcp_port));
    send_text(clients.back(), make_probe_payload("00000000000000dd"));
  }
  int turns = 0;
  for (; turns < 20 && responder.answered() < std::size_t(k_queued); ++turns) loop.run_once(0ms);
  EXPECT_EQ(responder.answered(), std::size_t(k_queued)) << "after " << turns << " turns";
  EXPECT_LE(turns, 1 + k_queued / 64 + 2);
  std::size_t authentic = 0;
  for (auto& client : clients) {
    auto identity = parse_identity_reply(token, read_to_end(client), "00000000000000dd", Protocol::tcp);
    authentic += identity && identity->authentic;
  }
  EXPECT_EQ(authentic, std::size_t(k_queued));
}

TEST(Responder, RecordsTheOwnerOfAPortInUse)
{
  auto token = test_token();
  EventLoop loop;
  std::uint16_t tcp_port = 0;
  std::uint16_t udp_port = 0;
  Fd tcp_holder = bound_socket(SOCK_STREAM, tcp_port);
  Fd udp_holder = bound_socket(SOCK_DGRAM, udp_port);
  Responder responder(loop, token, k_node, k_loopback);
  responder.bind({{Protocol::tcp, {tcp_port, tcp_port}}, {Protocol::udp, {udp_port, udp_port}}});

  EXPECT_EQ(responder.listener_count(), 0u);
  EXPECT_FALSE(responder.listening(Protocol::tcp, tcp_port));
  ASSERT_EQ(responder.owners().size(), 2u);
  for (const auto& owner : responder.owners()) {
    EXPECT_EQ(owner.port, owner.protocol == Protocol::tcp ? tcp_port : udp_port);
    EXPECT_EQ(owner.pid, ::getpid());
    EXPECT_EQ(owner.process, own_comm());
    EXPECT_EQ(owner.error, std::strerror(EADDRINUSE));
  }
}

TEST(Responder, ReportsEveryPortWhenTheAddressIsNotAnAddress)
{
  auto token = test_token();
  EventLoop loop;
  Responder responder(loop, token, k_node, "node-a.example");
  responder.bind({{Protocol::udp, {40000, 40002}}});
  EXPECT_EQ(responder.listener_count(), 0u);
  ASSERT_EQ(responder.owners().size(), 3u);
  EXPECT_EQ(responder.owners().front().error, "not an IP address: node-a.example");
}

TEST(FindPortOwner, FindsThisProcessAndNothingOnAFreePort)
{
  std::uint16_t tcp_port = 0;
  std::uint16_t udp_port = 0;
  Fd tcp_holder = bound_socket(SOCK_STREAM, tcp_port);
  Fd udp_holder = bound_socket(SOCK_DGRAM, udp_port);

  auto tcp_owner = find_port_owner(Protocol::tcp, tcp_port);
  ASSERT_TRUE(tcp_owner);
  EXPECT_EQ(tcp_owner->first, ::getpid());
  EXPECT_EQ(tcp_owner->second, own_comm());
  auto udp_owner = find_port_owner(Protocol::udp, udp_port);
  ASSERT_TRUE(udp_owner);
  EXPECT_EQ(udp_owner->first, ::getpid());

  auto free_tcp = free_port(SOCK_STREAM);
  EXPECT_FALSE(find_port_owner(Protocol::tcp, free_tcp));
}

// The agent's worst case: 30000-32767 over TCP and UDP. Here two ranges of
// 2,768 ports at a random base below the ephemeral range, retried elsewhere
// if something else holds one of them.
TEST(Responder, Holds5536ListenersInLittleMemory)
{
  constexpr std::uint16_t k_range = 2768;
  if (!ensure_fd_limit(8000)) PORTMATRIX_SKIP() << "needs RLIMIT_NOFILE >= 8000";
  auto token = test_token();
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> bases(10000, 30000 - k_range);

  for (int attempt = 0; attempt < 5; ++attempt) {
    auto base = std::uint16_t(bases(random));
    PortRange range{base, std::uint16_t(base + k_range - 1)};
    EventLoop loop;
    auto before = rss_kib();
    Responder responder(loop, token, k_node, k_loopback);
    responder.bind({{Protocol::tcp, range}, {Protocol::udp, range}});
    auto after = rss_kib();
    if (!responder.owners().empty()) continue; // someone else holds a port there: try another range

    EXPECT_EQ(responder.listener_count(), 2u * k_range);
    std::cout << "5536 listeners: VmRSS " << after / 1024.0 << " MiB (" << (after - before) / 1024.0
              << " MiB more than before binding)\n";
    RecordProperty("rss_kib", int(after));
    RecordProperty("rss_growth_kib", int(after - before));
    EXPECT_LT(after - before, 30 * 1024);
#ifndef __SANITIZE_ADDRESS__
    EXPECT_LT(after, 60 * 1024);
#endif

    std::optional<Identity> first;
    std::optional<Identity> last;
    {
      LoopThread thread(loop);
      first = tcp_probe(range.min, "1111111111111111");
      last = parse_identity_reply(token, udp_exchange(range.max, make_probe_payload("2222222222222222")),
                                  "2222222222222222", Protocol::udp);
    }
    ASSERT_TRUE(first && last);
    EXPECT_TRUE(first->authentic && first->port == range.min);
    EXPECT_TRUE(last->authentic && last->port == range.max);
    return;
  }
  FAIL() << "no free range of " << k_range << " ports found in 5 attempts";
}

} // namespace
} // namespace portmatrix
