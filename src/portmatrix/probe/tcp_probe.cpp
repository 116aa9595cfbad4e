// The TCP probe, a member of Prober::Impl (see prober.cpp for the round).
//
// TCP: connect; the EPOLLOUT result (SO_ERROR) is classified; on success the
// probe payload is sent and one identity line is read (until '\n', EOF, or
// the timeout). An agent resets the connection right after its line; any
// other peer's connection is closed with an RST (SO_LINGER 0), so no
// TIME_WAIT piles up. TCP_QUICKACK off holds back our ACKs: the handshake's
// rides on the payload and the reply needs none before the reset. TCP
// sockets get IP_RECVERR: a failed connect then leaves the ICMP type and
// code in the error queue, which tells an administratively prohibited
// reject from an unreachable host.
//
// A socket whose connection was established is not closed when its probe
// is over: it is disconnected (connect(AF_UNSPEC): an RST if the peer has
// not reset it, no TIME_WAIT, its local port given back) and serves the next
// probe of its kind (family, bound source), still on the loop. A socket
// whose connect failed is closed: its error queue may hold an ICMP error.
//
// Syscalls are what a check costs (most of its time is in the kernel), so
// the TCP path avoids the avoidable ones: no socket(), IP_RECVERR, epoll_ctl
// or close() for a reused socket, no bind() when the route already picks the
// source address, no self-connect test for a remote destination, one
// edge-triggered epoll registration for a socket's connects and replies, no
// EPOLL_CTL_DEL before close().
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "probe/probe_socket.hpp"
#include "probe/prober_impl.hpp"

