// Capture in two parts: the packet parser on handmade headers (no privilege
// needed), and the AF_PACKET socket on loopback (root, for CAP_NET_RAW),
// with probes sent from 127.0.0.1 / ::1 to ports the kernel just handed out.
// The loopback tests run in a network namespace of their own when they can,
// so that other tests sending to 127.0.0.1 at the same time are not counted.
#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "agent/capture.hpp"
#include "agent/capture_filter.hpp"
#include "agent/peer_port_counts.hpp"
#include "net/address.hpp"
#include "net/fd.hpp"
#include "probe/raw_packet.hpp"
#include "../skip.hpp"

namespace portmatrix {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint16_t k_ipv4 = 0x0800;
constexpr std::uint16_t k_ipv6 = 0x86DD;
constexpr std::uint8_t k_syn = 0x02;
constexpr std::uint8_t k_ack = 0x10;

std::array<std::uint8_t, 16>
address_bytes(const char* text)
{
  std::array<std::uint8_t, 16> bytes{};
  if (inet_pton(AF_INET, text, bytes.data()) != 1) inet_pton(AF_INET6, text, bytes.data());
  return bytes;
}

std::span<const std::uint8_t>
ipv4_of(const std::array<std::uint8_t, 16>& bytes)
{
  return {bytes.data(), 4};
}

void
put_u16(Bytes& packet, std::size_t offset, std::uint16_t value)
{
  packet[offset] = std::uint8_t(value >> 8);
  packet[offset + 1] = std::uint8_t(value);
}

// A transport header: UDP (8 bytes) or TCP (20 bytes, with `flags`).
Bytes
transport(std::uint8_t protocol, std::uint16_t port, std::uint8_t flags = k_syn)
{
  Bytes header(protocol == 17 ? 8 : 20, 0);
  put_u16(header, 0, 40000);
  put_u16(header, 2, port);
  if (protocol == 6) {
    header[12] = 5 << 4;
    header[13] = flags;
  }
  return header;
}

Bytes
ipv4_packet(const char* source, const char* destination, std::uint8_t protocol, const Bytes& payload,
            std::size_t options = 0, std::uint16_t fragment = 0)
{
  Bytes packet(20 + options, 0);
  packet[0] = std::uint8_t(0x40 | ((20 + options) / 4));
  put_u16(packet, 6, fragment);
  packet[8] = 64;
  packet[9] = protocol;
  auto from = address_bytes(source);
  auto to = address_bytes(destination);
  std::copy_n(from.begin(), 4, packet.begin() + 12);
  std::copy_n(to.begin(), 4, packet.begin() + 16);
  packet.insert(packet.end(), payload.begin(), payload.end());
  return packet;
}

Bytes
ipv6_packet(const char* source, const char* destination, std::uint8_t next_header, const Bytes& payload)
{
  Bytes packet(40, 0);
  packet[0] = 0x60;
  put_u16(packet, 4, std::uint16_t(payload.size()));
  packet[6] = next_header;
  packet[7] = 64;
  auto from = address_bytes(source);
  auto to = address_bytes(destination);
  std::copy(from.begin(), from.end(), packet.begin() + 8);
  std::copy(to.begin(), to.end(), packet.begin() + 24);
  packet.insert(packet.end(), payload.begin(), payload.end());
  return packet;
}

TEST(ParseArrivedProbe, TakesIpv4UdpAndTcpSynToTheNode)
{
  auto node = address_bytes("10.0.0.2");
  auto udp = parse_arrived_probe(ipv4_packet("10.0.0.1", "10.0.0.2", 17, transport(17, 8472)), k_ipv4, ipv4_of(node));
  ASSERT_TRUE(udp);
  EXPECT_EQ(udp->protocol, Protocol::udp);
  EXPECT_EQ(udp->port, 8472);
  EXPECT_EQ(udp->peer, address_bytes("10.0.0.1"));

  // IP options move the TCP header.
  auto tcp = parse_arrived_probe(ipv4_packet("10.0.0.3", "10.0.0.2", 6, transport(6, 6443), 8), k_ipv4, ipv4_of(node));
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->protocol, Protocol::tcp);
  EXPECT_EQ(tcp->port, 6443);
  EXPECT_EQ(tcp->peer, address_bytes("10.0.0.3"));
}

// An IP-in-IP probe as it arrives: the outer header (protocol 4) and the
// encapsulated probe (probe/raw_packet.hpp).
Bytes
ipip_probe(const char* source, const char* destination, std::size_t options = 0)
{
  auto inner = make_ipip_packet({10, 0, 0, 1}, std::string(160, 'x'));
  return ipv4_packet(source, destination, 4, Bytes(inner.begin(), inner.end()), options);
}

