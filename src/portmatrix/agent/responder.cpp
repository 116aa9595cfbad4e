// The responder holds one socket per port the node must receive, all on the
// caller's EventLoop, and answers probes with the node's identity.
//
// Memory is the constraint: a node may need 30000-32767 over TCP and UDP,
// 5,536 sockets. Each listener is a 16-byte Listener (fd, protocol, port,
// the turn it was last ready in) in one vector, "do we hold this port" is a
// bit in a 64 Ki bitset per protocol, and each is registered with a lambda
// capturing only `this` and its index, which std::function stores inline
// (no allocation of its own).
//
// UDP is stateless: a datagram carrying a probe payload gets the reply sent
// back to its source, anything else is ignored. A TCP connection is accepted
// (non-blocking) once its first bytes are in (TCP_DEFER_ACCEPT), so a probe is
// usually answered and closed right after accept4(), without epoll or a
// timer, and closed with an RST (the listener's SO_LINGER 0 is inherited):
// reply and reset are the connection's last two packets, no FIN exchange and
// no TIME_WAIT on either side. Otherwise it buffers at most one identity
// line, is answered and closed when a full probe line arrives, and is closed
// without a word when the line is not a probe, when the buffer fills, or
// after k_line_timeout, so idle clients never delay prompt probers, which
// finish in milliseconds. Accepted connections are capped
// (k_max_connections): at the cap new ones wait in the kernel's accept
// queue; out of fds, the oldest is answered if its line has arrived, then
// closed.
//
// A port that cannot be bound is recorded with its owner (host/sockets.hpp);
// failed ports are resolved in one pass over /proc.
//
// IP-in-IP (IP protocol 4) has no ports: one raw IPPROTO_IPIP socket on the
// node's IPv4 address (it needs CAP_NET_RAW; its filter keeps only probe-
// shaped packets, probe/raw_packet.hpp) is its listener, "port" 0. A probe
// gets the identity reply back to its source, encapsulated the same way and
// never longer than the probe; anything else (a real tunnel's packets,
// another prober's answers) is ignored.
#include "agent/responder.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "agent/identity.hpp"
#include "host/sockets.hpp"
#include "net/address.hpp"
#include "net/fd.hpp"
#include "probe/raw_packet.hpp"

