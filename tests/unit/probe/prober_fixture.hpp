// The prober's unit tests' stand-in for an agent, on loopback (127.0.0.1 and
// ::1 only): TestResponder runs its own EventLoop on its own thread and
// answers like an agent would (or stays silent, closes, talks nonsense,
// answers late), while the prober runs on the test's thread. Shared by
// test_prober.cpp (outcomes, order, fds), test_prober_pacing.cpp (silence,
// retries, the window) and test_prober_sockets.cpp (a TCP socket reused).
#pragma once

#include <gtest/gtest.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/identity.hpp"
#include "net/address.hpp"
#include "net/event_loop.hpp"
#include "net/fd.hpp"
#include "probe/prober.hpp"

namespace portmatrix {

inline void
PrintTo(ProbeState state, std::ostream* out)
{
  *out << to_string(state);
}

namespace test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline const Token&
test_token()
{
  static const Token token = *Token::from_text("portmatrix-unit-test-token");
  return token;
}

inline const Token&
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
inline constexpr auto k_busy_pace = 2ms;
inline constexpr auto k_deaf_for = 150ms;

// A socket of `protocol` bound to address:port (0: ephemeral), or an invalid Fd.
inline Fd
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

inline std::uint16_t
local_port(int fd)
{
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length);
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&storage), length).port();
}

// `count` consecutive ports, below the ephemeral range, that bind now (and
// are returned bound, so nothing else takes them meanwhile).
inline std::vector<Fd>
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
inline std::uint16_t
closed_port(Protocol protocol, const std::string& address)
{
  auto fd = bind_socket(protocol, address, 0);
  return fd ? local_port(fd.get()) : 0;
}

inline bool
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

inline ProbeTarget
target(Protocol protocol, std::string address, std::uint16_t first, std::uint16_t last = 0, int repeat = 1)
{
  return ProbeTarget{protocol, std::move(address), PortRange{first, last == 0 ? first : last}, repeat};
}

inline ProbeOptions
options(std::chrono::milliseconds timeout = 2000ms, std::size_t max_in_flight = 4096)
{
  ProbeOptions result;
  result.timeout = timeout;
  result.max_in_flight = max_in_flight;
  result.udp_resend = 100ms;
  return result;
}

inline PortOutcome
probe_one(const ProbeTarget& one, ProbeOptions probe_options = options(), const Token& token = test_token())
{
  auto outcomes = Prober::run(token, {one}, std::move(probe_options));
  EXPECT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes.at(0).ports.size(), 1u);
  return outcomes.at(0).ports.at(0);
}

inline void
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

} // namespace test
} // namespace portmatrix
