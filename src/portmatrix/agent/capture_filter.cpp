// The program's layout, so that every conditional jump (8-bit offsets) stays
// short however many peers there are:
//
//   checks of the packet itself   (fail: to "drop", success: to "peers")
//   drop:  ret 0
//   peers: one block per peer network, each "load, mask, compare" per
//          address word, a mismatch going to the next block and a match
//          to "keep" with an unconditional jump (32-bit offset)
//          ret 0                   (no peer matched)
//   keep:  ret k_capture_snap_length
#include "agent/capture_filter.hpp"

#include <arpa/inet.h>
#include <linux/if_packet.h>

#include <cstring>
#include <stdexcept>

#include "probe/raw_packet.hpp"

namespace portmatrix {
namespace {

constexpr std::uint32_t k_ipv4_inner_version = 0x45;

std::uint32_t
read_u32(std::span<const std::uint8_t> bytes, std::size_t offset)
{
  return (std::uint32_t(bytes[offset]) << 24) | (std::uint32_t(bytes[offset + 1]) << 16) |
         (std::uint32_t(bytes[offset + 2]) << 8) | bytes[offset + 3];
}

// Builds a classic BPF program with jumps to labels, resolved by finish().
class FilterBuilder
{
public:
  using Label = std::size_t;
  static constexpr Label next = ~std::size_t(0);

  Label label()
  {
    m_labels.push_back(next);
    return m_labels.size() - 1;
  }
  void place(Label label) { m_labels[label] = m_code.size(); }

  void load(std::uint16_t size, std::uint32_t offset) { m_code.push_back(BPF_STMT(BPF_LD | size | BPF_ABS, offset)); }
  void statement(std::uint16_t code, std::uint32_t k) { m_code.push_back(BPF_STMT(code, k)); }
  // if (A <op> k) goto if_true else goto if_false (labels, or `next`)
  void jump(std::uint16_t op, std::uint32_t k, Label if_true, Label if_false)
  {
    m_jumps.push_back({m_code.size(), if_true, if_false, false});
    m_code.push_back(BPF_JUMP(BPF_JMP | op | BPF_K, k, 0, 0));
  }
  void jump_always(Label to)
  {
    m_jumps.push_back({m_code.size(), to, next, true});
    m_code.push_back(BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0));
  }