namespace portmatrix {
namespace {

// As deep as the kernel allows (it caps the number at net.core.somaxconn): on
// a loop that falls behind (a busy node probing thousands of ports itself) a
// burst on one port (the load balancer's connections to the API port during
// a VIP check) must wait in the queue, not overflow it: a full queue drops
// the SYN, or the handshake's last ACK, and the probe reads as a firewall's
// drop or as a responder that never says who it is. The number costs
// nothing until used.
constexpr int k_listen_backlog = SOMAXCONN;
constexpr std::chrono::milliseconds k_line_timeout{2000};
constexpr std::size_t k_max_connections = 8192;
// Per readiness event (the loop is level triggered, so the rest waits a turn
// and one busy port cannot starve others): one accept, which spares the
// accept() that would only say EAGAIN (a probe connection usually comes
// alone), and one recvmmsg() of up to k_datagrams. A listener that was ready
// the turn before as well has a queue (a burst: every worker probing the
// API port at once), and takes up to k_accept_burst: one a turn, on a loop
// that a node's own probing keeps busy, would answer the last of them
// seconds late.
constexpr int k_datagrams = 16;
constexpr int k_accept_burst = 64;
constexpr int k_send_flags = MSG_NOSIGNAL | MSG_DONTWAIT;

std::string
errno_text(int error)
{
  return std::strerror(error);
}

// --- sockets ------------------------------------------------------------------

// A bound (and, for TCP, listening) non-blocking socket, or the errno of the
// step that failed.
Fd
open_listener(Protocol protocol, const SocketAddress& address, int& error)
{
  if (protocol == Protocol::ipip && address.family() != AF_INET) {
    error = EAFNOSUPPORT; // IPv4 in IPv4 only
    return {};
  }
  int type = protocol == Protocol::tcp ? SOCK_STREAM : protocol == Protocol::udp ? SOCK_DGRAM : SOCK_RAW;
  Fd socket(::socket(address.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC,
                     protocol == Protocol::ipip ? IPPROTO_IPIP : 0));
  if (!socket) {
    error = errno;
    return {};
  }
  if (protocol == Protocol::ipip) {
    auto code = ipip_socket_filter();
    sock_fprog program{std::uint16_t(code.size()), code.data()};
    if (::setsockopt(socket.get(), SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) != 0) {
      error = errno;
      return {};
    }
  }
  int on = 1;
  if (protocol == Protocol::tcp) {
    ::setsockopt(socket.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    // accept() only once the client has sent something: a probe's line is
    // then in at once, and the connection is answered without epoll.
    ::setsockopt(socket.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &on, sizeof(on));
    // Accepted connections inherit SO_LINGER 0: close() after the identity
    // line sends an RST instead of a FIN, so neither side keeps TIME_WAIT
    // and a probe costs no FIN and no ACK of it (the line, already sent,
    // stays readable for the prober).
    linger hard{1, 0};
    ::setsockopt(socket.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  }
  if (::bind(socket.get(), address.get(), address.length()) != 0
      || (protocol == Protocol::tcp && ::listen(socket.get(), k_listen_backlog) != 0)) {
    error = errno;
    return {};
  }
  return socket;
}

// The address of `from` (IPv4 or IPv6) as PeerBytes.
PeerBytes
bytes_of(const sockaddr_storage& from)
{
  PeerBytes bytes{};
  if (from.ss_family == AF_INET) {
    std::memcpy(bytes.data(), &reinterpret_cast<const sockaddr_in&>(from).sin_addr, 4);
  } else if (from.ss_family == AF_INET6) {
    std::memcpy(bytes.data(), &reinterpret_cast<const sockaddr_in6&>(from).sin6_addr, 16);
  }
  return bytes;
}

} // namespace

// --- Responder ----------------------------------------------------------------

struct Responder::Impl
{
  struct Listener
  {
    Fd fd;
    Protocol protocol;
    std::uint16_t port;
    std::uint32_t last_turn = 0; // the loop's turn it was last ready in (TCP: see k_accept_burst)
  };

  struct Connection
  {
    Fd fd;
    std::uint16_t port = 0; // the listener's port, named in the reply
    std::uint64_t timer = 0;
    PeerBytes peer{};     // the prober's address
    std::string received; // at most k_max_identity_line bytes
  };

  Impl(EventLoop& loop, const Token& token, std::string node, std::string address)
    : m_loop(loop), m_token(token), m_node(std::move(node)), m_address_text(std::move(address)),
      m_address(SocketAddress::parse(m_address_text, 0))
  {
  }

  ~Impl()
  {
    for (auto& listener : m_listeners) m_loop.remove(listener.fd.get());
    for (auto& [id, connection] : m_connections) {
      m_loop.remove(connection.fd.get());
      m_loop.cancel(connection.timer);
    }
  }

  void bind(const std::vector<ListenSpec>& specs);
  // nullopt when listening (now or already), else the errno of the failure.
  std::optional<int> add_listener(Protocol protocol, std::uint16_t port);
  void on_listener_ready(std::uint32_t index);
  bool accept_connection(const Listener& listener); // false: none was waiting (or none could be taken)
  void answer_datagrams(const Listener& listener);
  void answer_ipip(const Listener& listener);
  bool on_connection_ready(std::uint64_t id);
  // Answers when `line` is a probe; the caller closes the connection.
  void answer_line(Connection& connection, std::string_view line);
  void close_connection(std::uint64_t id);
  void make_room();

  std::bitset<65536>& ports(Protocol protocol)
  {
    return protocol == Protocol::tcp ? m_tcp_ports : protocol == Protocol::udp ? m_udp_ports : m_raw_ports;
  }

  EventLoop& m_loop;
  const Token& m_token;
  std::string m_node;
  std::string m_address_text;
  std::optional<SocketAddress> m_address;

  std::vector<Listener> m_listeners; // append only: callbacks hold indices
  std::bitset<65536> m_tcp_ports;
  std::bitset<65536> m_udp_ports;
  std::bitset<65536> m_raw_ports; // ipip: bit 0
  std::vector<PortOwner> m_owners;
  TlsHealthServer* m_tls = nullptr;
  std::bitset<65536> m_tls_ports;

  // By accept order, so begin() is the oldest: the one dropped past the cap.
  std::map<std::uint64_t, Connection> m_connections;
  std::uint64_t m_next_connection = 1;
  std::uint64_t m_answered = 0;
  PeerPortCounts m_answered_to; // probes answered, by (protocol, prober, port): see answered_to()
};

void
Responder::Impl::bind(const std::vector<ListenSpec>& specs)
{
  std::vector<PortOwner> failed;
  std::vector<PortKey> in_use; // failed with EADDRINUSE: their owners are looked up
  std::vector<std::size_t> in_use_index;
  for (const auto& spec : specs) {
    if (spec.protocol == Protocol::ipip) {
      add_listener(spec.protocol, 0); // without it (no CAP_NET_RAW, an IPv6 node) listening(ipip, 0) is false
      continue;
    }
    if (spec.protocol != Protocol::tcp && spec.protocol != Protocol::udp) continue;
    for (std::uint32_t port = std::max<std::uint32_t>(spec.range.min, 1); port <= spec.range.max; ++port) {
      auto error = add_listener(spec.protocol, std::uint16_t(port));
      if (!error) continue;
      if (*error == EADDRINUSE) {
        in_use.emplace_back(spec.protocol, std::uint16_t(port));
        in_use_index.push_back(failed.size());
      }
      auto why = m_address ? errno_text(*error) : "not an IP address: " + m_address_text;
      failed.push_back(PortOwner{spec.protocol, std::uint16_t(port), 0, {}, std::move(why), {}});
    }
  }
  if (!in_use.empty()) {
    auto owners = find_port_owners(in_use);
    for (std::size_t i = 0; i < owners.size(); ++i) {
      auto& owner = failed[in_use_index[i]];
      if (owners[i]) std::tie(owner.pid, owner.process) = std::pair{owners[i]->pid, std::move(owners[i]->name)};
    }
  }
  std::move(failed.begin(), failed.end(), std::back_inserter(m_owners));
}

std::optional<int>
Responder::Impl::add_listener(Protocol protocol, std::uint16_t port)
{
  if (ports(protocol).test(port)) return std::nullopt; // already ours (a spec repeated a port)
  if (!m_address) return EAFNOSUPPORT;
  auto address = *m_address;
  address.set_port(port);
  int error = 0;
  Fd socket = open_listener(protocol, address, error);
  if (!socket) return error;
  auto index = std::uint32_t(m_listeners.size());
  if (!m_loop.add(socket.get(), EPOLLIN, [this, index](std::uint32_t) { on_listener_ready(index); })) return errno;
  m_listeners.push_back(Listener{std::move(socket), protocol, port, 0});
  ports(protocol).set(port);
  return std::nullopt;
}

void
Responder::Impl::on_listener_ready(std::uint32_t index)
{
  auto& listener = m_listeners[index];
  if (listener.protocol == Protocol::tcp) {
    auto turn = std::uint32_t(m_loop.turns());
    int burst = listener.last_turn + 1 == turn ? k_accept_burst : 1;
    listener.last_turn = turn;
    for (int i = 0; i < burst && accept_connection(listener); ++i) {
    }
  } else if (listener.protocol == Protocol::udp) {
    answer_datagrams(listener);
  } else {
    answer_ipip(listener);
  }
}

bool
Responder::Impl::accept_connection(const Listener& listener)
{
  // At the cap, the oldest connection is answered (if its line is in) and
  // closed: idle clients cannot hold the slots.
  if (m_connections.size() >= k_max_connections) make_room();
  Fd socket;
  sockaddr_storage from{};
  while (!socket) {
    socklen_t length = sizeof(from);
    socket = Fd(::accept4(listener.fd.get(), reinterpret_cast<sockaddr*>(&from), &length, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (socket) break;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    // Out of fds: make room by dropping the oldest connection, if any.
    if ((errno == EMFILE || errno == ENFILE) && !m_connections.empty()) {
      make_room();
      continue;
    }
    return false; // EAGAIN, or nothing we can do this turn
  }
  auto id = m_next_connection++;
  int fd = socket.get();
  auto& connection = m_connections[id];
  connection.fd = std::move(socket);
  connection.port = listener.port;
  connection.peer = bytes_of(from);
  // Usually the probe line is in already (TCP_DEFER_ACCEPT): answered and
  // closed here, the connection never needs epoll or a timer.
  if (!on_connection_ready(id)) return true;
  if (!m_loop.add(fd, EPOLLIN, [this, id](std::uint32_t) { on_connection_ready(id); })) {
    close_connection(id);
    return true;
  }
  connection.timer = m_loop.after(k_line_timeout, [this, id] { close_connection(id); });
  return true;
}

void
Responder::Impl::answer_datagrams(const Listener& listener)
{
  // One recvmmsg() takes what is queued (usually one datagram) without the
  // extra call that would only say EAGAIN; the answers go in one sendmmsg().
  struct Datagram
  {
    char buffer[k_max_identity_line + 1];
    sockaddr_storage from;
    iovec vector;
  };
  std::array<Datagram, k_datagrams> in{};
  std::array<mmsghdr, k_datagrams> headers{};
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i].vector = {in[i].buffer, sizeof(in[i].buffer)};
    headers[i].msg_hdr.msg_name = &in[i].from;
    headers[i].msg_hdr.msg_namelen = sizeof(in[i].from);
    headers[i].msg_hdr.msg_iov = &in[i].vector;
    headers[i].msg_hdr.msg_iovlen = 1;
  }
  int count = ::recvmmsg(listener.fd.get(), headers.data(), unsigned(headers.size()), MSG_DONTWAIT, nullptr);
  // Nothing (EAGAIN), or a transient error (ENOMEM, a queued ICMP error): the
  // loop calls again while the socket is readable.
  if (count <= 0) return;
  std::array<std::string, k_datagrams> replies;
  std::array<iovec, k_datagrams> reply_vectors{};
  std::array<mmsghdr, k_datagrams> out{};
  unsigned answers = 0;
  for (int i = 0; i < count; ++i) {
    const auto& header = headers[std::size_t(i)].msg_hdr;
    auto length = headers[std::size_t(i)].msg_len;
    // A truncated datagram may be a full-size probe: its first bytes say.
    auto answer = answer_probe_datagram(m_token, std::string_view(in[std::size_t(i)].buffer, length), m_node,
                                        listener.port);
    if (!answer) continue;
    auto& reply = replies[answers] = std::move(*answer);
    reply_vectors[answers] = {reply.data(), reply.size()};
    auto& message = out[answers].msg_hdr;
    message.msg_name = header.msg_name;
    message.msg_namelen = header.msg_namelen;
    message.msg_iov = &reply_vectors[answers];
    message.msg_iovlen = 1;
    ++answers;
  }
  for (unsigned sent = 0; sent < answers;) {
    int done = ::sendmmsg(listener.fd.get(), out.data() + sent, answers - sent, k_send_flags);
    if (done <= 0) {
      ++sent; // that answer is lost (the prober asks again); the rest still go
      continue;
    }
    for (unsigned i = sent; i < sent + unsigned(done); ++i) {
      if (out[i].msg_len != reply_vectors[i].iov_len) continue;
      ++m_answered;
      m_answered_to.record(Protocol::udp, bytes_of(*static_cast<const sockaddr_storage*>(out[i].msg_hdr.msg_name)),
                           listener.port);
    }
    sent += unsigned(done);
  }
}

// IP-in-IP probes that arrived: each gets the identity reply, encapsulated
// as the probe was, back to the node that sent it.
void
Responder::Impl::answer_ipip(const Listener& listener)
{
  Ipv4Bytes own{};
  std::memcpy(own.data(), &reinterpret_cast<const sockaddr_in*>(m_address->get())->sin_addr, 4);
  std::uint8_t buffer[k_max_ipip_packet];
  for (int i = 0; i < k_datagrams; ++i) {
    sockaddr_storage from{};
    socklen_t length = sizeof(from);
    auto count = ::recvfrom(listener.fd.get(), buffer, sizeof(buffer), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                            &length);
    if (count < 0) return; // EAGAIN, or a transient error: the loop calls again while it is readable
    auto packet = parse_ipip_packet(std::span<const std::uint8_t>(buffer, std::size_t(count)));
    auto nonce = packet ? parse_probe_payload(packet->payload) : std::nullopt;
    if (!nonce) continue;
    auto reply = make_ipip_packet(own, make_identity_reply(m_token, *nonce, m_node, Protocol::ipip, 0));
    if (reply.size() > std::size_t(count)) continue; // never more than the probe (no amplification)
    auto sent = ::sendto(listener.fd.get(), reply.data(), reply.size(), k_send_flags,
                         reinterpret_cast<const sockaddr*>(&from), length);
    if (sent != ssize_t(reply.size())) continue; // lost (our output rules?); the prober asks again
    ++m_answered;
    m_answered_to.record(Protocol::ipip, bytes_of(from), 0);
  }
}

// Reads what the connection sent: answers and closes it once its line is in
// (or hands a TLS client to the health server). True while it waits for more.
bool
Responder::Impl::on_connection_ready(std::uint64_t id)
{
  auto it = m_connections.find(id);
  if (it == m_connections.end()) return false;
  auto& connection = it->second;
  if (m_tls && connection.received.empty() && m_tls_ports.test(connection.port)) {
    unsigned char first = 0;
    auto peeked = ::recv(connection.fd.get(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
    if (peeked == 1 && TlsHealthServer::looks_like_tls(first)) {
      Fd fd(connection.fd.release());
      linger graceful{0, 0}; // a TLS session ends with close_notify and a FIN, not a reset
      ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &graceful, sizeof(graceful));
      m_loop.remove(fd.get());
      m_loop.cancel(connection.timer);
      m_connections.erase(it);
      m_tls->adopt(std::move(fd));
      return false;
    }
  }
  char buffer[k_max_identity_line];
  while (true) {
    auto room = k_max_identity_line - connection.received.size();
    if (room == 0) break; // a full buffer without a newline: not a probe
    auto length = ::recv(connection.fd.get(), buffer, room, MSG_DONTWAIT);
    if (length < 0 && errno == EINTR) continue;
    if (length < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true; // wait for more
    if (length <= 0) {
      // End of stream: the prober may have sent its line without "\n".
      if (length == 0) answer_line(connection, connection.received);
      break;
    }
    connection.received.append(buffer, std::size_t(length));
    auto newline = connection.received.find('\n');
    if (newline != std::string::npos) {
      answer_line(connection, std::string_view(connection.received).substr(0, newline + 1));
      break;
    }
  }
  close_connection(id);
  return false;
}

void
Responder::Impl::answer_line(Connection& connection, std::string_view line)
{
  auto nonce = parse_probe_payload(line);
  if (!nonce) return;
  // On record even when the send fails: a prober that gave up has reset the
  // connection, but its line, read here, proves it reached us.
  m_answered_to.record(Protocol::tcp, connection.peer, connection.port);
  auto reply = make_identity_reply(m_token, *nonce, m_node, Protocol::tcp, connection.port);
  // A fresh connection's send buffer is empty and its window open: send()
  // puts the short reply on the wire at once, before close() resets the
  // connection (the listener's SO_LINGER 0).
  if (::send(connection.fd.get(), reply.data(), reply.size(), k_send_flags) == ssize_t(reply.size())) ++m_answered;
}

// Frees one connection slot: the oldest connection is answered now if its
// probe line has arrived (under a burst it usually has, unread), then closed.
void
Responder::Impl::make_room()
{
  auto oldest = m_connections.begin()->first;
  on_connection_ready(oldest);
  close_connection(oldest);
}

void
Responder::Impl::close_connection(std::uint64_t id)
{
  auto it = m_connections.find(id);
  if (it == m_connections.end()) return;
  m_loop.forget(it->second.fd.get());
  if (it->second.timer != 0) m_loop.cancel(it->second.timer);
  m_connections.erase(it); // closes the fd
}

Responder::Responder(EventLoop& loop, const Token& token, std::string node, std::string address)
  : m_impl(std::make_unique<Impl>(loop, token, std::move(node), std::move(address)))
{
}

Responder::~Responder() = default;

void
Responder::bind(const std::vector<ListenSpec>& specs)
{
  m_impl->bind(specs);
}

void
Responder::serve_tls(TlsHealthServer& server, std::uint16_t port)
{
  m_impl->m_tls = &server;
  m_impl->m_tls_ports.set(port);
}

const std::vector<PortOwner>&
Responder::owners() const
{
  return m_impl->m_owners;
}

bool
Responder::listening(Protocol protocol, std::uint16_t port) const
{
  if (protocol != Protocol::tcp && protocol != Protocol::udp && protocol != Protocol::ipip) return false;
  return m_impl->ports(protocol).test(port);
}


std::size_t
Responder::listener_count() const
{
  return m_impl->m_listeners.size();
}

std::uint64_t
Responder::answered() const
{
  return m_impl->m_answered;
}

std::uint32_t
Responder::answered_to(Protocol protocol, const std::string& peer, std::uint16_t port, std::uint64_t since) const
{
  auto bytes = m_impl->m_address ? peer_bytes(m_impl->m_address->family(), peer) : std::nullopt;
  return bytes ? m_impl->m_answered_to.seen(protocol, *bytes, port, since) : 0;
}

std::uint64_t
Responder::answered_mark() const
{
  return m_impl->m_answered_to.mark();
}

void
Responder::forget_answered_through(std::uint64_t mark)
{
  if (m_impl->m_answered_to.size() > 0) m_impl->m_answered_to.forget_through(mark);
}

std::optional<std::pair<int, std::string>>
find_port_owner(Protocol protocol, std::uint16_t port)
{
  auto owner = find_port_owners({{protocol, port}}).front();
  if (!owner) return std::nullopt;
  return std::pair{owner->pid, std::move(owner->name)};
}

} // namespace portmatrix
