// Records which probes reached this node's interface, before the host
// firewall had its say.
//
// IP-in-IP probes (IPv4, protocol 4) count by their inner header (port 0).
//
// One AF_PACKET socket of type SOCK_DGRAM (packets start at the network
// header; the ethertype comes with the source address) watches one interface
// or all of them. The node's own transmissions are left out twice over:
// PACKET_IGNORE_OUTGOING keeps the kernel from queueing them, and anything
// marked PACKET_OUTGOING that still arrives (older kernels) is skipped. On
// loopback a packet is seen once on the way out and once on the way in; with
// the outgoing copy gone, each probe counts exactly once there too.
//
// A classic BPF filter (capture_filter.cpp) keeps, in the kernel, only what
// can be a probe: TCP SYNs without ACK and UDP first fragments addressed to
// the node, and, when set_peers() named them, only from those peers (the
// inventory's nodes and client_cidrs), cut to k_capture_snap_length bytes.
// It is attached before the socket is bound, so no unfiltered packet is ever
// queued: a flood from elsewhere takes no memory and is never lost. Userspace
// still parses every packet in full (parse_arrived_probe).
//
// Counts are kept per (protocol, peer address bytes, destination port) in a
// PeerPortCounts of at most max_keys entries; past it, packets() still counts.
// Each key also keeps the sequence number of its last packet (packets() when
// it was recorded), so a question can be limited to what arrived since a mark().
//
// Inbound, the counts belong to the checks running now: each opens a window
// at its hello (its mark, and when it expires: its deadline and a grace) and
// closes it when it ends. A packet that arrives while no window is open is
// read and dropped; when a window closes or expires, every key whose last
// packet came before the oldest window still open is forgotten (all of them
// when none is), and the map is rebuilt so its memory goes back too. One
// timer, at the earliest expiry, closes windows whose check never said it ended.
//
// What is lost is counted, because a lost packet reads as "not seen": the
// kernel's drops (a full receive buffer while the loop is busy elsewhere),
// read with PACKET_STATISTICS, which resets the kernel's counters on every
// read, so they are added up here; and probes with a new key once the map is
// full. catch_up() and stop() read the socket empty first: a packet still
// queued is neither seen nor lost yet. stop() swaps in a filter that takes
// nothing before that last read, so the read ends even under a flood.
//
// Outbound the same machinery watches the other way: only PACKET_OUTGOING
// copies of TCP SYNs from the node (the filter tests the packet type and the
// source address), and PACKET_IGNORE_OUTGOING stays off.
#include "agent/capture.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "agent/capture_filter.hpp"
#include "agent/peer_port_counts.hpp"
#include "model/inventory.hpp"
#include "probe/raw_packet.hpp"