TEST(ParseArrivedProbe, TakesAnIpInIpProbeByItsInnerHeaderAsPortZero)
{
  auto node = address_bytes("10.0.0.2");
  auto probe = parse_arrived_probe(ipip_probe("10.0.0.1", "10.0.0.2", 8), k_ipv4, ipv4_of(node));
  ASSERT_TRUE(probe);
  EXPECT_EQ(probe->protocol, Protocol::ipip);
  EXPECT_EQ(probe->port, 0);
  EXPECT_EQ(probe->peer, address_bytes("10.0.0.1"));
  // A real tunnel's packet (an inner TCP segment to a pod) is no probe.
  auto pod = ipv4_packet("10.0.0.1", "10.0.0.2", 4, ipv4_packet("192.168.1.5", "192.168.2.7", 6, transport(6, 80)));
  EXPECT_FALSE(parse_arrived_probe(pod, k_ipv4, ipv4_of(node)));
  // Outbound, and inside IPv6, nothing but TCP SYNs and UDP counts.
  EXPECT_FALSE(parse_arrived_probe(ipip_probe("10.0.0.2", "10.0.0.1"), k_ipv4, ipv4_of(node), Direction::outbound));
}

TEST(ParseArrivedProbe, LeavesOutEverythingElse)
{
  auto node = address_bytes("10.0.0.2");
  auto parse = [&](const Bytes& packet, std::uint16_t ethertype = k_ipv4) {
    return parse_arrived_probe(packet, ethertype, ipv4_of(node)).has_value();
  };
  EXPECT_FALSE(parse(ipv4_packet("10.0.0.1", "10.0.0.9", 17, transport(17, 53)))) << "another destination";
  EXPECT_FALSE(parse(ipv4_packet("10.0.0.1", "10.0.0.2", 6, transport(6, 6443, k_syn | k_ack)))) << "SYN-ACK";
  EXPECT_FALSE(parse(ipv4_packet("10.0.0.1", "10.0.0.2", 6, transport(6, 6443, k_ack)))) << "ACK";
  EXPECT_FALSE(parse(ipv4_packet("10.0.0.1", "10.0.0.2", 1, Bytes(8, 0)))) << "ICMP";
  EXPECT_FALSE(parse(ipv4_packet("10.0.0.1", "10.0.0.2", 17, transport(17, 53), 0, 185))) << "later fragment";
  EXPECT_TRUE(parse(ipv4_packet("10.0.0.1", "10.0.0.2", 17, transport(17, 53), 0, 0x2000))) << "first fragment";
  EXPECT_FALSE(parse(ipv4_packet("10.0.0.1", "10.0.0.2", 17, transport(17, 53)), 0x0806)) << "not IP";

  auto truncated = ipv4_packet("10.0.0.1", "10.0.0.2", 6, transport(6, 6443));
  truncated.resize(20 + 13);
  EXPECT_FALSE(parse(truncated)) << "no TCP flags";
  auto bad_length = ipv4_packet("10.0.0.1", "10.0.0.2", 17, transport(17, 53));
  bad_length[0] = 0x44; // IHL 16 bytes
  EXPECT_FALSE(parse(bad_length));
  EXPECT_FALSE(parse(Bytes(10, 0x45)));
  EXPECT_FALSE(parse({}));
}

TEST(ParseArrivedProbe, OutboundTakesTcpSynsFromTheNodeAndNamesTheirDestination)
{
  auto node = address_bytes("10.0.0.2");
  auto out = [&](const Bytes& packet) { return parse_arrived_probe(packet, k_ipv4, ipv4_of(node), Direction::outbound); };
  auto syn = out(ipv4_packet("10.0.0.2", "10.0.0.5", 6, transport(6, 6443)));
  ASSERT_TRUE(syn);
  EXPECT_EQ(syn->protocol, Protocol::tcp);
  EXPECT_EQ(syn->port, 6443);
  EXPECT_EQ(syn->peer, address_bytes("10.0.0.5"));
  EXPECT_FALSE(out(ipv4_packet("10.0.0.2", "10.0.0.5", 17, transport(17, 8472)))) << "UDP: its send() says it";
  EXPECT_FALSE(out(ipv4_packet("10.0.0.5", "10.0.0.2", 6, transport(6, 6443)))) << "inbound SYN";
  EXPECT_FALSE(out(ipv4_packet("10.0.0.2", "10.0.0.5", 6, transport(6, 6443, k_syn | k_ack)))) << "SYN-ACK";

  auto node6 = address_bytes("fd00::2");
  auto syn6 = parse_arrived_probe(ipv6_packet("fd00::2", "fd00::7", 6, transport(6, 10250)), k_ipv6, node6,
                                  Direction::outbound);
  ASSERT_TRUE(syn6);
  EXPECT_EQ(syn6->peer, address_bytes("fd00::7"));
}

