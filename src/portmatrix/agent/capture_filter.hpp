// The classic BPF program Capture attaches to its AF_PACKET socket, so that
// the kernel queues only what can be a probe of this check: TCP SYNs without
// ACK, UDP first fragments and IP-in-IP probes (IPv4, by their inner header:
// probe/raw_packet.hpp) addressed to the node (inbound) or TCP SYNs
// leaving it (outbound), and inbound only from the inventory's peers (its
// nodes' addresses and client_cidrs). A flood from any other address never
// reaches the socket: it costs no memory, fills no buffer and is never
// counted as lost.
//
// run_filter() interprets such a program in user space (the instructions
// probe_filter emits, nothing more), so tests and fuzzing can hold the
// kernel's filter against parse_arrived_probe without CAP_NET_RAW.
#pragma once

#include <linux/filter.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace portmatrix {

enum class Direction { inbound, outbound };

// Where the node's and the peer's address start in an IP header (IPv4 when
// `ipv4`, else IPv6) seen in `direction`: the filter and the parser read the
// same bytes.
struct AddressOffsets
{
  std::uint32_t node;
  std::uint32_t peer;
};
AddressOffsets address_offsets(bool ipv4, Direction direction);

// The packet layout that both the filter (in the kernel) and the parser
// (parse_arrived_probe, in user space) read.
inline constexpr std::uint16_t k_ethertype_ipv4 = 0x0800;
inline constexpr std::uint16_t k_ethertype_ipv6 = 0x86DD;
inline constexpr std::uint8_t k_ip_tcp = 6;
inline constexpr std::uint8_t k_ip_udp = 17;
inline constexpr std::uint8_t k_tcp_syn = 0x02;
inline constexpr std::uint8_t k_tcp_ack = 0x10;
inline constexpr std::uint32_t k_ipv4_min_header = 20;
inline constexpr std::uint32_t k_ipv6_header = 40;
inline constexpr std::uint32_t k_tcp_flags_offset = 13;
inline constexpr std::uint16_t k_ipv4_fragment_offset_mask = 0x1FFF;

// Bytes kept per packet: the largest IPv4 header (60) plus the TCP header up
// to its flags (14) fit; the payload is never needed.
constexpr std::uint32_t k_capture_snap_length = 128;

// An address or network the capture takes packets from: `bytes` in network
// order (IPv4 in the first 4), `prefix` bits of it significant.
struct PeerNetwork
{
  std::array<std::uint8_t, 16> bytes{};
  bool ipv4 = true;
  int prefix = 32;
};

// "192.0.2.7", "10.0.0.0/8", "2001:db8::/32"; nullopt otherwise.
std::optional<PeerNetwork> parse_peer_network(const std::string& text);

// Most peer networks one program holds (classic BPF allows 4096
// instructions; an IPv6 network takes up to 13). Past it the capture keeps
// every peer (as before the limit existed) and says so.
constexpr std::size_t k_max_filter_peers = 256;

// The program for `node` (4 or 16 bytes). Inbound, `peers` (of the node's
// family; others are left out) limits the sources; empty: every source.
std::vector<sock_filter> probe_filter(std::span<const std::uint8_t> node, Direction direction,
                                      std::span<const PeerNetwork> peers = {});

// What the kernel would return for `packet` (starting at the network header,
// as an AF_PACKET SOCK_DGRAM socket sees it): the bytes kept, 0 for dropped.
// `ethertype` and `packet_type` stand for SKF_AD_PROTOCOL and SKF_AD_PKTTYPE.
// A load past the packet's end drops it, as in the kernel.
std::uint32_t run_filter(std::span<const sock_filter> program, std::span<const std::uint8_t> packet,
                         std::uint16_t ethertype, std::uint8_t packet_type);

} // namespace portmatrix
