// Fuzz target: preflight's reading of `iptables-save`, `ip6tables-save` and
// `ipset save` output (the input split at NUL bytes, in that order), then
// its decision for a few packets. Nothing may crash, throw or hang.
#include <cstdint>
#include <string_view>

#include "preflight/iptables.hpp"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  using namespace portmatrix;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string_view parts[3];
  for (auto& part : parts) {
    auto end = bytes.find('\0');
    part = bytes.substr(0, end);
    bytes = end == std::string_view::npos ? std::string_view() : bytes.substr(end + 1);
  }
  auto ruleset = IptablesRuleset::parse(parts[0], parts[1], parts[2]);
  (void)ruleset.empty();
  (void)ruleset.breakpoints();
  for (const char* source : {"10.0.0.1", "fd00::1"}) {
    Packet packet;
    packet.source = *IpAddress::parse(source);
    packet.destination = *IpAddress::parse(source[0] == 'f' ? "fd00::2" : "10.0.0.2");
    for (auto protocol : {Protocol::tcp, Protocol::udp}) {
      packet.protocol = protocol;
      for (std::uint16_t port : {22, 6443, 65535}) {
        packet.port = port;
        packet.interface = "eth0";
        (void)ruleset.decide(packet);
      }
    }
  }
  return 0;
}
