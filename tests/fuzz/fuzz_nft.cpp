// Fuzz target: preflight's reading of `nft -j list ruleset` output, then its
// decision for a few packets and the port breakpoints. Nothing may crash,
// throw or hang.
#include <cstdint>
#include <string_view>

#include "preflight/nftables.hpp"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  using namespace portmatrix;
  std::string_view json(reinterpret_cast<const char*>(data), size);
  auto ruleset = NftRuleset::parse(json);
  if (!ruleset) return 0;
  (void)ruleset->breakpoints();
  for (const char* source : {"10.0.0.1", "fd00::1"}) {
    Packet packet;
    packet.source = *IpAddress::parse(source);
    packet.destination = *IpAddress::parse(source[0] == 'f' ? "fd00::2" : "10.0.0.2");
    for (auto protocol : {Protocol::tcp, Protocol::udp}) {
      packet.protocol = protocol;
      for (std::uint16_t port : {22, 6443, 65535}) {
        packet.port = port;
        packet.interface = "eth0";
        (void)ruleset->decide(packet);
      }
    }
  }
  return 0;
}
