// Overlay-shaped probes: the probe payload (agent/identity.hpp) carried the
// way an overlay carries a frame on its UDP port, so a network that drops
// the overlay by its shape (a hypervisor's filter that passes plain UDP to
// 8472 and drops VXLAN, flannel-io/flannel #2388) fails the shaped probe
// while the plain one passes.
//
//   vxlan      8-byte VXLAN header (RFC 7348: flags 0x08, the VNI), then an
//              inner Ethernet + IPv4 + UDP frame whose payload is the probe
//   geneve     8-byte Geneve base header (RFC 8926: version 0, no options,
//              protocol 0x6558 Ethernet, the VNI), then the same inner frame
//   wireguard  the 16-byte header of a WireGuard data message (type 4,
//              reserved zeros, receiver index, counter), the probe, a 16-byte
//              tag, 32 + 16n bytes long. Only that header and the length are
//              WireGuard's: the content is our probe in clear, not ciphertext
//              (a real handshake needs the peers' keys). A network that drops
//              WireGuard by its visible shape is caught; one that tracks
//              handshakes or checks anything cryptographic is not.
//
// The inner frame is harmless if a real VXLAN device decapsulates it: unicast
// to a locally administered MAC nobody holds, IPv4 TTL 1 between addresses of
// TEST-NET-1 (192.0.2.0/24), UDP to the discard port. The agent answers a
// shaped probe in the same shape (inner addresses swapped), never with more
// bytes than the probe had. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/types.hpp"

namespace portmatrix {

// Probes of one port of an overlay's flow at most: the plain probe, the
// shaped one and the full-size one (a probe request may ask for this many
// per port).
inline constexpr std::uint64_t k_overlay_probes_per_port = 3;

struct Shape
{
  Encapsulation kind = Encapsulation::none;
  std::uint32_t vni = 0; // vxlan, geneve: 24 bits
  friend bool operator==(const Shape&, const Shape&) = default;
};

// Bytes before the probe body in a datagram of `kind` (0 for none).
std::size_t shape_header_size(Encapsulation kind);

// A probe datagram: `body` (make_probe_payload's) in the shape's headers,
// then zero bytes up to `size` bytes of UDP payload when it is larger (a
// full-size probe; WireGuard's length stays 32 + 16n, at most `size`).
std::string shape_probe(const Shape& shape, std::string_view body, std::size_t size = 0);

// What a datagram (or the first bytes of one) carries under one of our
// shapes: which shape, and where its body starts. nullopt when it is none of
// them; a plain probe or line ("PMX1 ...") is Encapsulation::none at 0.
struct Unwrapped
{
  Shape shape;
  std::size_t header = 0;
};
std::optional<Unwrapped> unwrap(std::string_view datagram);

// The answer to the shaped probe `probe` (as unwrap saw it): its headers
// mirrored, then `line`, padded as the shape needs.
std::string shape_reply(std::string_view probe, const Unwrapped& shape, std::string_view line);

// The identity line inside a reply of `kind`: the bytes after the header up
// to the first newline (inclusive); nullopt when the reply is not of that
// kind.
std::optional<std::string_view> reply_line(std::string_view reply, Encapsulation kind);

} // namespace portmatrix