namespace portmatrix {
namespace {

// Receive buffer for bursts of thousands of probes (needs CAP_NET_ADMIN to
// exceed net.core.rmem_max; silently smaller otherwise).
constexpr int k_receive_buffer = 4 << 20;
// Packets read per readiness event: recvmmsg batches of k_batch, at most
// k_max_batches of them, then the loop serves others (it is level triggered).
constexpr std::size_t k_batch = 32;
constexpr int k_max_batches = 32;
constexpr std::size_t k_buffer_size = 256;
// catch_up() reads at most this many batches: far more than the largest
// receive buffer holds (tens of thousands of packets), so it stops only when
// packets arrive as fast as they are read, and those are newer than the call.
constexpr int k_catch_up_batches = 8192;
std::uint16_t
read_u16(std::span<const std::uint8_t> bytes, std::size_t offset)
{
  return std::uint16_t((bytes[offset] << 8) | bytes[offset + 1]);
}

bool
same_bytes(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b)
{
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

// The probe carried by a transport header (`transport` starts at it), or
// nullopt when it is neither a bare TCP SYN nor UDP.
std::optional<ArrivedProbe>
parse_transport(std::uint8_t protocol, std::span<const std::uint8_t> transport)
{
  if (protocol == k_ip_udp && transport.size() >= 8) {
    return ArrivedProbe{Protocol::udp, {}, read_u16(transport, 2)};
  }
  if (protocol == k_ip_tcp && transport.size() > k_tcp_flags_offset) {
    auto flags = transport[k_tcp_flags_offset];
    if ((flags & (k_tcp_syn | k_tcp_ack)) != k_tcp_syn) return std::nullopt;
    return ArrivedProbe{Protocol::tcp, {}, read_u16(transport, 2)};
  }
  return std::nullopt;
}

// Outbound only TCP SYNs count: a UDP probe the host drops fails its send().
std::optional<ArrivedProbe>
parse_probe_transport(std::uint8_t protocol, std::span<const std::uint8_t> transport, Direction direction)
{
  if (direction == Direction::outbound && protocol != k_ip_tcp) return std::nullopt;
  return parse_transport(protocol, transport);
}

std::optional<ArrivedProbe>
parse_ipv4(std::span<const std::uint8_t> packet, std::span<const std::uint8_t> node, Direction direction)
{
  if (packet.size() < k_ipv4_min_header || (packet[0] >> 4) != 4 || node.size() != 4) return std::nullopt;
  std::size_t header_length = std::size_t(packet[0] & 0x0F) * 4;
  if (header_length < k_ipv4_min_header || packet.size() < header_length) return std::nullopt;
  // Later fragments carry no transport header.
  if ((read_u16(packet, 6) & k_ipv4_fragment_offset_mask) != 0) return std::nullopt;
  auto offsets = address_offsets(true, direction);
  if (!same_bytes(packet.subspan(offsets.node, 4), node)) return std::nullopt;
  std::optional<ArrivedProbe> probe;
  if (packet[9] == k_ip_protocol_ipip) {
    // An IP-in-IP probe, by its inner header; inbound only (port 0).
    if (direction == Direction::inbound && is_ipip_probe_inner(packet.subspan(header_length))) {
      probe = ArrivedProbe{Protocol::ipip, {}, 0};
    }
  } else {
    probe = parse_probe_transport(packet[9], packet.subspan(header_length), direction);
  }
  if (probe) std::memcpy(probe->peer.data(), &packet[offsets.peer], 4);
  return probe;
}

// Extension headers are not followed: a probe never carries any.
std::optional<ArrivedProbe>
parse_ipv6(std::span<const std::uint8_t> packet, std::span<const std::uint8_t> node, Direction direction)
{
  if (packet.size() < k_ipv6_header || (packet[0] >> 4) != 6 || node.size() != 16) return std::nullopt;
  auto offsets = address_offsets(false, direction);
  if (!same_bytes(packet.subspan(offsets.node, 16), node)) return std::nullopt;
  auto probe = parse_probe_transport(packet[6], packet.subspan(k_ipv6_header), direction);
  if (probe) std::memcpy(probe->peer.data(), &packet[offsets.peer], 16);
  return probe;
}

bool
attach_filter(int socket, std::span<const std::uint8_t> node, Direction direction, std::span<const PeerNetwork> peers)
{
  auto code = probe_filter(node, direction, peers);
  sock_fprog program{std::uint16_t(code.size()), code.data()};
  return ::setsockopt(socket, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) == 0;
}

// Replaces the socket's filter with one that takes nothing: what is queued
// stays readable, nothing more is queued.
bool
attach_closed_filter(int socket)
{
  sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  sock_fprog program{1, code};
  return ::setsockopt(socket, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) == 0;
}

} // namespace

std::optional<ArrivedProbe>
parse_arrived_probe(std::span<const std::uint8_t> packet, std::uint16_t ethertype, std::span<const std::uint8_t> node,
                    Direction direction)
{
  if (ethertype == k_ethertype_ipv4) return parse_ipv4(packet, node, direction);
  if (ethertype == k_ethertype_ipv6) return parse_ipv6(packet, node, direction);
  return std::nullopt;
}

// --- Capture ----------------------------------------------------------------------

struct Capture::Impl
{
  Impl(EventLoop& loop, std::string address, Direction direction, std::size_t max_keys)
    : m_loop(loop), m_address(std::move(address)), m_direction(direction), m_counts(max_keys)
  {
    if (inet_pton(AF_INET, m_address.c_str(), m_node.data()) == 1) {
      m_family = AF_INET;
    } else if (inet_pton(AF_INET6, m_address.c_str(), m_node.data()) == 1) {
      m_family = AF_INET6;
    }
  }