  std::vector<sock_filter> finish()
  {
    auto offset = [&](std::size_t from, Label target) -> std::size_t {
      return target == next ? 0 : m_labels.at(target) - from - 1;
    };
    for (const auto& jump : m_jumps) {
      auto if_true = offset(jump.index, jump.if_true);
      if (jump.always) {
        m_code[jump.index].k = std::uint32_t(if_true);
        continue;
      }
      auto if_false = offset(jump.index, jump.if_false);
      if (if_true > 255 || if_false > 255) throw std::logic_error("capture filter: a conditional jump is too long");
      m_code[jump.index].jt = std::uint8_t(if_true);
      m_code[jump.index].jf = std::uint8_t(if_false);
    }
    return std::move(m_code);
  }

private:
  struct Jump
  {
    std::size_t index;
    Label if_true;
    Label if_false;
    bool always;
  };
  std::vector<sock_filter> m_code;
  std::vector<std::size_t> m_labels;
  std::vector<Jump> m_jumps;
};

// The packet checks: the kernel-side twin of parse_arrived_probe.
void
packet_checks(FilterBuilder& filter, std::span<const std::uint8_t> node, Direction direction,
              FilterBuilder::Label pass, FilterBuilder::Label drop)
{
  constexpr auto next = FilterBuilder::next;
  bool ipv4 = node.size() == 4;
  bool outbound = direction == Direction::outbound;
  // Outbound only our own departures; inbound never them (PACKET_IGNORE_OUTGOING
  // does so too, where the kernel has it: 4.20 and later).
  filter.load(BPF_B, std::uint32_t(SKF_AD_OFF + SKF_AD_PKTTYPE));
  filter.jump(BPF_JEQ, PACKET_OUTGOING, outbound ? next : drop, outbound ? drop : next);
  filter.load(BPF_H, std::uint32_t(SKF_AD_OFF + SKF_AD_PROTOCOL));
  filter.jump(BPF_JEQ, ipv4 ? k_ethertype_ipv4 : k_ethertype_ipv6, next, drop);
  auto node_offset = address_offsets(ipv4, direction).node;
  for (std::size_t i = 0; i < node.size(); i += 4) {
    filter.load(BPF_W, node_offset + std::uint32_t(i));
    filter.jump(BPF_JEQ, read_u32(node, i), next, drop);
  }
  if (ipv4) {
    filter.load(BPF_H, 6);
    filter.jump(BPF_JSET, k_ipv4_fragment_offset_mask, drop, next);
    filter.load(BPF_B, 9);
  } else {
    filter.load(BPF_B, 6);
  }
  filter.jump(BPF_JEQ, k_ip_udp, outbound ? drop : pass, next);
  // Inbound IPv4: an IP-in-IP probe (probe/raw_packet.hpp), by its inner header.
  auto ipip = filter.label();
  if (ipv4 && !outbound) filter.jump(BPF_JEQ, k_ip_protocol_ipip, ipip, next);
  filter.jump(BPF_JEQ, k_ip_tcp, next, drop);
  if (ipv4) {
    filter.statement(BPF_LDX | BPF_B | BPF_MSH, 0); // X = IPv4 header length
    filter.statement(BPF_LD | BPF_B | BPF_IND, k_tcp_flags_offset);
  } else {
    filter.load(BPF_B, k_ipv6_header + k_tcp_flags_offset);
  }
  filter.statement(BPF_ALU | BPF_AND | BPF_K, k_tcp_syn | k_tcp_ack);
  filter.jump(BPF_JEQ, k_tcp_syn, pass, drop);
  filter.place(ipip);
  if (ipv4 && !outbound) {
    filter.statement(BPF_LDX | BPF_B | BPF_MSH, 0); // X = the outer header's length
    filter.statement(BPF_LD | BPF_B | BPF_IND, 0);
    filter.jump(BPF_JEQ, k_ipv4_inner_version, next, drop);
    filter.statement(BPF_LD | BPF_H | BPF_IND, 6);
    filter.jump(BPF_JSET, k_ipv4_fragment_offset_mask, drop, next);
    filter.statement(BPF_LD | BPF_B | BPF_IND, 9);
    filter.jump(BPF_JEQ, k_ipip_inner_protocol, next, drop);
    filter.statement(BPF_LD | BPF_W | BPF_IND, 16);
    filter.jump(BPF_JEQ, k_ipip_inner_destination, pass, drop);
  }
}

// One block per peer network: a match jumps to `keep`, a mismatch falls to
// the next block; after the last, the packet is dropped.
void
peer_checks(FilterBuilder& filter, std::span<const PeerNetwork> peers, bool ipv4, FilterBuilder::Label keep)
{
  constexpr auto next = FilterBuilder::next;
  auto peer_offset = address_offsets(ipv4, Direction::inbound).peer;
  for (const auto& peer : peers) {
    auto mismatch = filter.label();
    for (int word = 0; word * 32 < peer.prefix; ++word) {
      int bits = std::min(32, peer.prefix - word * 32);
      std::uint32_t mask = bits == 32 ? 0xFFFFFFFFu : ~(0xFFFFFFFFu >> bits);
      filter.load(BPF_W, peer_offset + std::uint32_t(word * 4));
      if (bits < 32) filter.statement(BPF_ALU | BPF_AND | BPF_K, mask);
      filter.jump(BPF_JEQ, read_u32(peer.bytes, std::size_t(word) * 4) & mask, next, mismatch);
    }
    filter.jump_always(keep);
    filter.place(mismatch);
  }
  filter.statement(BPF_RET | BPF_K, 0);
}

} // namespace

AddressOffsets
address_offsets(bool ipv4, Direction direction)
{
  std::uint32_t source = ipv4 ? 12 : 8;
  std::uint32_t destination = ipv4 ? 16 : 24;
  return direction == Direction::inbound ? AddressOffsets{destination, source} : AddressOffsets{source, destination};
}

