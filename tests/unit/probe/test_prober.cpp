// The prober against a small responder on loopback (127.0.0.1 and ::1 only):
// the responder runs its own EventLoop on its own thread and answers like an
// agent would (or stays silent, closes, or talks nonsense), and the prober
// runs on the test's thread.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "agent/identity.hpp"
#include "net/address.hpp"
#include "net/fd.hpp"
#include "probe/prober.hpp"
#include "../skip.hpp"

namespace portmatrix {

void
PrintTo(ProbeState state, std::ostream* out)
{
  *out << to_string(state);
}

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const Token&
test_token()
{
  static const Token token = *Token::from_text("portmatrix-unit-test-token");
  return token;
}

const Token&
other_token()
{
  static const Token token = *Token::from_text("some-other-cluster-token");
  return token;
}

enum class Reply {
  identity,       // the agent's answer
  close_silently, // TCP: accept and close without a word
  garbage,        // a line that is not an identity (a real service)
  nothing,        // UDP: bound, never reads (no reply, no ICMP)
  late,           // UDP: ignores the first three datagrams per port, answers the rest (an agent busy at first)
  slow,           // UDP: answers every datagram, each 350 ms after it came
  slower,         // UDP: answers every datagram, each 500 ms after it came (during the next 300 ms try but one)
  deaf,           // TCP: its accept queue is full, so every SYN is dropped (a firewall's silence, without root)
  deaf_at_first,  // TCP: deaf for k_deaf_for, then answers as `identity`
  busy,           // TCP: answers one line every k_busy_pace, in order (an agent on a saturated machine)
  held,           // TCP: reads the line, answers only when release() is called
};
constexpr auto k_busy_pace = 2ms;
constexpr auto k_deaf_for = 150ms;

// A socket of `protocol` bound to address:port (0: ephemeral), or an invalid Fd.
Fd
bind_socket(Protocol protocol, const std::string& address, std::uint16_t port)
{
  auto local = SocketAddress::parse(address, port);
  if (!local) return {};
  auto type = protocol == Protocol::tcp ? SOCK_STREAM : SOCK_DGRAM;
  Fd fd(::socket(local->family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return {};
  int on = 1;
  if (protocol == Protocol::tcp) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (::bind(fd.get(), local->get(), local->length()) != 0) return {};
  return fd;
}

std::uint16_t
local_port(int fd)
{
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length);
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&storage), length).port();
}

// `count` consecutive ports, below the ephemeral range, that bind now (and
// are returned bound, so nothing else takes them meanwhile).
std::vector<Fd>
bind_free_range(Protocol protocol, const std::string& address, std::uint32_t count, PortRange& range)
{
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<std::uint32_t> base(20000, 32000 - count);
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto first = std::uint16_t(base(random));
    std::vector<Fd> fds;
    for (std::uint32_t i = 0; i < count; ++i) {
      auto fd = bind_socket(protocol, address, std::uint16_t(first + i));
      if (!fd) break;
      fds.push_back(std::move(fd));
    }
    if (fds.size() == count) {
      range = PortRange{first, std::uint16_t(first + count - 1)};
      return fds;
    }
  }
  return {};
}

// A port with nothing bound on it (bound once, then released).
std::uint16_t
closed_port(Protocol protocol, const std::string& address)
{
  auto fd = bind_socket(protocol, address, 0);
  return fd ? local_port(fd.get()) : 0;
}

bool
has_ipv6_loopback()
{
  return bool(bind_socket(Protocol::udp, "::1", 0));
}

