// The IP-in-IP probe on the wire (IP protocol 4, what Calico's IPIP mode
// sends between nodes), pure: no sockets. A raw IPPROTO_IPIP socket writes
// the outer IPv4 header itself; what it is given, and what this builds, is
// the encapsulated packet: an inner IPv4 header and the probe's bytes.
//
//   outer  source: the prober's node   destination: the probed node   protocol 4
//   inner  source: the sender's node   destination: 127.0.0.1         protocol 253
//          TTL 1, DF, no options       payload: the identity exchange (agent/identity.hpp)
//
// The inner packet must go nowhere if a kernel decapsulates it (the ipip
// module with a tunnel up, as on a Calico node): a destination in 127.0.0.0/8
// arriving from outside the host is a martian, dropped by the route lookup
// before any forwarding or local delivery, and TTL 1 would stop a forward
// anyway. Protocol 253 is reserved for experiments (RFC 3692): no stack
// handles it. The agents recognise the probe by these inner fields (the
// raw socket's filter, the capture's) and its payload, and answer with a
// packet of the same shape back to the prober's node.
#pragma once

#include <linux/filter.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/provable.hpp" // has_probe()

namespace portmatrix {

inline constexpr std::uint8_t k_ip_protocol_ipip = 4;
inline constexpr std::uint8_t k_ipip_inner_protocol = 253; // RFC 3692: experimentation and testing
inline constexpr std::uint32_t k_ipip_inner_destination = 0x7F000001; // 127.0.0.1
inline constexpr std::size_t k_ipv4_header_bytes = 20;
// The longest outer header (60 bytes, with options), the inner one and the
// longest identity line fit in this (a raw socket reads the outer header too).
inline constexpr std::size_t k_max_ipip_packet = 60 + k_ipv4_header_bytes + 256 + 1;

// An IPv4 address in network order.
using Ipv4Bytes = std::array<std::uint8_t, 4>;

// The inner IPv4 header (from `inner_source`, to 127.0.0.1, protocol 253,
// TTL 1, its checksum computed) followed by `payload`: what a raw IPPROTO_IPIP
// socket sends. `payload` is at most k_max_ipip_packet bytes less the headers.
std::string make_ipip_packet(const Ipv4Bytes& inner_source, std::string_view payload);

// One packet as a raw IPPROTO_IPIP socket reads it (from the outer IPv4
// header on): the outer source and the payload, if the inner header is a
// probe's (inner protocol 253 to 127.0.0.1, a sane length); nullopt for
// anything else (a real tunnel's traffic, truncated or malformed headers).
// The payload points into `packet`.
struct IpipProbePacket
{
  Ipv4Bytes outer_source{};
  std::string_view payload;
};
std::optional<IpipProbePacket> parse_ipip_packet(std::span<const std::uint8_t> packet);

// True when `inner` (the bytes after an outer IPv4 header of protocol 4)
// starts with a probe's inner header: what the capture counts as an IP-in-IP
// probe's arrival.
bool is_ipip_probe_inner(std::span<const std::uint8_t> inner);

// A classic BPF program for a raw IPPROTO_IPIP socket (which sees from the
// outer IPv4 header on): it keeps only probe-shaped packets, so a Calico
// node's tunnel traffic never reaches the agent's sockets.
std::vector<sock_filter> ipip_socket_filter();

} // namespace portmatrix