namespace portmatrix {

Launch
Prober::Impl::launch(const Job& job)
{
  auto protocol = m_outcomes[job.target].target.protocol;
  auto peer = *m_addresses[job.target];
  peer.set_port(m_outcomes[job.target].ports[job.port_index].port);
  if (protocol == Protocol::udp) return launch_udp(job, peer);
  if (protocol == Protocol::ipip) return launch_raw(job, peer);

  auto source = m_bind_source[job.target] ? m_source : std::nullopt;
  auto kind = tcp_socket_kind(peer.family(), source.has_value());
  Fd fd = take_idle_tcp_socket(kind);
  if (fd) {
    delay_acks(fd.get()); // a disconnect forgot the mode
  } else {
    auto open_socket = [&] { return Fd(::socket(peer.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)); };
    fd = open_socket();
    // Out of fds while sockets of another kind wait idle: one of them makes room.
    if (!fd && is_out_of_resources(errno) && close_an_idle_tcp_socket()) fd = open_socket();
    if (!fd) return defer_or_settle(job, errno);
    if (int error = prepare_socket(fd.get(), peer.family(), protocol, source); error != 0) {
      return settle_now(job, found(ProbeState::error, error)); // e.g. a source address that is not local
    }
    tcp_socket(fd.get()).kind = kind;
  }
  if (::connect(fd.get(), peer.get(), peer.length()) != 0 && errno != EINPROGRESS) {
    int error = errno;
    auto finding = error == EADDRNOTAVAIL || error == EAGAIN ? std::optional<Finding>{}
                                                             : classify_failure(fd.get(), error);
    close_tcp_socket(fd);
    if (!finding) return defer_or_settle(job, error); // no local port left
    return settle_now(job, *finding);
  }
  auto nonce = random_hex(k_nonce_bytes);
  auto payload = make_probe_payload(nonce);
  return watch(job, std::move(fd), peer, std::move(nonce), std::move(payload));
}

void
Prober::Impl::on_event(std::uint32_t slot, std::uint32_t generation, std::uint32_t events)
{
  if (!live(slot, generation)) return;
  auto& probe = m_probes[slot];
  std::optional<Finding> finding;
  try {
    finding = on_tcp_event(probe, events);
  } catch (...) {
    finding = found(ProbeState::error, current_exception_errno());
  }
  if (finding) finish(slot, std::move(*finding));
}

std::optional<Finding>
Prober::Impl::on_tcp_event(Probe& probe, std::uint32_t events)
{
  return probe.phase == Phase::connecting ? on_connect_result(probe, events) : read_identity_line(probe, events);
}

std::optional<Finding>
Prober::Impl::on_connect_result(Probe& probe, std::uint32_t events)
{
  int fd = probe.fd.get();
  // Writable without an error or hang-up: connected, no need to ask.
  bool clean = (events & EPOLLOUT) && !(events & (EPOLLERR | EPOLLHUP));
  int error = clean ? 0 : pending_socket_error(fd);
  // A reused socket may get, in the batch that reused it, the event its
  // disconnect raised (EPOLLHUP, no error: connect() cleared it). Only the
  // socket's own state then tells a connection from a stale event.
  if (!clean && error == 0 && tcp_state(fd) == TCP_SYN_SENT) return std::nullopt;
  // Connected, then reset before we looked: something accepted the connection.
  if (error == ECONNRESET || error == EPIPE) return open_with(probe, {});
  if (error != 0) return classify_failure(fd, error);
  if (m_may_self_connect[probe.job.target] && is_self_connect(fd, probe.peer)) {
    reset_on_close(fd); // no TIME_WAIT for a connection to itself either
    return found(ProbeState::refused, ECONNREFUSED);
  }
  if (!m_outcomes[probe.job.target].target.identity) { // no agent to send a line: the connection is the answer
    reset_on_close(fd);
    return open_with(probe, {});
  }
  probe.phase = Phase::reading;
  // The handshake's round trip as the kernel timed it (SYN to SYN-ACK, in
  // softirq): not how late this loop noticed, which a busy round inflates.
  // Asked only while its target keeps more (k_max_rtt_samples): a NodePort
  // range would otherwise pay a system call per port for 64 samples.
  if (m_outcomes[probe.job.target].rtts.size() < k_max_rtt_samples) {
    tcp_info info{};
    socklen_t length = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) == 0 && info.tcpi_rtt > 0) {
      probe.handshake = std::chrono::microseconds(info.tcpi_rtt);
    }
  }
  // The port is proven reachable; the identity line gets its own, fixed wait,
  // so a destination agent that is busy is not mistaken for another responder.
  m_identity_deadlines.push(Clock::now() + m_options.identity_timeout, std::uint32_t(&probe - m_probes.data()),
                            probe.generation);
  // A failed send needs no handling here: the read that follows sees the reset.
  ::send(fd, probe.payload.data(), probe.payload.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  delay_acks(fd);
  return std::nullopt; // the line's arrival is the next edge (EPOLLIN)
}

// Reads until a whole line, EOF, a reset, or k_max_identity_line bytes.
std::optional<Finding>
Prober::Impl::read_identity_line(Probe& probe, std::uint32_t events)
{
  // An agent resets the connection right after its line (no FIN, no
  // TIME_WAIT on either side); what it sent before stays readable.
  probe.peer_reset = events & (EPOLLHUP | EPOLLERR);
  char buffer[k_max_identity_line];
  auto room = k_max_identity_line - probe.received.size();
  auto count = ::recv(probe.fd.get(), buffer, room, MSG_DONTWAIT);
  if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return std::nullopt;
  if (count <= 0) return open_with(probe, probe.received); // EOF or reset: what came is all there is
  probe.received.append(buffer, std::size_t(count));
  auto newline = probe.received.find('\n');
  if (newline != std::string::npos) return open_with(probe, std::string_view(probe.received).substr(0, newline + 1));
  if (probe.received.size() >= k_max_identity_line) return open_with(probe, probe.received);
  return std::nullopt;
}

Finding
Prober::Impl::open_with(const Probe& probe, std::string_view reply) const
{
  Finding finding = found(ProbeState::open);
  if (!reply.empty()) finding.responder = parse_identity_reply(m_token, reply, probe.nonce, probe.protocol);
  return finding;
}

