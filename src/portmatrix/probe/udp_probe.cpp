// The UDP probe, a member of Prober::Impl (see prober.cpp for the round).
//
// UDP: one unconnected socket per address family (IP_RECVERR, a large
// receive buffer) carries every UDP probe: a probe is a sendto() (again every
// `udp_resend`) and is matched, by destination address and port, with the
// answer that comes back from there or the ICMP error whose quoted datagram
// went there (the error queue names it). Per probe that is one system call
// instead of a socket's ten. Two probes to the same address and port are
// never in flight at once: the second waits for the first.
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "agent/encapsulation.hpp"
#include "probe/probe_socket.hpp"
#include "probe/prober_impl.hpp"

namespace portmatrix {

namespace {

// Datagrams read per recvmmsg() call on the shared UDP socket.
constexpr std::size_t k_udp_batch = 64;

// The shared socket's receive buffer: a burst of answers to thousands of probes fits.
constexpr int k_udp_receive_buffer = 8 << 20;

} // namespace

Launch
Prober::Impl::launch_udp(const Job& job, const SocketAddress& peer)
{
  // The plain probe, or the same in an overlay's shape (agent/encapsulation.hpp);
  // a full-size one is `size` bytes of IP packet, less the IP and UDP headers.
  const auto& target = m_outcomes[job.target].target;
  Shape shape{target.encapsulation, target.vni};
  std::size_t header = peer.family() == AF_INET6 ? 48 : 28;
  std::size_t size = target.size > header ? target.size - header : 0;
  return launch_datagram(job, peer, udp_channel(peer.family()), [shape, size](std::string_view nonce) {
    return shape_probe(shape, make_probe_payload(nonce), size);
  });
}

// A probe that is one datagram on a shared socket (UDP's, or the raw
// IP-in-IP socket with `payload_of` encapsulating), sent again every
// udp_resend until answered.
Launch
Prober::Impl::launch_datagram(const Job& job, const SocketAddress& peer, UdpChannel& channel,
                              const std::function<std::string(std::string_view nonce)>& payload_of)
{
  if (!channel.fd) return settle_now(job, found(ProbeState::error, channel.error));
  auto key = *udp_key(peer.get());
  if (m_udp_in_flight.contains(key)) {
    m_udp_waiting[key].push_back(job);
    return Launch::waiting;
  }
  auto nonce = random_hex(k_nonce_bytes);
  auto payload = payload_of(nonce);
  int fd = channel.fd.get();
  auto send = [&] { return ::sendto(fd, payload.data(), payload.size(), MSG_DONTWAIT, peer.get(), peer.length()); };
  if (send() < 0 && !is_transient_send_error(errno)) {
    // An ICMP error about an earlier probe to anywhere is also reported once
    // by the next call on the socket, which clears it (its details wait in
    // the error queue): try again before blaming this probe.
    int error = errno;
    if (error != EPERM && error != EACCES) error = send() < 0 ? errno : 0;
    if (error != 0 && !is_transient_send_error(error)) return settle_now(job, classify_errno(error));
  }
  return watch(job, Fd{}, peer, std::move(nonce), std::move(payload));
}

// The shared UDP socket of `family`, opened on first use.
UdpChannel&
Prober::Impl::udp_channel(int family)
{
  auto& channel = m_udp[family == AF_INET6 ? 1 : 0];
  if (channel.fd || channel.error != 0) return channel;
  Fd fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int error = fd ? prepare_socket(fd.get(), family, Protocol::udp, m_source) : errno;
  if (error == 0) {
    // DF on every datagram, never fragmented here: a full-size probe passes
    // whole or not at all, as the overlay's packets do (EMSGSIZE when the
    // route is known to be narrower).
    int dont_fragment = family == AF_INET6 ? IPV6_PMTUDISC_DO : IP_PMTUDISC_DO;
    ::setsockopt(fd.get(), family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
                 family == AF_INET6 ? IPV6_MTU_DISCOVER : IP_MTU_DISCOVER, &dont_fragment, sizeof dont_fragment);
    int size = k_udp_receive_buffer;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
      ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    if (!m_loop.add(fd.get(), EPOLLIN, [this, &channel](std::uint32_t) { drain_udp(channel); })) error = errno;
  }
  if (error != 0) {
    channel.error = error;
    return channel;
  }
  if (m_udp_messages.empty()) {
    m_udp_messages.resize(k_udp_batch);
    m_udp_vectors.resize(k_udp_batch);
    m_udp_from.resize(k_udp_batch);
    m_udp_buffers.resize(k_udp_batch);
  }
  channel.fd = std::move(fd);
  return channel;
}

// Settles the probes that the queued ICMP errors and the arrived answers on
// the shared socket are about. A bounded amount per call: the loop calls
// again while the socket stays readable.
void
Prober::Impl::drain_udp(UdpChannel& channel)
{
  m_udp_drained_at = Clock::now();
  int fd = channel.fd.get();
  drain_udp_errors(fd);
  for (int round = 0; round < 16 && channel.fd; ++round) {
    for (std::size_t i = 0; i < k_udp_batch; ++i) {
      m_udp_vectors[i] = iovec{m_udp_buffers[i].data(), m_udp_buffers[i].size()};
      m_udp_messages[i] = mmsghdr{};
      m_udp_messages[i].msg_hdr.msg_name = &m_udp_from[i];
      m_udp_messages[i].msg_hdr.msg_namelen = sizeof m_udp_from[i];
      m_udp_messages[i].msg_hdr.msg_iov = &m_udp_vectors[i];
      m_udp_messages[i].msg_hdr.msg_iovlen = 1;
    }
    int count = ::recvmmsg(fd, m_udp_messages.data(), unsigned(k_udp_batch), MSG_DONTWAIT, nullptr);
    if (count < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // An ICMP error reported once by the call: its details are queued.
      pending_socket_error(fd);
      drain_udp_errors(fd);
      continue;
    }
    for (int i = 0; i < count; ++i) {
      const auto& header = m_udp_messages[std::size_t(i)].msg_hdr;
      if (header.msg_flags & MSG_TRUNC) continue; // longer than any identity line
      auto length = std::min<std::size_t>(m_udp_messages[std::size_t(i)].msg_len, k_max_identity_line);
      answer_udp(reinterpret_cast<const sockaddr*>(&m_udp_from[std::size_t(i)]),
                 std::string_view(m_udp_buffers[std::size_t(i)].data(), length));
    }
    if (std::size_t(count) < k_udp_batch) return;
  }
}

void
Prober::Impl::drain_udp_errors(int fd)
{
  for (int i = 0; i < 1024; ++i) {
    sockaddr_storage destination{};
    auto queued = read_queued_error(fd, &destination);
    if (!queued) return;
    auto key = udp_key(reinterpret_cast<const sockaddr*>(&destination));
    auto it = key ? m_udp_in_flight.find(*key) : m_udp_in_flight.end();
    if (it != m_udp_in_flight.end()) finish(it->second, classify_queued_error(*queued));
  }
}

// An answer from `from`: the probe in flight to that address and port has
// its reply (authentic or not); anything else is late or stray.
void
Prober::Impl::answer_udp(const sockaddr* from, std::string_view reply)
{
  auto key = udp_key(from);
  auto it = key ? m_udp_in_flight.find(*key) : m_udp_in_flight.end();
  if (it == m_udp_in_flight.end()) return;
  auto slot = it->second;
  // A shaped probe is answered in its shape, a plain one plainly: an answer
  // in the other shape is the late answer to the other probe of this port.
  const auto shape = m_outcomes[m_probes[slot].job.target].target.encapsulation;
  auto seen = unwrap(reply);
  if (shape != Encapsulation::none) {
    auto line = reply_line(reply, shape);
    if (!line) return;
    reply = *line;
  } else if (seen && seen->shape.kind != Encapsulation::none) {
    return;
  }
  auto finding = open_with(m_probes[slot], reply);
  if (!finding.responder || !finding.responder->authentic) {
    if (const auto* late = late_answer_to(*key, reply, m_probes[slot].protocol)) {
      // The late answer to another target's probe of this port (an overlay's
      // plain, shaped or full-size one) is no answer to this one; to an
      // earlier try of this target, it is.
      if (late->target != m_probes[slot].job.target) return;
      finding.responder = parse_identity_reply(m_token, reply, late->text(), m_probes[slot].protocol);
    }
  }
  // A shaped or full-size probe is proven by an answer to its target only:
  // any other answer in its shape is a late one to another probe of the port.
  const auto& target = m_outcomes[m_probes[slot].job.target].target;
  bool overlay = target.encapsulation != Encapsulation::none || target.size > 0;
  if (overlay && (!finding.responder || !finding.responder->authentic)) return;
  finish(slot, std::move(finding));
}

// The earlier probe to `key` this round whose nonce signs `reply`, newest
// first, or null: a reply that none signs is not a late answer of ours.
const EarlierNonce*
Prober::Impl::late_answer_to(const UdpKey& key, std::string_view reply, Protocol protocol) const
{
  auto earlier = m_udp_earlier_nonces.find(key);
  if (earlier == m_udp_earlier_nonces.end()) return nullptr;
  for (auto it = earlier->second.rbegin(); it != earlier->second.rend(); ++it) {
    auto identity = parse_identity_reply(m_token, reply, it->text(), protocol);
    if (!identity) return nullptr; // not an identity line: no nonce can sign it
    if (identity->authentic) return &*it;
  }
  return nullptr;
}

void
Prober::Impl::remember_nonce(const Probe& probe)
{
  EarlierNonce earlier{{}, probe.job.target};
  if (probe.nonce.size() != earlier.nonce.size()) return;
  std::copy(probe.nonce.begin(), probe.nonce.end(), earlier.nonce.begin());
  auto& nonces = m_udp_earlier_nonces[probe.key];
  if (nonces.size() == k_earlier_nonces) nonces.erase(nonces.begin());
  nonces.push_back(earlier);
}

void
Prober::Impl::close_udp_channels()
{
  for (auto& channel : m_udp) {
    if (channel.fd) m_loop.remove(channel.fd.get());
    channel.fd.reset();
    channel.error = 0;
  }
}

void
Prober::Impl::on_resend(std::uint32_t slot, std::uint32_t generation)
{
  if (!live(slot, generation)) return;
  auto& probe = m_probes[slot];
  // Presumed dropped (on_quiet), or no agent there to answer: resending
  // would only add load (a rate-limited ICMP error changes nothing).
  if (!probe.young) return;
  auto& channel = probe.protocol == Protocol::ipip ? m_raw : m_udp[probe.peer.family() == AF_INET6 ? 1 : 0];
  int fd = channel.fd.get();
  auto sent = ::sendto(fd, probe.payload.data(), probe.payload.size(), MSG_DONTWAIT, probe.peer.get(),
                       probe.peer.length());
  if (sent < 0 && (errno == EPERM || errno == EACCES)) {
    finish(slot, classify_errno(errno));
    return;
  }
  // Another probe's ICMP error, reported (and cleared) by this call: again.
  if (sent < 0 && !is_transient_send_error(errno)) {
    ::sendto(fd, probe.payload.data(), probe.payload.size(), MSG_DONTWAIT, probe.peer.get(), probe.peer.length());
  }
  auto next = Clock::now() + m_options.udp_resend;
  if (next < probe.deadline) m_resends.push(next, slot, generation);
}

} // namespace portmatrix
