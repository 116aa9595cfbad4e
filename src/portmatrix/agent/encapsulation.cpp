// Overlay shapes of the probe (see encapsulation.hpp): building a shaped
// probe, recognising one (or a reply) by its header, and mirroring its
// headers into the answer. Byte offsets follow RFC 7348 (VXLAN), RFC 8926
// (Geneve) and WireGuard's data message.
#include "agent/encapsulation.hpp"

#include <algorithm>
#include <array>

namespace portmatrix {
namespace {

constexpr std::size_t k_tunnel_header = 8;                       // VXLAN, Geneve
constexpr std::size_t k_ethernet = 14;
constexpr std::size_t k_ipv4 = 20;
constexpr std::size_t k_udp = 8;
constexpr std::size_t k_inner_ip = k_tunnel_header + k_ethernet; // 22
constexpr std::size_t k_inner_udp = k_inner_ip + k_ipv4;         // 42
constexpr std::size_t k_frame_header = k_inner_udp + k_udp;      // 50
constexpr std::size_t k_wireguard_header = 16;
constexpr std::size_t k_wireguard_tag = 16;

// Locally administered unicast MACs ("PMX"), TEST-NET-1 addresses, discard port.
constexpr std::array<std::uint8_t, 6> k_inner_source_mac{0x02, 0x50, 0x4d, 0x58, 0x00, 0x01};
constexpr std::array<std::uint8_t, 6> k_inner_destination_mac{0x02, 0x50, 0x4d, 0x58, 0x00, 0x02};
constexpr std::array<std::uint8_t, 4> k_inner_source_ip{192, 0, 2, 1};
constexpr std::array<std::uint8_t, 4> k_inner_destination_ip{192, 0, 2, 2};
constexpr std::uint16_t k_inner_source_port = 49152;
constexpr std::uint16_t k_inner_destination_port = 9;

std::uint8_t
byte(std::string_view data, std::size_t at)
{
  return std::uint8_t(data[at]);
}

void
put16(std::string& out, std::size_t at, std::uint16_t value)
{
  out[at] = char(value >> 8);
  out[at + 1] = char(value & 0xff);
}

// The IPv4 header checksum of out[at, at + 20), its checksum field zero.
std::uint16_t
ipv4_checksum(const std::string& out, std::size_t at)
{
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < k_ipv4; i += 2) sum += std::uint32_t(byte(out, at + i) << 8 | byte(out, at + i + 1));
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return std::uint16_t(~sum);
}

// Sets the inner IPv4 and UDP lengths of a frame carrying `payload` bytes.
void
set_inner_lengths(std::string& out, std::size_t payload)
{
  put16(out, k_inner_ip + 2, std::uint16_t(k_ipv4 + k_udp + payload));
  put16(out, k_inner_ip + 10, 0);
  put16(out, k_inner_ip + 10, ipv4_checksum(out, k_inner_ip));
  put16(out, k_inner_udp + 4, std::uint16_t(k_udp + payload));
}

// The tunnel header and inner frame (k_frame_header bytes) for `shape`.
std::string
frame_header(const Shape& shape)
{
  std::string out(k_frame_header, '\0');
  if (shape.kind == Encapsulation::vxlan) {
    out[0] = char(0x08); // I flag: the VNI is valid
  } else {
    put16(out, 2, 0x6558); // Geneve: version 0, no options, Transparent Ethernet Bridging
  }
  out[4] = char((shape.vni >> 16) & 0xff);
  out[5] = char((shape.vni >> 8) & 0xff);
  out[6] = char(shape.vni & 0xff);
  std::copy(k_inner_destination_mac.begin(), k_inner_destination_mac.end(), out.begin() + k_tunnel_header);
  std::copy(k_inner_source_mac.begin(), k_inner_source_mac.end(), out.begin() + k_tunnel_header + 6);
  put16(out, k_tunnel_header + 12, 0x0800);
  out[k_inner_ip] = char(0x45);
  put16(out, k_inner_ip + 6, 0x4000); // DF
  out[k_inner_ip + 8] = char(1);      // TTL 1: never forwarded
  out[k_inner_ip + 9] = char(17);     // UDP
  std::copy(k_inner_source_ip.begin(), k_inner_source_ip.end(), out.begin() + k_inner_ip + 12);
  std::copy(k_inner_destination_ip.begin(), k_inner_destination_ip.end(), out.begin() + k_inner_ip + 16);
  put16(out, k_inner_udp, k_inner_source_port);
  put16(out, k_inner_udp + 2, k_inner_destination_port);
  return out;
}

bool
is_frame(std::string_view data)
{
  return data.size() >= k_frame_header && byte(data, k_tunnel_header + 12) == 0x08 &&
         byte(data, k_tunnel_header + 13) == 0x00 && byte(data, k_inner_ip) == 0x45 && byte(data, k_inner_ip + 9) == 17;
}

std::uint32_t
vni_of(std::string_view data)
{
  return std::uint32_t(byte(data, 4)) << 16 | std::uint32_t(byte(data, 5)) << 8 | byte(data, 6);
}

// Swaps `length` bytes at `a` and `b`.
void
swap_fields(std::string& out, std::size_t a, std::size_t b, std::size_t length)
{
  std::swap_ranges(out.begin() + std::ptrdiff_t(a), out.begin() + std::ptrdiff_t(a + length),
                   out.begin() + std::ptrdiff_t(b));
}

} // namespace