  ~Impl()
  {
    if (m_expiry_timer != 0) m_loop.cancel(m_expiry_timer);
    if (m_socket) m_loop.remove(m_socket.get());
  }

  std::span<const std::uint8_t> node() const { return {m_node.data(), m_family == AF_INET ? 4u : 16u}; }

  bool start(const std::string& interface, std::string& error);
  Fd open_socket(const std::string& interface, std::string& error) const;
  // Reads at most `max_batches` batches; true when the queue is empty.
  bool drain(int max_batches = k_max_batches);
  void read_kernel_drops();
  void record(const sockaddr_ll& from, std::span<const std::uint8_t> packet);

  EventLoop& m_loop;
  std::string m_address;
  Direction m_direction;
  int m_family = AF_UNSPEC;
  std::array<std::uint8_t, 16> m_node{};
  Fd m_socket;

  int m_receive_buffer = k_receive_buffer;
  std::vector<PeerNetwork> m_peers; // inbound: the only sources kept (empty: all)

  // The windows open now, oldest first (inbound only). prune() closes the
  // expired ones, forgets what no open window can ask about, and sets the
  // timer at the earliest expiry.
  struct OpenWindow
  {
    Window window;
    std::chrono::steady_clock::time_point expiry;
  };
  std::vector<OpenWindow> m_windows;
  std::uint64_t m_next_window = 1;
  std::uint64_t m_expiry_timer = 0;
  void prune();

  PeerPortCounts m_counts;          // packets() is its mark(); what it could not record is lost
  std::uint64_t m_kernel_drops = 0; // tp_drops, added up over every read