// The agent's stand-in. Sockets are set up before start(); then the
// responder's loop owns them on its thread until destruction.
class TestResponder
{
public:
  explicit TestResponder(const Token& token, std::vector<std::string> nodes = {"n1"})
    : m_token(token), m_nodes(std::move(nodes)), m_wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      m_release(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))
  {
  }
  ~TestResponder()
  {
    if (m_thread.joinable()) {
      std::uint64_t one = 1;
      [[maybe_unused]] auto written = ::write(m_wake.get(), &one, sizeof one);
      m_thread.join();
    }
  }

  // Listens (TCP) or binds (UDP) an ephemeral port; returns it, 0 on failure.
  std::uint16_t serve(Protocol protocol, const std::string& address, Reply reply)
  {
    auto fd = bind_socket(protocol, address, 0);
    if (!fd) return 0;
    m_address_of_deaf = address;
    auto port = local_port(fd.get());
    adopt(protocol, std::move(fd), reply);
    return port;
  }

  // Serves `count` consecutive ports; nullopt when no free range was found.
  std::optional<PortRange> serve_range(Protocol protocol, const std::string& address, std::uint32_t count, Reply reply)
  {
    return serve_range(protocol, address, count, [reply](std::uint32_t) { return reply; });
  }

  // The same, port i of the range (from 0) answering as reply_of(i) says.
  std::optional<PortRange> serve_range(Protocol protocol, const std::string& address, std::uint32_t count,
                                       const std::function<Reply(std::uint32_t)>& reply_of)
  {
    PortRange range;
    auto fds = bind_free_range(protocol, address, count, range);
    if (fds.empty()) return std::nullopt;
    m_address_of_deaf = address;
    for (std::uint32_t i = 0; i < fds.size(); ++i) adopt(protocol, std::move(fds[i]), reply_of(i));
    return range;
  }

  // For each TCP connection, in order: how many were open (itself included) when it was accepted.
  std::vector<std::size_t> open_at_accept() const
  {
    std::lock_guard lock(m_mutex);
    return m_open_at_accept;
  }

  // When each TCP identity line was sent.
  std::vector<Clock::time_point> answered_at() const
  {
    std::lock_guard lock(m_mutex);
    return m_answered_at;
  }

  // UDP Reply::nothing: the datagrams that reached its ports since the last
  // call (read here, on the caller's thread: the loop never reads them, and a
  // datagram sent on loopback is queued before its sendto() returns).
  std::size_t silent_datagrams()
  {
    std::size_t count = 0;
    char buffer[512];
    for (int fd : m_silent) {
      while (::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT) >= 0) ++count;
    }
    return count;
  }

  // Reply::held: how many lines wait for release(); release() answers them all.
  std::size_t held() const
  {
    std::lock_guard lock(m_mutex);
    return m_held_count;
  }
  void release()
  {
    std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(m_release.get(), &one, sizeof one);
  }

  void start()
  {
    m_loop.add(m_wake.get(), EPOLLIN, [this](std::uint32_t) { m_loop.stop(); });
    m_loop.add(m_release.get(), EPOLLIN, [this](std::uint32_t) { answer_held(); });
    m_thread = std::thread([this] {
      while (m_loop.run_once(100ms)) {
      }
    });
  }