std::optional<PeerNetwork>
parse_peer_network(const std::string& text)
{
  auto slash = text.find('/');
  auto address = text.substr(0, slash);
  PeerNetwork network;
  if (inet_pton(AF_INET, address.c_str(), network.bytes.data()) == 1) {
    network.ipv4 = true;
  } else if (inet_pton(AF_INET6, address.c_str(), network.bytes.data()) == 1) {
    network.ipv4 = false;
  } else {
    return std::nullopt;
  }
  int bits = network.ipv4 ? 32 : 128;
  network.prefix = bits;
  if (slash != std::string::npos) {
    auto length = text.substr(slash + 1);
    if (length.empty() || length.size() > 3 || length.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    network.prefix = std::stoi(length);
    if (network.prefix > bits) return std::nullopt;
  }
  return network;
}

std::vector<sock_filter>
probe_filter(std::span<const std::uint8_t> node, Direction direction, std::span<const PeerNetwork> peers)
{
  bool ipv4 = node.size() == 4;
  std::vector<PeerNetwork> same_family;
  if (direction == Direction::inbound) {
    for (const auto& peer : peers) {
      if (peer.ipv4 == ipv4) same_family.push_back(peer);
    }
  }
  FilterBuilder filter;
  auto drop = filter.label();
  auto pass = filter.label();
  auto keep = filter.label();
  packet_checks(filter, node, direction, same_family.empty() ? keep : pass, drop);
  filter.place(drop);
  filter.statement(BPF_RET | BPF_K, 0);
  if (!same_family.empty()) {
    filter.place(pass);
    peer_checks(filter, same_family, ipv4, keep);
  }
  filter.place(keep);
  filter.statement(BPF_RET | BPF_K, k_capture_snap_length);
  return filter.finish();
}

std::uint32_t
run_filter(std::span<const sock_filter> program, std::span<const std::uint8_t> packet, std::uint16_t ethertype,
           std::uint8_t packet_type)
{
  std::uint32_t a = 0;
  std::uint32_t x = 0;
  // A load of `size` bytes at `offset`; nullopt past the packet's end.
  auto load = [&](std::uint16_t size, std::uint64_t offset) -> std::optional<std::uint32_t> {
    if (offset >= std::uint32_t(SKF_AD_OFF)) {
      if (offset == std::uint32_t(SKF_AD_OFF + SKF_AD_PROTOCOL)) return ethertype;
      if (offset == std::uint32_t(SKF_AD_OFF + SKF_AD_PKTTYPE)) return packet_type;
      return std::nullopt;
    }
    std::size_t bytes = size == BPF_W ? 4 : size == BPF_H ? 2 : 1;
    if (offset + bytes > packet.size()) return std::nullopt;
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i) value = (value << 8) | packet[std::size_t(offset) + i];
    return value;
  };
  for (std::size_t pc = 0; pc < program.size(); ++pc) {
    const auto& in = program[pc];
    switch (in.code) {
    case BPF_LD | BPF_W | BPF_ABS:
    case BPF_LD | BPF_H | BPF_ABS:
    case BPF_LD | BPF_B | BPF_ABS:
    case BPF_LD | BPF_W | BPF_IND:
    case BPF_LD | BPF_H | BPF_IND:
    case BPF_LD | BPF_B | BPF_IND: {
      bool indirect = BPF_MODE(in.code) == BPF_IND;
      auto value = load(std::uint16_t(BPF_SIZE(in.code)), std::uint64_t(in.k) + (indirect ? x : 0));
      if (!value) return 0;
      a = *value;
      break;
    }
    case BPF_LDX | BPF_B | BPF_MSH:
      if (in.k >= packet.size()) return 0;
      x = std::uint32_t(packet[in.k] & 0x0F) * 4;
      break;
    case BPF_ALU | BPF_AND | BPF_K: a &= in.k; break;
    case BPF_JMP | BPF_JA: pc += in.k; break;
    case BPF_JMP | BPF_JEQ | BPF_K: pc += a == in.k ? in.jt : in.jf; break;
    case BPF_JMP | BPF_JSET | BPF_K: pc += (a & in.k) != 0 ? in.jt : in.jf; break;
    case BPF_RET | BPF_K: return in.k;
    default: return 0; // not an instruction probe_filter emits
    }
  }
  return 0;
}

} // namespace portmatrix