void
Prober::Impl::on_identity_deadline(std::uint32_t slot, std::uint32_t generation)
{
  if (!live(slot, generation) || m_probes[slot].phase != Phase::reading) return;
  auto& probe = m_probes[slot];
  // A busy loop takes at most one batch of readiness events per turn and runs
  // the due deadlines after it, so the line may be waiting in the socket while
  // its event is still in the kernel's queue: read before giving up on it.
  if (auto finding = read_identity_line(probe, 0)) return finish(slot, std::move(*finding));
  // Connected but no whole line in time: something is there, not our agent;
  // or, behind a VIP, a backend that does not answer.
  finish(slot, backend_silent(probe) ? silent_finding() : open_with(probe, {}));
}

// One of a VIP's connections, connected and still without a word at its
// timeout, while another connection to the same port has been answered by
// an agent: the backend it went to does not answer. (A busy machine is slow
// on every connection, and then none was answered yet.)
bool
Prober::Impl::backend_silent(const Probe& probe) const
{
  return repeat_of(probe.job.target) > 1 && !m_outcomes[probe.job.target].ports[probe.job.port_index].responders.empty();
}

Finding
Prober::Impl::silent_finding()
{
  Finding finding = found(ProbeState::open);
  finding.silent = true;
  return finding;
}

// A probe's socket: watched once, reused while its connections are established.

TcpSocket&
Prober::Impl::tcp_socket(int fd)
{
  auto index = std::size_t(fd);
  if (index >= m_tcp_sockets.size()) m_tcp_sockets.resize(std::max(index + 1, 2 * m_tcp_sockets.size()));
  return m_tcp_sockets[index];
}

Fd
Prober::Impl::take_idle_tcp_socket(std::uint8_t kind)
{
  auto& idle = m_idle_tcp[kind];
  if (idle.empty()) return Fd{};
  Fd fd = std::move(idle.back());
  idle.pop_back();
  return fd;
}

// The socket's events go to whichever probe it serves now: one registration
// (edge-triggered: connect and identity line) for the socket's whole life.
bool
Prober::Impl::watch_tcp_socket(int fd, std::uint32_t slot, std::uint32_t generation)
{
  auto& socket = tcp_socket(fd);
  if (!socket.watched) {
    auto on_ready = [this, fd](std::uint32_t events) {
      const auto& owner = m_tcp_sockets[std::size_t(fd)];
      on_event(owner.slot, owner.generation, events);
    };
    if (!m_loop.add(fd, EPOLLOUT | EPOLLIN | EPOLLET, std::move(on_ready), EventLoop::Priority::bulk)) return false;
    socket.watched = true;
  }
  socket.slot = slot;
  socket.generation = generation;
  return true;
}

// A probe's socket once its probe is over: one whose connection was
// established (it reached the identity line) is disconnected and kept for
// the next probe; any other is closed, an RST for a connection still up.
void
Prober::Impl::keep_or_close_tcp_socket(Probe& probe)
{
  int fd = probe.fd.get();
  if (probe.phase == Phase::reading && disconnect(fd)) {
    auto& socket = m_tcp_sockets[std::size_t(fd)];
    socket.slot = TcpSocket::k_no_slot;
    m_idle_tcp[socket.kind].push_back(std::move(probe.fd));
    return;
  }
  if (probe.phase == Phase::reading && !probe.peer_reset) reset_on_close(fd);
  close_tcp_socket(probe.fd);
}

void
Prober::Impl::close_tcp_socket(Fd& fd)
{
  if (!fd) return;
  if (auto& socket = tcp_socket(fd.get()); socket.watched) {
    m_loop.forget(fd.get()); // closing it takes it out of epoll
    socket = TcpSocket{};
  }
  fd.reset();
}

bool
Prober::Impl::close_an_idle_tcp_socket()
{
  for (auto& idle : m_idle_tcp) {
    if (idle.empty()) continue;
    close_tcp_socket(idle.back());
    idle.pop_back();
    return true;
  }
  return false;
}

void
Prober::Impl::close_idle_tcp_sockets()
{
  for (auto& idle : m_idle_tcp) {
    for (auto& fd : idle) close_tcp_socket(fd);
    idle.clear();
  }
}

} // namespace portmatrix