std::size_t
shape_header_size(Encapsulation kind)
{
  switch (kind) {
  case Encapsulation::none: return 0;
  case Encapsulation::vxlan:
  case Encapsulation::geneve: return k_frame_header;
  case Encapsulation::wireguard: return k_wireguard_header;
  }
  return 0;
}

std::string
shape_probe(const Shape& shape, std::string_view body, std::size_t size)
{
  std::string out;
  switch (shape.kind) {
  case Encapsulation::none: out.assign(body); break;
  case Encapsulation::vxlan:
  case Encapsulation::geneve: {
    out = frame_header(shape);
    auto payload = std::max(body.size(), size > k_frame_header ? size - k_frame_header : 0);
    set_inner_lengths(out, payload);
    out.append(body);
    break;
  }
  case Encapsulation::wireguard: {
    out.assign(k_wireguard_header, '\0');
    out[0] = char(4); // transport data
    out.append(body);
    out.resize(k_wireguard_header + (body.size() + 15) / 16 * 16, '\0');
    out.append(k_wireguard_tag, '\0');
    if (size > out.size()) out.resize(out.size() + (size - out.size()) / 16 * 16, '\0');
    return out;
  }
  }
  if (size > out.size()) out.resize(size, '\0');
  return out;
}

std::optional<Unwrapped>
unwrap(std::string_view data)
{
  if (data.empty()) return std::nullopt;
  if (data.starts_with("PMX1 ")) return Unwrapped{};
  if (data.size() >= k_frame_header && byte(data, 1) == 0 && byte(data, 7) == 0) {
    bool vxlan = byte(data, 0) == 0x08 && byte(data, 2) == 0 && byte(data, 3) == 0;
    bool geneve = byte(data, 0) == 0 && byte(data, 2) == 0x65 && byte(data, 3) == 0x58;
    if ((vxlan || geneve) && is_frame(data)) {
      return Unwrapped{{vxlan ? Encapsulation::vxlan : Encapsulation::geneve, vni_of(data)}, k_frame_header};
    }
  }
  if (data.size() >= k_wireguard_header + k_wireguard_tag && byte(data, 0) == 4 && byte(data, 1) == 0 &&
      byte(data, 2) == 0 && byte(data, 3) == 0) {
    return Unwrapped{{Encapsulation::wireguard, 0}, k_wireguard_header};
  }
  return std::nullopt;
}

std::string
shape_reply(std::string_view probe, const Unwrapped& shape, std::string_view line)
{
  switch (shape.shape.kind) {
  case Encapsulation::none: return std::string(line);
  case Encapsulation::vxlan:
  case Encapsulation::geneve: {
    std::string out(probe.substr(0, k_frame_header));
    swap_fields(out, k_tunnel_header, k_tunnel_header + 6, 6); // MACs
    swap_fields(out, k_inner_ip + 12, k_inner_ip + 16, 4);     // addresses
    swap_fields(out, k_inner_udp, k_inner_udp + 2, 2);         // ports
    set_inner_lengths(out, line.size());
    out.append(line);
    return out;
  }
  case Encapsulation::wireguard: {
    std::string out(probe.substr(0, k_wireguard_header));
    out.append(line);
    out.resize(k_wireguard_header + (line.size() + 15) / 16 * 16, '\0');
    out.append(k_wireguard_tag, '\0');
    return out;
  }
  }
  return std::string(line);
}

std::optional<std::string_view>
reply_line(std::string_view reply, Encapsulation kind)
{
  auto shape = unwrap(reply);
  if (!shape || shape->shape.kind != kind) return std::nullopt;
  auto body = reply.substr(shape->header);
  auto newline = body.find('\n');
  return newline == std::string_view::npos ? body : body.substr(0, newline + 1);
}

} // namespace portmatrix