  // recvmmsg scratch space, reused by every drain().
  std::array<std::array<std::uint8_t, k_buffer_size>, k_batch> m_buffers{};
  std::array<sockaddr_ll, k_batch> m_from{};
  std::array<iovec, k_batch> m_vectors{};
  std::array<mmsghdr, k_batch> m_messages{};
};

Fd
Capture::Impl::open_socket(const std::string& interface, std::string& error) const
{
  // Protocol 0: nothing is queued until bind() below, after the filter is on.
  Fd socket(::socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!socket) {
    error = errno == EPERM || errno == EACCES
              ? "AF_PACKET needs CAP_NET_RAW; diagnosis degrades to filtered"
              : fmt::format("AF_PACKET socket: {}", std::strerror(errno));
    return {};
  }
  int ifindex = 0;
  if (!interface.empty()) {
    ifindex = int(if_nametoindex(interface.c_str()));
    if (ifindex == 0) {
      error = fmt::format("interface {}: {}", interface, std::strerror(errno));
      return {};
    }
  }
  // Both optional: without the filter userspace sees more, without
  // IGNORE_OUTGOING it skips PACKET_OUTGOING itself.
  attach_filter(socket.get(), node(), m_direction, m_peers);
  int on = 1;
  if (m_direction == Direction::inbound) ::setsockopt(socket.get(), SOL_PACKET, PACKET_IGNORE_OUTGOING, &on, sizeof(on));
  int size = m_receive_buffer;
  if (::setsockopt(socket.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
    ::setsockopt(socket.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_protocol = htons(ETH_P_ALL);
  address.sll_ifindex = ifindex;
  if (::bind(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    error = fmt::format("AF_PACKET bind{}: {}", interface.empty() ? "" : " to " + interface, std::strerror(errno));
    return {};
  }
  return socket;
}

bool
Capture::Impl::start(const std::string& interface, std::string& error)
{
  if (m_socket) return true;
  if (m_family == AF_UNSPEC) {
    error = "not an IP address: " + m_address;
    return false;
  }
  Fd socket = open_socket(interface, error);
  if (!socket) return false;
  if (!m_loop.add(socket.get(), EPOLLIN, [this](std::uint32_t) { drain(); })) {
    error = fmt::format("epoll: {}", std::strerror(errno));
    return false;
  }
  m_socket = std::move(socket);
  return true;
}

void
Capture::Impl::prune()
{
  auto now = std::chrono::steady_clock::now();
  std::erase_if(m_windows, [now](const OpenWindow& open) { return open.expiry <= now; });
  // Windows open in id order, so the first holds the oldest mark. With none
  // open, no check asks about anything recorded so far.
  auto before = m_windows.empty() ? m_counts.mark() : m_windows.front().window.mark;
  if (m_counts.size() > 0) m_counts.forget_through(before);
  if (m_expiry_timer != 0) m_loop.cancel(m_expiry_timer);
  m_expiry_timer = 0;
  if (m_windows.empty()) return;
  auto earliest = std::min_element(m_windows.begin(), m_windows.end(), [](const OpenWindow& a, const OpenWindow& b) {
                    return a.expiry < b.expiry;
                  })->expiry;
  m_expiry_timer = m_loop.after(std::chrono::duration_cast<std::chrono::milliseconds>(earliest - now) +
                                  std::chrono::milliseconds(1),
                                [this] {
                                  m_expiry_timer = 0;
                                  prune();
                                });
}

bool
Capture::Impl::drain(int max_batches)
{
  for (int batch = 0; batch < max_batches; ++batch) {
    for (std::size_t i = 0; i < k_batch; ++i) {
      m_vectors[i] = iovec{m_buffers[i].data(), m_buffers[i].size()};
      m_messages[i] = mmsghdr{};
      m_messages[i].msg_hdr.msg_name = &m_from[i];
      m_messages[i].msg_hdr.msg_namelen = sizeof(m_from[i]);
      m_messages[i].msg_hdr.msg_iov = &m_vectors[i];
      m_messages[i].msg_hdr.msg_iovlen = 1;
    }
    int count = ::recvmmsg(m_socket.get(), m_messages.data(), unsigned(k_batch), MSG_DONTWAIT, nullptr);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0) return true; // EAGAIN: drained (or an error the next event retries)
    for (int i = 0; i < count; ++i) {
      record(m_from[std::size_t(i)], {m_buffers[std::size_t(i)].data(), m_messages[std::size_t(i)].msg_len});
    }
    if (std::size_t(count) < k_batch) return true;
  }
  return false;
}

void
Capture::Impl::read_kernel_drops()
{
  tpacket_stats stats{};
  socklen_t length = sizeof(stats);
  if (::getsockopt(m_socket.get(), SOL_PACKET, PACKET_STATISTICS, &stats, &length) == 0) {
    m_kernel_drops += stats.tp_drops;
  }
}

void
Capture::Impl::record(const sockaddr_ll& from, std::span<const std::uint8_t> packet)
{
  if ((from.sll_pkttype == PACKET_OUTGOING) != (m_direction == Direction::outbound)) return;
  // No check is running: nobody will ask about it.
  if (m_direction == Direction::inbound && m_windows.empty()) return;
  auto probe = parse_arrived_probe(packet, ntohs(from.sll_protocol), node(), m_direction);
  if (!probe) return;
  m_counts.record(probe->protocol, probe->peer, probe->port);
}

Capture::Capture(EventLoop& loop, std::string address, Direction direction, std::size_t max_keys)
  : m_impl(std::make_unique<Impl>(loop, std::move(address), direction, max_keys))
{
}

Capture::~Capture() = default;

bool
Capture::start(const std::string& interface, std::string& error)
{
  return m_impl->start(interface, error);
}

bool
Capture::active() const
{
  return m_impl->m_socket.valid();
}

void
Capture::stop()
{
  if (!m_impl->m_socket) return;
  // With nothing more queued, reading the socket empty ends; a packet left
  // unread would vanish with the socket, uncounted.
  if (attach_closed_filter(m_impl->m_socket.get())) {
    while (!m_impl->drain()) {
    }
  } else {
    m_impl->drain(k_catch_up_batches);
  }
  m_impl->read_kernel_drops();
  m_impl->m_loop.remove(m_impl->m_socket.get());
  m_impl->m_socket.reset();
}

void
Capture::catch_up()
{
  if (!m_impl->m_socket) return;
  m_impl->drain(k_catch_up_batches);
  m_impl->read_kernel_drops();
}

void
Capture::clear_counts()
{
  // What is queued, and the kernel's drop counter, belong to the counts
  // being forgotten.
  catch_up();
  m_impl->m_counts.clear();
  m_impl->m_kernel_drops = 0;
}

std::uint32_t
Capture::seen(Protocol protocol, const std::string& peer, std::uint16_t port, std::uint64_t since) const
{
  auto bytes = peer_bytes(m_impl->m_family, peer);
  return bytes ? m_impl->m_counts.seen(protocol, *bytes, port, since) : 0;
}

std::uint64_t
Capture::mark() const
{
  return m_impl->m_counts.mark();
}

std::uint64_t
Capture::packets() const
{
  return m_impl->m_counts.mark();
}

std::uint64_t
Capture::lost() const
{
  return m_impl->m_kernel_drops + m_impl->m_counts.unrecorded();
}

std::optional<Capture::Window>
Capture::open_window(std::chrono::milliseconds lifetime)
{
  // What is queued arrived before the check: with no window open it is
  // dropped, otherwise it comes before this window's mark.
  catch_up();
  m_impl->prune();
  if (m_impl->m_windows.size() >= k_max_windows) return std::nullopt;
  lifetime = std::clamp<std::chrono::milliseconds>(lifetime, std::chrono::milliseconds(1), k_max_window_lifetime);
  Window window{m_impl->m_next_window++, mark()};
  m_impl->m_windows.push_back({window, std::chrono::steady_clock::now() + lifetime});
  m_impl->prune(); // the timer, at the earliest expiry
  return window;
}

std::chrono::milliseconds
Capture::window_left(std::uint64_t id) const
{
  auto now = std::chrono::steady_clock::now();
  for (const auto& open : m_impl->m_windows) {
    if (open.window.id == id && open.expiry > now) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(open.expiry - now);
    }
  }
  return std::chrono::milliseconds(0);
}

void
Capture::close_window(std::uint64_t id)
{
  auto before = m_impl->m_windows.size();
  std::erase_if(m_impl->m_windows, [id](const Impl::OpenWindow& open) { return open.window.id == id; });
  if (m_impl->m_windows.size() != before) m_impl->prune();
}

std::size_t
Capture::windows() const
{
  auto now = std::chrono::steady_clock::now();
  return std::size_t(std::count_if(m_impl->m_windows.begin(), m_impl->m_windows.end(),
                                   [now](const Impl::OpenWindow& open) { return open.expiry > now; }));
}

std::size_t
Capture::keys() const
{
  return m_impl->m_counts.size();
}

std::string
Capture::set_peers(const std::vector<std::string>& peers)
{
  m_impl->m_peers.clear();
  for (const auto& text : peers) {
    auto network = parse_peer_network(text);
    if (!network) return "not an address or network: " + text;
    m_impl->m_peers.push_back(*network);
  }
  if (m_impl->m_peers.size() > k_max_filter_peers) {
    m_impl->m_peers.clear();
    return fmt::format("{} peer networks are more than the capture's filter holds ({}): it keeps every source",
                       peers.size(), k_max_filter_peers);
  }
  return {};
}

void
Capture::set_receive_buffer(int bytes)
{
  m_impl->m_receive_buffer = bytes;
}

std::vector<std::string>
capture_peers(const Inventory& inventory)
{
  std::vector<std::string> peers;
  for (const auto& node : inventory.nodes) peers.push_back(node.address);
  peers.insert(peers.end(), inventory.client_cidrs.begin(), inventory.client_cidrs.end());
  return peers;
}

} // namespace portmatrix