private:
  struct Connection
  {
    Fd fd;
    std::uint16_t port = 0;
    Reply reply = Reply::identity;
    std::string received;
  };

  void adopt(Protocol protocol, Fd fd, Reply reply)
  {
    int raw = fd.get();
    if (reply == Reply::deaf || reply == Reply::deaf_at_first) {
      // Backlog 0 holds one connection: with one made and not accepted, the
      // kernel drops every SYN that follows, without a word.
      ::listen(raw, 0);
      auto address = SocketAddress::parse(m_address_of_deaf, local_port(raw));
      Fd filler(::socket(address->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
      ::connect(filler.get(), address->get(), address->length());
      m_sockets.push_back(std::move(filler));
      if (reply == Reply::deaf_at_first) {
        m_loop.after(k_deaf_for, [this, raw] {
          m_loop.add(raw, EPOLLIN, [this, raw](std::uint32_t) { accept_all(raw, Reply::identity); });
        });
      }
    } else if (protocol == Protocol::tcp) {
      ::listen(raw, SOMAXCONN);
      m_loop.add(raw, EPOLLIN, [this, raw, reply](std::uint32_t) { accept_all(raw, reply); });
    } else if (reply != Reply::nothing) {
      m_loop.add(raw, EPOLLIN, [this, raw, reply](std::uint32_t) { answer_datagrams(raw, reply); });
    } else {
      m_silent.push_back(raw); // never read by the loop: silent_datagrams() counts what queued
    }
    m_sockets.push_back(std::move(fd));
  }

  std::string answer(std::string_view payload, Protocol protocol, std::uint16_t port, Reply reply)
  {
    if (reply == Reply::garbage) return "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
    auto nonce = parse_probe_payload(payload).value_or("0000000000000000");
    auto node = m_nodes[m_next_node++ % m_nodes.size()];
    return make_identity_reply(m_token, nonce, node, protocol, port);
  }

  void accept_all(int listener, Reply reply)
  {
    for (;;) {
      Fd fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) return;
      if (reply == Reply::close_silently) continue; // closed here
      int raw = fd.get();
      m_connections[raw] = Connection{std::move(fd), local_port(raw), reply, {}};
      {
        std::lock_guard lock(m_mutex);
        m_open_at_accept.push_back(m_connections.size());
      }
      m_loop.add(raw, EPOLLIN, [this, raw](std::uint32_t) { read_connection(raw); });
    }
  }

  void read_connection(int raw)
  {
    auto& connection = m_connections.at(raw);
    char buffer[512];
    auto count = ::recv(raw, buffer, sizeof buffer, 0);
    if (count < 0 && errno == EAGAIN) return;
    if (count > 0) connection.received.append(buffer, std::size_t(count));
    if (count > 0 && connection.received.find('\n') == std::string::npos) return;
    if (count > 0 && connection.reply == Reply::identity && m_nodes[m_next_node % m_nodes.size()].empty()) {
      ++m_next_node; // a backend named "": takes the connection, never answers
      return;
    }
    if (count > 0 && connection.reply == Reply::held) {
      m_loop.remove(raw);
      m_held.push_back(raw);
      std::lock_guard lock(m_mutex);
      m_held_count = m_held.size();
      return;
    }
    if (count > 0 && connection.reply == Reply::busy) {
      m_loop.remove(raw);
      m_busy_queue.push_back(raw);
      if (m_busy_queue.size() == 1) m_loop.after(k_busy_pace, [this] { answer_busy(); });
      return;
    }
    if (count > 0) {
      auto reply = answer(connection.received, Protocol::tcp, connection.port, connection.reply);
      note_answer(); // before the send: the prober may read answered_at() as soon as the answer is out
      ::send(raw, reply.data(), reply.size(), MSG_NOSIGNAL);
    }
    m_loop.remove(raw);
    m_connections.erase(raw);
  }

  void note_answer()
  {
    std::lock_guard lock(m_mutex);
    m_answered_at.push_back(Clock::now());
  }

  void answer_busy()
  {
    int raw = m_busy_queue.front();
    m_busy_queue.pop_front();
    auto& connection = m_connections.at(raw);
    auto reply = answer(connection.received, Protocol::tcp, connection.port, Reply::identity);
    ::send(raw, reply.data(), reply.size(), MSG_NOSIGNAL);
    m_connections.erase(raw);
    if (!m_busy_queue.empty()) m_loop.after(k_busy_pace, [this] { answer_busy(); });
  }

  void answer_held()
  {
    std::uint64_t count = 0;
    [[maybe_unused]] auto read = ::read(m_release.get(), &count, sizeof count);
    for (int raw : m_held) {
      auto& connection = m_connections.at(raw);
      auto reply = answer(connection.received, Protocol::tcp, connection.port, Reply::identity);
      note_answer();
      ::send(raw, reply.data(), reply.size(), MSG_NOSIGNAL);
      m_connections.erase(raw);
    }
    m_held.clear();
  }

  void answer_datagrams(int fd, Reply reply)
  {
    for (;;) {
      char buffer[512];
      sockaddr_storage peer{};
      socklen_t length = sizeof peer;
      auto count = ::recvfrom(fd, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&peer), &length);
      if (count < 0) return;
      if (reply == Reply::late && ++m_ignored[fd] <= 3) continue;
      // The agent's own answer: a shaped probe is answered in its shape.
      auto datagram = std::string_view(buffer, std::size_t(count));
      auto text = reply == Reply::garbage ? answer(datagram, Protocol::udp, local_port(fd), reply)
                                          : answer_probe_datagram(m_token, datagram, m_nodes[m_next_node++ % m_nodes.size()],
                                                                  local_port(fd))
                                              .value_or("");
      if (text.empty()) continue;
      auto send = [fd, text, peer, length] {
        ::sendto(fd, text.data(), text.size(), 0, reinterpret_cast<const sockaddr*>(&peer), length);
      };
      if (reply == Reply::slow || reply == Reply::slower) {
        m_loop.after(reply == Reply::slow ? 350ms : 500ms, send);
      } else {
        send();
      }
    }
  }

  const Token& m_token;
  std::vector<std::string> m_nodes;
  std::size_t m_next_node = 0;
  std::map<int, int> m_ignored; // per socket: Reply::late ignores its first three datagrams
  std::string m_address_of_deaf;   // where a deaf listener's filler connects
  mutable std::mutex m_mutex;
  std::vector<Clock::time_point> m_answered_at;
  std::vector<std::size_t> m_open_at_accept;
  std::deque<int> m_busy_queue; // Reply::busy: lines waiting for their answer
  std::vector<int> m_held;      // Reply::held: lines waiting for release()
  std::vector<int> m_silent;    // UDP Reply::nothing sockets
  std::size_t m_held_count = 0; // m_held.size(), for other threads
  EventLoop m_loop;
  Fd m_wake;
  Fd m_release;
  std::vector<Fd> m_sockets;
  std::unordered_map<int, Connection> m_connections;
  std::thread m_thread;
};

ProbeTarget
target(Protocol protocol, std::string address, std::uint16_t first, std::uint16_t last = 0, int repeat = 1)
{
  return ProbeTarget{protocol, std::move(address), PortRange{first, last == 0 ? first : last}, repeat};
}

ProbeOptions
options(std::chrono::milliseconds timeout = 2000ms, std::size_t max_in_flight = 4096)
{
  ProbeOptions result;
  result.timeout = timeout;
  result.max_in_flight = max_in_flight;
  result.udp_resend = 100ms;
  return result;
}

PortOutcome
probe_one(const ProbeTarget& one, ProbeOptions probe_options = options(), const Token& token = test_token())
{
  auto outcomes = Prober::run(token, {one}, std::move(probe_options));
  EXPECT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes.at(0).ports.size(), 1u);
  return outcomes.at(0).ports.at(0);
}

void
expect_authentic_n1(const PortOutcome& outcome, std::uint16_t port)
{
  EXPECT_EQ(outcome.port, port);
  EXPECT_EQ(outcome.state, ProbeState::open);
  ASSERT_TRUE(outcome.responder);
  EXPECT_EQ(outcome.responder->node, "n1");
  EXPECT_EQ(outcome.responder->port, port);
  EXPECT_TRUE(outcome.responder->authentic);
  EXPECT_EQ(outcome.responders, std::vector<std::string>{"n1"});
}

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
