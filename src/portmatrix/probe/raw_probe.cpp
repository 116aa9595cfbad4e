// The IP-in-IP probe (IP protocol 4), a member of Prober::Impl (see
// prober.cpp for the round).
//
// A protocol without ports has no listener to connect to, so the proof is
// the same exchange as UDP's, carried by the protocol itself: one raw
// IPPROTO_IPIP socket (IPv4; it needs CAP_NET_RAW, which the agent keeps)
// sends each probe as an encapsulated packet (probe/raw_packet.hpp: an inner
// IPv4 header to 127.0.0.1, protocol 253, and the probe payload), again
// every `udp_resend`; the destination agent's own raw socket sees it and
// sends its identity back the same way. A probe is keyed like a UDP one, by
// the destination's address with port 0 (no UDP probe goes to port 0), so
// the UDP probe's bookkeeping serves it: one probe in flight per address,
// the answer matched by where it came from (answer_udp).
//
// The socket's filter (ipip_socket_filter) keeps only probe-shaped packets;
// of those, probes that other nodes send to this one are not answers and
// are skipped, and so are answers that do not authenticate (each raw socket
// sees every answer that reaches the host, a concurrent check's too). ICMP errors come through IP_RECVERR: protocol unreachable
// means nothing on the destination takes IP protocol 4 (no agent's raw
// socket, no tunnel module): refused. Port unreachable is what the kernel's
// tunnel module answers when no tunnel matches, while our agent's raw socket
// still got the packet: it is no answer, the agent's is.
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <cerrno>

#include "probe/probe_socket.hpp"
#include "probe/prober_impl.hpp"
#include "probe/raw_packet.hpp"

namespace portmatrix {

namespace {

// Packets read per readiness event (the loop is level triggered).
constexpr int k_raw_batch = 64;

} // namespace

Launch
Prober::Impl::launch_raw(const Job& job, const SocketAddress& peer)
{
  Ipv4Bytes inner_source{};
  auto source = m_source ? std::optional(m_source->host()) : route_source(peer);
  if (source) ::inet_pton(AF_INET, source->c_str(), inner_source.data());
  return launch_datagram(job, peer, raw_channel(), [&inner_source](std::string_view nonce) {
    return make_ipip_packet(inner_source, make_probe_payload(nonce));
  });
}

// The raw socket, opened on first use. Without CAP_NET_RAW its error
// (EPERM) settles every IP-in-IP probe: check reports those flows as not
// proven, never as passed.
UdpChannel&
Prober::Impl::raw_channel()
{
  if (m_raw.fd || m_raw.error != 0) return m_raw;
  Fd fd(::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_IPIP));
  int error = fd ? prepare_socket(fd.get(), AF_INET, Protocol::ipip, m_source) : errno;
  if (error == 0) {
    auto code = ipip_socket_filter();
    sock_fprog program{std::uint16_t(code.size()), code.data()};
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0) error = errno;
  }
  if (error == 0 && !m_loop.add(fd.get(), EPOLLIN, [this](std::uint32_t) { drain_raw(); })) error = errno;
  if (error != 0) {
    m_raw.error = error;
    return m_raw;
  }
  m_raw.fd = std::move(fd);
  return m_raw;
}

void
Prober::Impl::drain_raw()
{
  int fd = m_raw.fd.get();
  drain_raw_errors();
  std::uint8_t buffer[k_max_ipip_packet];
  for (int i = 0; i < k_raw_batch && m_raw.fd; ++i) {
    sockaddr_storage from{};
    socklen_t length = sizeof from;
    auto count = ::recvfrom(fd, buffer, sizeof buffer, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &length);
    if (count < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      pending_socket_error(fd); // an ICMP error reported once by the call: its details are queued
      drain_raw_errors();
      continue;
    }
    auto packet = parse_ipip_packet(std::span<const std::uint8_t>(buffer, std::size_t(count)));
    if (!packet || parse_probe_payload(packet->payload)) continue; // not an answer: another node's probe of us
    reinterpret_cast<sockaddr_in&>(from).sin_port = 0;
    if (!answers_ours(reinterpret_cast<const sockaddr*>(&from), packet->payload)) continue;
    answer_udp(reinterpret_cast<const sockaddr*>(&from), packet->payload);
  }
}

// Every raw IP-in-IP socket on the host gets every answer: another prober's
// (a second check's, running at once) is not ours to judge, nor is anything
// our token does not sign. Ours answers the nonce of the probe in flight to
// `from`, or of one before it (a late answer).
bool
Prober::Impl::answers_ours(const sockaddr* from, std::string_view reply) const
{
  auto key = udp_key(from);
  auto it = key ? m_udp_in_flight.find(*key) : m_udp_in_flight.end();
  if (it == m_udp_in_flight.end()) return false;
  auto identity = parse_identity_reply(m_token, reply, m_probes[it->second].nonce, Protocol::ipip);
  return (identity && identity->authentic) || late_answer_to(*key, reply, Protocol::ipip);
}

void
Prober::Impl::drain_raw_errors()
{
  for (int i = 0; i < 1024 && m_raw.fd; ++i) {
    sockaddr_storage destination{};
    auto queued = read_queued_error(m_raw.fd.get(), &destination);
    if (!queued) return;
    bool icmp_unreachable = queued->ee_origin == SO_EE_ORIGIN_ICMP && queued->ee_type == ICMP_DEST_UNREACH;
    if (icmp_unreachable && queued->ee_code == ICMP_PORT_UNREACH) continue; // the tunnel module's, see above
    reinterpret_cast<sockaddr_in&>(destination).sin_port = 0;
    auto key = udp_key(reinterpret_cast<const sockaddr*>(&destination));
    auto it = key ? m_udp_in_flight.find(*key) : m_udp_in_flight.end();
    if (it == m_udp_in_flight.end()) continue;
    auto finding = icmp_unreachable && queued->ee_code == ICMP_PROT_UNREACH
                     ? found(ProbeState::refused, int(queued->ee_errno))
                     : classify_queued_error(*queued);
    finish(it->second, std::move(finding));
  }
}

void
Prober::Impl::close_raw_channel()
{
  if (m_raw.fd) m_loop.remove(m_raw.fd.get());
  m_raw.fd.reset();
  m_raw.error = 0;
}

} // namespace portmatrix
