// Building and recognising the IP-in-IP probe's inner packet (see the header
// for its shape and why it is harmless where a kernel decapsulates it).
#include "probe/raw_packet.hpp"

#include <cstring>

namespace portmatrix {
namespace {

constexpr std::uint16_t k_dont_fragment = 0x4000;
constexpr std::uint16_t k_fragment_offset_mask = 0x1FFF;

std::uint16_t
read_u16(std::span<const std::uint8_t> bytes, std::size_t offset)
{
  return std::uint16_t((bytes[offset] << 8) | bytes[offset + 1]);
}

std::uint32_t
read_u32(std::span<const std::uint8_t> bytes, std::size_t offset)
{
  return (std::uint32_t(bytes[offset]) << 24) | (std::uint32_t(bytes[offset + 1]) << 16) |
         (std::uint32_t(bytes[offset + 2]) << 8) | bytes[offset + 3];
}

void
put_u16(std::string& out, std::size_t offset, std::uint16_t value)
{
  out[offset] = char(value >> 8);
  out[offset + 1] = char(value & 0xFF);
}

// The Internet checksum (RFC 1071) of an IPv4 header.
std::uint16_t
header_checksum(std::string_view header)
{
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < header.size(); i += 2) {
    sum += std::uint32_t((std::uint8_t(header[i]) << 8) | std::uint8_t(header[i + 1]));
  }
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return std::uint16_t(~sum);
}

} // namespace

std::string
make_ipip_packet(const Ipv4Bytes& inner_source, std::string_view payload)
{
  std::string packet(k_ipv4_header_bytes, '\0');
  packet[0] = char(0x45); // version 4, 5 words
  put_u16(packet, 2, std::uint16_t(k_ipv4_header_bytes + payload.size()));
  put_u16(packet, 6, k_dont_fragment);
  packet[8] = 1; // TTL: never forwarded
  packet[9] = char(k_ipip_inner_protocol);
  std::memcpy(&packet[12], inner_source.data(), 4);
  put_u16(packet, 16, std::uint16_t(k_ipip_inner_destination >> 16));
  put_u16(packet, 18, std::uint16_t(k_ipip_inner_destination & 0xFFFF));
  put_u16(packet, 10, header_checksum(packet));
  packet += payload;
  return packet;
}

bool
is_ipip_probe_inner(std::span<const std::uint8_t> inner)
{
  if (inner.size() < k_ipv4_header_bytes || inner[0] != 0x45) return false;
  if ((read_u16(inner, 6) & k_fragment_offset_mask) != 0) return false;
  return inner[9] == k_ipip_inner_protocol && read_u32(inner, 16) == k_ipip_inner_destination;
}

std::optional<IpipProbePacket>
parse_ipip_packet(std::span<const std::uint8_t> packet)
{
  if (packet.size() < k_ipv4_header_bytes || (packet[0] >> 4) != 4) return std::nullopt;
  std::size_t outer_length = std::size_t(packet[0] & 0x0F) * 4;
  if (outer_length < k_ipv4_header_bytes || packet.size() < outer_length || packet[9] != k_ip_protocol_ipip) {
    return std::nullopt;
  }
  auto inner = packet.subspan(outer_length);
  if (!is_ipip_probe_inner(inner)) return std::nullopt;
  std::size_t inner_total = read_u16(inner, 2);
  if (inner_total < k_ipv4_header_bytes || inner_total > inner.size()) return std::nullopt;
  IpipProbePacket parsed;
  std::memcpy(parsed.outer_source.data(), &packet[12], 4);
  parsed.payload = std::string_view(reinterpret_cast<const char*>(inner.data()) + k_ipv4_header_bytes,
                                    inner_total - k_ipv4_header_bytes);
  return parsed;
}

std::vector<sock_filter>
ipip_socket_filter()
{
  // X = the outer header's length; then the inner header's first byte,
  // protocol and destination. A load past the packet's end drops it.
  return {
    BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
    BPF_STMT(BPF_LD | BPF_B | BPF_IND, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x45, 0, 5),
    BPF_STMT(BPF_LD | BPF_B | BPF_IND, 9),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k_ipip_inner_protocol, 0, 3),
    BPF_STMT(BPF_LD | BPF_W | BPF_IND, 16),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k_ipip_inner_destination, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, 0xFFFF),
    BPF_STMT(BPF_RET | BPF_K, 0),
  };
}

} // namespace portmatrix