TEST(ParseArrivedProbe, TakesIpv6UdpAndTcpSyn)
{
  auto node = address_bytes("fd00::2");
  auto udp = parse_arrived_probe(ipv6_packet("fd00::1", "fd00::2", 17, transport(17, 4789)), k_ipv6, node);
  ASSERT_TRUE(udp);
  EXPECT_EQ(udp->protocol, Protocol::udp);
  EXPECT_EQ(udp->port, 4789);
  EXPECT_EQ(udp->peer, address_bytes("fd00::1"));

  auto tcp = parse_arrived_probe(ipv6_packet("fd00::1", "fd00::2", 6, transport(6, 10250)), k_ipv6, node);
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->port, 10250);

  EXPECT_FALSE(parse_arrived_probe(ipv6_packet("fd00::1", "fd00::3", 6, transport(6, 10250)), k_ipv6, node));
  EXPECT_FALSE(parse_arrived_probe(ipv6_packet("fd00::1", "fd00::2", 6, transport(6, 1, k_syn | k_ack)), k_ipv6, node));
  EXPECT_FALSE(parse_arrived_probe(ipv6_packet("fd00::1", "fd00::2", 44, transport(17, 53)), k_ipv6, node))
    << "extension header";
  // An IPv6 node never matches an IPv4 packet, and the reverse.
  EXPECT_FALSE(parse_arrived_probe(ipv4_packet("10.0.0.1", "10.0.0.2", 17, transport(17, 53)), k_ipv4, node));
}

// --- the kernel filter, interpreted (run_filter) -----------------------------------

std::vector<PeerNetwork>
networks(std::initializer_list<const char*> texts)
{
  std::vector<PeerNetwork> out;
  for (const auto* text : texts) out.push_back(*parse_peer_network(text));
  return out;
}

bool
kept(const std::vector<sock_filter>& program, const Bytes& packet, std::uint16_t ethertype,
     std::uint8_t packet_type = 0 /* PACKET_HOST */)
{
  return run_filter(program, packet, ethertype, packet_type) > 0;
}

TEST(CaptureFilter, ParsesPeerNetworks)
{
  EXPECT_EQ(parse_peer_network("10.1.2.3")->prefix, 32);
  EXPECT_EQ(parse_peer_network("10.0.0.0/8")->prefix, 8);
  EXPECT_FALSE(parse_peer_network("fd00::/64")->ipv4);
  for (const auto* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "fd00::/129", "host", ""}) {
    EXPECT_FALSE(parse_peer_network(bad)) << bad;
  }
}

// Finding 1: a flood from an address outside the inventory filled the
// capture's table and its losses wronged later diagnoses. The kernel's
// filter keeps only the inventory's peers.
TEST(CaptureFilter, KeepsOnlyProbesFromTheInventorysPeers)
{
  auto node = address_bytes("10.0.0.2");
  auto program = probe_filter(ipv4_of(node), Direction::inbound, networks({"10.0.0.1", "192.168.0.0/16"}));
  EXPECT_TRUE(kept(program, ipv4_packet("10.0.0.1", "10.0.0.2", 17, transport(17, 8472)), k_ipv4));
  EXPECT_TRUE(kept(program, ipv4_packet("10.0.0.1", "10.0.0.2", 6, transport(6, 6443)), k_ipv4));
  EXPECT_TRUE(kept(program, ipv4_packet("192.168.7.9", "10.0.0.2", 6, transport(6, 30000), 8), k_ipv4));
  EXPECT_FALSE(kept(program, ipv4_packet("10.0.0.9", "10.0.0.2", 17, transport(17, 8472)), k_ipv4)) << "not a peer";
  EXPECT_FALSE(kept(program, ipv4_packet("192.169.0.1", "10.0.0.2", 17, transport(17, 1)), k_ipv4));
  EXPECT_FALSE(kept(program, ipv4_packet("10.0.0.1", "10.0.0.3", 17, transport(17, 1)), k_ipv4)) << "not the node";
  EXPECT_FALSE(kept(program, ipv4_packet("10.0.0.1", "10.0.0.2", 6, transport(6, 1, k_syn | k_ack)), k_ipv4));
  EXPECT_FALSE(kept(program, ipv4_packet("10.0.0.1", "10.0.0.2", 17, transport(17, 1), 0, 5), k_ipv4))
    << "a later fragment";

  auto node6 = address_bytes("fd00::2");
  auto program6 = probe_filter(node6, Direction::inbound, networks({"fd00::1", "fd01::/48", "10.0.0.1"}));
  EXPECT_TRUE(kept(program6, ipv6_packet("fd00::1", "fd00::2", 17, transport(17, 53)), k_ipv6));
  EXPECT_TRUE(kept(program6, ipv6_packet("fd01::0:7:1", "fd00::2", 6, transport(6, 53)), k_ipv6));
  EXPECT_FALSE(kept(program6, ipv6_packet("fd01:0:1::1", "fd00::2", 6, transport(6, 53)), k_ipv6));
  EXPECT_FALSE(kept(program6, ipv6_packet("fd00::3", "fd00::2", 17, transport(17, 53)), k_ipv6));

  // Without peers (no inventory): every source, as parse_arrived_probe.
  auto open = probe_filter(ipv4_of(node), Direction::inbound);
  EXPECT_TRUE(kept(open, ipv4_packet("10.0.0.9", "10.0.0.2", 17, transport(17, 8472)), k_ipv4));
}

