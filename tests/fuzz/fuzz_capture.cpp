// Fuzz target: the capture's packet parser and its kernel filter, side by
// side. The first byte picks the family, direction and packet type; the rest
// is the packet from its network header on. Whatever parse_arrived_probe
// takes from a peer of the inventory, the filter (run in user space by
// run_filter) must keep, and nothing from another source may pass it: a
// filter that drops a probe would make a check misread a flow, one that lets
// a stranger through would let a flood count as loss.
#include <linux/if_packet.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "agent/capture.hpp"
#include "agent/capture_filter.hpp"

namespace {

using namespace portmatrix;

std::vector<PeerNetwork>
peers()
{
  std::vector<PeerNetwork> out;
  for (const char* text : {"10.0.0.1", "192.168.0.0/16", "fd00::1", "fd01::/48"}) out.push_back(*parse_peer_network(text));
  return out;
}

bool
from_a_peer(const ArrivedProbe& probe, bool ipv4, const std::vector<PeerNetwork>& networks)
{
  for (const auto& network : networks) {
    if (network.ipv4 != ipv4) continue;
    bool match = true;
    for (int bit = 0; bit < network.prefix && match; ++bit) {
      int mask = 0x80 >> (bit % 8);
      match = (probe.peer[std::size_t(bit / 8)] & mask) == (network.bytes[std::size_t(bit / 8)] & mask);
    }
    if (match) return true;
  }
  return false;
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size < 1) return 0;
  static const auto networks = peers();
  static const std::array<std::uint8_t, 16> node4{10, 0, 0, 2};
  static const std::array<std::uint8_t, 16> node6{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  bool ipv4 = (data[0] & 1) == 0;
  auto direction = (data[0] & 2) ? Direction::outbound : Direction::inbound;
  bool with_peers = (data[0] & 4) != 0;
  std::uint8_t packet_type = (data[0] & 8) ? PACKET_OUTGOING : PACKET_HOST;
  std::uint16_t ethertype = (data[0] & 16) ? 0x0806 : ipv4 ? 0x0800 : 0x86DD;
  std::span<const std::uint8_t> packet(data + 1, size - 1);
  std::span<const std::uint8_t> node(ipv4 ? node4.data() : node6.data(), ipv4 ? 4 : 16);

  auto program = probe_filter(node, direction, with_peers ? std::span<const PeerNetwork>(networks) : std::span<const PeerNetwork>());
  bool kept = run_filter(program, packet, ethertype, packet_type) > 0;
  auto probe = parse_arrived_probe(packet, ethertype, node, direction);
  bool wanted_type = (packet_type == PACKET_OUTGOING) == (direction == Direction::outbound);
  if (probe && wanted_type) {
    bool peer_ok = direction == Direction::outbound || !with_peers || from_a_peer(*probe, ipv4, networks);
    if (peer_ok && !kept) std::abort();  // the kernel would drop a probe the check needs
    if (!peer_ok && kept) std::abort();  // a stranger's packet would be counted
  }
  if (kept && !wanted_type) std::abort(); // inbound keeps only arrivals, outbound only departures
  (void)parse_peer_network(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