TEST(CaptureFilter, HoldsAsManyPeersAsItTakesWithShortJumps)
{
  std::vector<PeerNetwork> peers;
  for (std::size_t i = 0; i < k_max_filter_peers; ++i) {
    peers.push_back(*parse_peer_network(fmt::format("fd00::{:x}:{:x}", i / 200, i % 200)));
  }
  auto node6 = address_bytes("fd00::ffff:2");
  auto program = probe_filter(node6, Direction::inbound, peers);
  EXPECT_LE(program.size(), std::size_t(BPF_MAXINSNS));
  auto last = fmt::format("fd00::{:x}:{:x}", (k_max_filter_peers - 1) / 200, (k_max_filter_peers - 1) % 200);
  EXPECT_TRUE(kept(program, ipv6_packet(last.c_str(), "fd00::ffff:2", 17, transport(17, 53)), k_ipv6));
  EXPECT_FALSE(kept(program, ipv6_packet("fd00::ffff:3", "fd00::ffff:2", 17, transport(17, 53)), k_ipv6));
}

TEST(CaptureFilter, KeepsWhatTheParserTakesAndDropsTheRest)
{
  auto node = address_bytes("10.0.0.2");
  auto program = probe_filter(ipv4_of(node), Direction::inbound);
  std::vector<Bytes> packets = {
    ipv4_packet("10.0.0.1", "10.0.0.2", 17, transport(17, 53)),
    ipv4_packet("10.0.0.1", "10.0.0.2", 6, transport(6, 53, k_ack)),
    ipv4_packet("10.0.0.1", "10.0.0.2", 6, transport(6, 53), 40),
    ipv4_packet("10.0.0.1", "10.0.0.2", 1, transport(17, 53)),
    Bytes{0x45, 0, 0},
    ipip_probe("10.0.0.1", "10.0.0.2"),
    ipip_probe("10.0.0.1", "10.0.0.2", 12),
    ipip_probe("10.0.0.1", "10.0.0.3"),
    ipv4_packet("10.0.0.1", "10.0.0.2", 4, ipv4_packet("192.168.1.5", "127.0.0.1", 6, transport(6, 80))),
    ipv4_packet("10.0.0.1", "10.0.0.2", 4, ipv4_packet("192.168.1.5", "192.168.2.7", 253, transport(17, 80))),
    ipv4_packet("10.0.0.1", "10.0.0.2", 4, Bytes(19, 0x45)),
  };
  for (const auto& packet : packets) {
    EXPECT_EQ(kept(program, packet, k_ipv4), parse_arrived_probe(packet, k_ipv4, ipv4_of(node)).has_value());
  }
  EXPECT_TRUE(kept(program, ipip_probe("10.0.0.1", "10.0.0.2", 12), k_ipv4));
  auto outbound = probe_filter(ipv4_of(node), Direction::outbound, networks({"10.9.9.9"}));
  auto syn = ipv4_packet("10.0.0.2", "10.0.0.1", 6, transport(6, 53));
  EXPECT_TRUE(kept(outbound, syn, k_ipv4, 4 /* PACKET_OUTGOING */)) << "outbound: peers do not apply";
  EXPECT_FALSE(kept(outbound, syn, k_ipv4, 0));
}

// --- on loopback, as root -------------------------------------------------------

bool
is_root()
{
  return ::geteuid() == 0;
}

bool
bring_up_loopback()
{
  Fd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(socket.get(), SIOCGIFFLAGS, &request) != 0) return false;
  request.ifr_flags = short(request.ifr_flags | IFF_UP);
  return ::ioctl(socket.get(), SIOCSIFFLAGS, &request) == 0;
}

// Runs `body` on a thread of its own in a new network namespace (a thread's
// own: the rest of the process stays where it is) with lo up, 127.0.0.1 and
// ::1. False, without running it, when no namespace can be made.
bool
run_in_private_network(const std::function<void()>& body)
{
  bool isolated = false;
  std::thread thread([&] {
    isolated = ::unshare(CLONE_NEWNET) == 0 && bring_up_loopback();
    if (isolated) body();
  });
  thread.join();
  return isolated;
}

// A port on `host` that the kernel just handed out and nothing now holds.
std::uint16_t
free_port(const char* host, int type)
{
  auto address = *SocketAddress::parse(host, 0);
  Fd socket(::socket(address.family(), type | SOCK_CLOEXEC, 0));
  ::bind(socket.get(), address.get(), address.length());
  socklen_t length = sizeof(sockaddr_storage);
  ::getsockname(socket.get(), address.get(), &length);
  return SocketAddress::from_sockaddr(address.get(), length).port();
}

// Sends `count` one-byte datagrams to `host`:`port` from one socket.
void
send_datagrams(const char* host, std::uint16_t port, int count)
{
  auto address = *SocketAddress::parse(host, port);
  Fd socket(::socket(address.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(::sendto(socket.get(), "x", 1, 0, address.get(), address.length()), 1);
  }
}

void
send_datagram(const char* host, std::uint16_t port)
{
  send_datagrams(host, port, 1);
}

// connect() to `host`:`port`; returns the client's own port.
std::uint16_t
connect_tcp(const char* host, std::uint16_t port, int expected_error)
{
  auto address = *SocketAddress::parse(host, port);
  Fd socket(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  int result = ::connect(socket.get(), address.get(), address.length());
  EXPECT_EQ(result == 0 ? 0 : errno, expected_error);
  auto local = address;
  socklen_t length = sizeof(sockaddr_storage);
  ::getsockname(socket.get(), local.get(), &length);
  return SocketAddress::from_sockaddr(local.get(), length).port();
}

// Lets the loop dispatch what the capture socket has queued, until `done`
// (or 2 s), and then a little longer for anything (wrongly) counted twice.
void
pump(EventLoop& loop, const std::function<bool()>& done)
{
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!done() && std::chrono::steady_clock::now() < deadline) loop.run_once(20ms);
  loop.run_once(50ms);
}

// One UDP datagram to a closed port, a SYN to a closed port and a full
// handshake with a listener, all over loopback: each probe counts exactly
// once. On lo every packet passes the tap twice (out, then in): the outgoing
// copy must not count. The SYN-ACK and the ACKs, and the ICMP and RST
// answers, must not count at all.
void
expect_each_probe_counted_once(const char* host)
{
  EventLoop loop;
  Capture capture(loop, host);
  std::string error;
  ASSERT_TRUE(capture.start("lo", error)) << error;
  ASSERT_TRUE(capture.active());
  ASSERT_TRUE(capture.open_window(1min)); // a check runs

  // TCP and UDP ports are handed out apart: the same number may come up for
  // both, and a UDP probe to a number is then a "udp" count on that TCP port.
  auto udp_port = free_port(host, SOCK_DGRAM);
  auto closed_tcp_port = free_port(host, SOCK_STREAM);
  while (closed_tcp_port == udp_port) closed_tcp_port = free_port(host, SOCK_STREAM);
  auto unused_port = free_port(host, SOCK_DGRAM);
  while (unused_port == udp_port) unused_port = free_port(host, SOCK_DGRAM);
  auto listener_address = *SocketAddress::parse(host, 0);
  Fd listener(::socket(listener_address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::bind(listener.get(), listener_address.get(), listener_address.length()), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  socklen_t length = sizeof(sockaddr_storage);
  ::getsockname(listener.get(), listener_address.get(), &length);
  auto open_tcp_port = SocketAddress::from_sockaddr(listener_address.get(), length).port();

  send_datagram(host, udp_port);
  connect_tcp(host, closed_tcp_port, ECONNREFUSED);
  auto client_port = connect_tcp(host, open_tcp_port, 0);
  pump(loop, [&] {
    return capture.seen(Protocol::udp, host, udp_port) > 0 && capture.seen(Protocol::tcp, host, closed_tcp_port) > 0
           && capture.seen(Protocol::tcp, host, open_tcp_port) > 0;
  });

  EXPECT_EQ(capture.seen(Protocol::udp, host, udp_port), 1u);
  EXPECT_EQ(capture.seen(Protocol::tcp, host, closed_tcp_port), 1u);
  EXPECT_EQ(capture.seen(Protocol::tcp, host, open_tcp_port), 1u);
  EXPECT_EQ(capture.seen(Protocol::tcp, host, client_port), 0u) << "the SYN-ACK";
  EXPECT_EQ(capture.seen(Protocol::udp, host, closed_tcp_port), 0u);
  EXPECT_EQ(capture.seen(Protocol::udp, host, unused_port), 0u);
  EXPECT_EQ(capture.seen(Protocol::tcp, "192.0.2.1", open_tcp_port), 0u);
  EXPECT_EQ(capture.seen(Protocol::tcp, "not an address", open_tcp_port), 0u);
}

TEST(Capture, CountsEachIpv4ProbeOnceOnLoopback)
{
  if (!is_root()) PORTMATRIX_SKIP() << "needs CAP_NET_RAW (root)";
  auto body = [] { expect_each_probe_counted_once("127.0.0.1"); };
  // Shared lo: someone else's probe to these very ports is unlikely enough.
  if (!run_in_private_network(body)) body();
}

TEST(Capture, CountsEachIpv6ProbeOnceOnLoopback)
{
  if (!is_root()) PORTMATRIX_SKIP() << "needs CAP_NET_RAW (root)";
  if (free_port("::1", SOCK_DGRAM) == 0) PORTMATRIX_SKIP() << "no IPv6 on lo";
  auto body = [] { expect_each_probe_counted_once("::1"); };
  if (!run_in_private_network(body)) body();
}

TEST(Capture, OutboundCountsEachSynThatLeftOnce)
{
  if (!is_root()) PORTMATRIX_SKIP() << "needs CAP_NET_RAW (root)";
  bool isolated = run_in_private_network([] {
    EventLoop loop;
    Capture capture(loop, "127.0.0.1", Direction::outbound);
    std::string error;
    ASSERT_TRUE(capture.start("lo", error)) << error;
    auto closed_port = free_port("127.0.0.1", SOCK_STREAM);
    auto udp_port = free_port("127.0.0.1", SOCK_DGRAM);
    connect_tcp("127.0.0.1", closed_port, ECONNREFUSED);
    send_datagram("127.0.0.1", udp_port);
    pump(loop, [&] { return capture.seen(Protocol::tcp, "127.0.0.1", closed_port) > 0; });
    EXPECT_EQ(capture.seen(Protocol::tcp, "127.0.0.1", closed_port), 1u) << "the way out only, not the way in";
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", udp_port), 0u);
    capture.stop();
    EXPECT_FALSE(capture.active());
    EXPECT_EQ(capture.seen(Protocol::tcp, "127.0.0.1", closed_port), 1u) << "counts outlive stop()";
    capture.clear_counts();
    EXPECT_EQ(capture.seen(Protocol::tcp, "127.0.0.1", closed_port), 0u);
  });
  if (!isolated) PORTMATRIX_SKIP() << "needs a private network namespace (CAP_SYS_ADMIN)";
}

TEST(Capture, OnlyCountsPacketsPastTheKeyLimit)
{
  if (!is_root()) PORTMATRIX_SKIP() << "needs CAP_NET_RAW (root)";
  // With one key, any other traffic to 127.0.0.1 could take it: private only.
  bool isolated = run_in_private_network([] {
    EventLoop loop;
    Capture capture(loop, "127.0.0.1", Direction::inbound, 1);
    std::string error;
    ASSERT_TRUE(capture.start("lo", error)) << error;
    ASSERT_TRUE(capture.open_window(1min));
    auto first = free_port("127.0.0.1", SOCK_DGRAM);
    auto second = free_port("127.0.0.1", SOCK_DGRAM);
    send_datagram("127.0.0.1", first);
    pump(loop, [&] { return capture.packets() >= 1; });
    send_datagram("127.0.0.1", second);
    send_datagram("127.0.0.1", first);
    pump(loop, [&] { return capture.packets() >= 3; });
    EXPECT_EQ(capture.packets(), 3u);
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", first), 2u);
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", second), 0u);
    EXPECT_EQ(capture.lost(), 1u) << "the probe to `second` was not recorded: it reads as not seen";
    capture.clear_counts();
    EXPECT_EQ(capture.lost(), 0u);
  });
  if (!isolated) PORTMATRIX_SKIP() << "needs a private network namespace (CAP_SYS_ADMIN)";
}

// A later check asks what arrived since its start (a mark): probes of an
// earlier check are no evidence that this one's arrived.
TEST(Capture, SeenSinceAMarkLeavesOutWhatCameBefore)
{
  if (!is_root()) PORTMATRIX_SKIP() << "needs root (CAP_NET_RAW, a private network namespace)";
  bool isolated = run_in_private_network([] {
    EventLoop loop;
    Capture capture(loop, "127.0.0.1");
    std::string error;
    ASSERT_TRUE(capture.start("lo", error)) << error;
    ASSERT_TRUE(capture.open_window(1min));
    auto earlier = free_port("127.0.0.1", SOCK_DGRAM);
    auto again = free_port("127.0.0.1", SOCK_DGRAM);
    send_datagrams("127.0.0.1", earlier, 2);
    send_datagrams("127.0.0.1", again, 1);
    capture.catch_up();
    auto mark = capture.mark();
    EXPECT_EQ(mark, 3u);
    send_datagrams("127.0.0.1", again, 1);
    capture.catch_up();
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", earlier), 2u);
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", earlier, mark), 0u) << "only before the mark";
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", again, mark), 2u) << "its count, once one came after";
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", again, capture.mark()), 0u);
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", earlier, capture.mark() + 1), 2u)
      << "a mark of another capture (the agent restarted): everything counts";
  });
  if (!isolated) PORTMATRIX_SKIP() << "needs a private network namespace (CAP_SYS_ADMIN)";
}

// A capture that falls behind: a receive buffer of the kernel's minimum (a
// few packets) and a burst while the loop does not read. The kernel drops
// what does not fit, and lost() says so: every datagram is either seen or
// lost. The same burst into a capture with its normal buffer loses nothing.
TEST(Capture, CountsThePacketsTheKernelDroppedForIt)
{
  if (!is_root()) PORTMATRIX_SKIP() << "needs root (CAP_NET_RAW, a private network namespace)";
  constexpr int k_burst = 500;
  bool isolated = run_in_private_network([] {
    EventLoop loop;
    Capture behind(loop, "127.0.0.1");
    behind.set_receive_buffer(1);
    std::string error;
    ASSERT_TRUE(behind.start("lo", error)) << error;
    ASSERT_TRUE(behind.open_window(1min));
    auto port = free_port("127.0.0.1", SOCK_DGRAM);
    send_datagrams("127.0.0.1", port, k_burst);
    EXPECT_EQ(behind.lost(), 0u) << "nothing is read before catch_up()";
    behind.catch_up();
    auto seen = behind.seen(Protocol::udp, "127.0.0.1", port);
    EXPECT_GT(behind.lost(), 0u);
    EXPECT_LT(seen, std::uint32_t(k_burst));
    EXPECT_EQ(seen + behind.lost(), std::uint64_t(k_burst));
    auto lost = behind.lost();
    behind.stop();
    EXPECT_EQ(behind.lost(), lost) << "losses outlive stop(), like the counts";
    behind.clear_counts();
    EXPECT_EQ(behind.lost(), 0u);

    Capture keeping_up(loop, "127.0.0.1");
    ASSERT_TRUE(keeping_up.start("lo", error)) << error;
    ASSERT_TRUE(keeping_up.open_window(1min));
    send_datagrams("127.0.0.1", port, k_burst);
    keeping_up.catch_up();
    EXPECT_EQ(keeping_up.lost(), 0u);
    EXPECT_EQ(keeping_up.seen(Protocol::udp, "127.0.0.1", port), std::uint32_t(k_burst));
  });
  if (!isolated) PORTMATRIX_SKIP() << "needs a private network namespace (CAP_SYS_ADMIN)";
}

// stop() reads everything queued, not just what one readiness event reads
// (1,024 packets): a packet left in the socket would vanish uncounted.
TEST(Capture, StopReadsEverythingQueued)
{
  if (!is_root()) PORTMATRIX_SKIP() << "needs root (CAP_NET_RAW, a private network namespace)";
  constexpr int k_queued = 3000;
  bool isolated = run_in_private_network([] {
    EventLoop loop;
    Capture capture(loop, "127.0.0.1");
    std::string error;
    ASSERT_TRUE(capture.start("lo", error)) << error;
    ASSERT_TRUE(capture.open_window(1min));
    auto port = free_port("127.0.0.1", SOCK_DGRAM);
    send_datagrams("127.0.0.1", port, k_queued);
    capture.stop();
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", port) + capture.lost(), std::uint64_t(k_queued));
    EXPECT_EQ(capture.lost(), 0u) << "a 4 MiB buffer holds 3,000 small datagrams";
  });
  if (!isolated) PORTMATRIX_SKIP() << "needs a private network namespace (CAP_SYS_ADMIN)";
}

TEST(Capture, ExplainsWhyItCannotStart)
{
  EventLoop loop;
  std::string error;
  Capture not_an_address(loop, "node-a");
  EXPECT_FALSE(not_an_address.start("lo", error));
  EXPECT_EQ(error, "not an IP address: node-a");
  if (!is_root()) PORTMATRIX_SKIP() << "needs CAP_NET_RAW (root)";

  Capture no_interface(loop, "127.0.0.1");
  EXPECT_FALSE(no_interface.start("pm-no-such0", error));
  EXPECT_NE(error.find("pm-no-such0"), std::string::npos) << error;
  EXPECT_FALSE(no_interface.active());

  // Without CAP_NET_RAW (a child that gave up root), the reason says so.
  auto child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(3);
    EventLoop child_loop;
    Capture unprivileged(child_loop, "127.0.0.1");
    std::string reason;
    bool started = unprivileged.start("lo", reason);
    ::_exit(!started && reason == "AF_PACKET needs CAP_NET_RAW; diagnosis degrades to filtered" ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Sends `count` one-byte datagrams from `source` to `host`, one port after
// the other from `first_port`.
void
send_datagrams_from(const char* source, const char* host, std::uint16_t first_port, int count)
{
  auto from = *SocketAddress::parse(source, 0);
  Fd socket(::socket(from.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::bind(socket.get(), from.get(), from.length()), 0);
  for (int i = 0; i < count; ++i) {
    auto to = *SocketAddress::parse(host, std::uint16_t(first_port + i % 30000));
    ASSERT_EQ(::sendto(socket.get(), "x", 1, 0, to.get(), to.length()), 1);
  }
}

// Finding 1 on a real socket: 20,000 datagrams to 20,000 ports from an
// address outside the inventory, into a receive buffer of a few packets that
// nobody reads meanwhile. None is recorded or lost; a probe from a peer
// afterwards is seen.
TEST(Capture, AFloodFromOutsideTheInventoryIsNeitherCountedNorLost)
{
  if (!is_root()) PORTMATRIX_SKIP() << "needs root (CAP_NET_RAW, a private network namespace)";
  bool isolated = run_in_private_network([] {
    EventLoop loop;
    Capture capture(loop, "127.0.0.1");
    EXPECT_EQ(capture.set_peers({"127.0.0.2", "127.0.1.0/24"}), "");
    capture.set_receive_buffer(1);
    std::string error;
    ASSERT_TRUE(capture.start("lo", error)) << error;
    ASSERT_TRUE(capture.open_window(1min));
    send_datagrams_from("127.0.0.3", "127.0.0.1", 20000, 20000);
    capture.catch_up();
    EXPECT_EQ(capture.lost(), 0u);
    EXPECT_EQ(capture.packets(), 0u);
    EXPECT_EQ(capture.keys(), 0u);
    auto port = free_port("127.0.0.1", SOCK_DGRAM);
    send_datagrams_from("127.0.0.2", "127.0.0.1", port, 1);
    send_datagrams_from("127.0.1.7", "127.0.0.1", port, 1);
    pump(loop, [&] { return capture.packets() >= 2; });
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.2", port), 1u);
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.1.7", port), 1u);
    EXPECT_EQ(capture.lost(), 0u);
  });
  if (!isolated) PORTMATRIX_SKIP() << "needs a private network namespace (CAP_SYS_ADMIN)";
}

// Issue 16: the capture's memory is held per check. Nothing is kept while no
// check runs; what a check kept is released when its window closes (its
// `done`), or when it expires (its deadline), and what an older window kept
// goes when the older check ends, while a newer check keeps its own.
TEST(Capture, WhatACheckKeptIsReleasedWhenItsWindowCloses)
{
  if (!is_root()) PORTMATRIX_SKIP() << "needs root (CAP_NET_RAW, a private network namespace)";
  bool isolated = run_in_private_network([] {
    EventLoop loop;
    Capture capture(loop, "127.0.0.1");
    std::string error;
    ASSERT_TRUE(capture.start("lo", error)) << error;
    send_datagrams_from("127.0.0.1", "127.0.0.1", 20000, 100);
    capture.catch_up();
    EXPECT_EQ(capture.keys(), 0u) << "no check runs: nothing is kept";

    auto first = capture.open_window(1min);
    ASSERT_TRUE(first);
    send_datagrams_from("127.0.0.1", "127.0.0.1", 20000, 1000);
    capture.catch_up();
    EXPECT_EQ(capture.keys(), 1000u);
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", 20500, first->mark), 1u);
    auto second = capture.open_window(1min);
    ASSERT_TRUE(second);
    EXPECT_NE(second->id, first->id);
    send_datagrams_from("127.0.0.1", "127.0.0.1", 40000, 10);
    capture.catch_up();
    EXPECT_EQ(capture.keys(), 1010u);
    EXPECT_EQ(capture.windows(), 2u);

    capture.close_window(first->id);
    EXPECT_EQ(capture.window_left(first->id), 0ms);
    EXPECT_GT(capture.window_left(second->id), 50s);
    EXPECT_EQ(capture.keys(), 10u) << "what only the first check could ask about is gone";
    EXPECT_EQ(capture.seen(Protocol::udp, "127.0.0.1", 40005, second->mark), 1u);
    capture.close_window(second->id);
    EXPECT_EQ(capture.keys(), 0u);
    EXPECT_EQ(capture.windows(), 0u);

    // A check that never says done: its window expires, and the timer releases it.
    auto short_lived = capture.open_window(200ms);
    ASSERT_TRUE(short_lived);
    send_datagrams_from("127.0.0.1", "127.0.0.1", 20000, 100);
    pump(loop, [&] { return capture.keys() >= 100; });
    EXPECT_EQ(capture.keys(), 100u);
    pump(loop, [&] { return capture.keys() == 0; });
    EXPECT_EQ(capture.keys(), 0u);
    EXPECT_EQ(capture.windows(), 0u);
    EXPECT_EQ(capture.window_left(short_lived->id), 0ms);
  });
  if (!isolated) PORTMATRIX_SKIP() << "needs a private network namespace (CAP_SYS_ADMIN)";
}

// At most k_max_windows checks hold windows at once; one that closes makes
// room. No window outlives k_max_window_lifetime, whatever is asked.
TEST(Capture, HoldsAtMostKMaxWindows)
{
  EventLoop loop;
  Capture capture(loop, "127.0.0.1"); // windows need no socket
  std::vector<std::uint64_t> ids;
  for (std::size_t i = 0; i < k_max_windows; ++i) {
    auto window = capture.open_window(10min);
    ASSERT_TRUE(window) << "window " << i;
    ids.push_back(window->id);
  }
  EXPECT_EQ(capture.windows(), k_max_windows);
  EXPECT_FALSE(capture.open_window(10min)) << "one window more than k_max_windows";
  capture.close_window(ids[3]);
  auto again = capture.open_window(24h);
  ASSERT_TRUE(again);
  EXPECT_LE(capture.window_left(again->id), k_max_window_lifetime);
  EXPECT_GT(capture.window_left(again->id), k_max_window_lifetime - 1min);
}

// What a check recorded is forgotten once no check can ask about it, and
// its memory given back; marks stay valid.
TEST(PeerPortCountsRelease, ForgetsWhatCameBeforeAMarkAndKeepsCounting)
{
  PeerPortCounts counts;
  auto peer = *peer_bytes(AF_INET, "10.0.0.1");
  for (std::uint16_t port = 1; port <= 1000; ++port) counts.record(Protocol::udp, peer, port);
  auto mark = counts.mark();
  counts.record(Protocol::udp, peer, 7);
  counts.forget_through(mark);
  EXPECT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts.seen(Protocol::udp, peer, 7, mark), 2u);
  EXPECT_EQ(counts.seen(Protocol::udp, peer, 8), 0u);
  EXPECT_EQ(counts.mark(), 1001u);
  counts.forget_through(counts.mark());
  EXPECT_EQ(counts.size(), 0u);
}

} // namespace
} // namespace portmatrix
