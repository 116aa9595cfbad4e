// UdpKey: FNV-1a over the address, port and family.
#include "probe/udp_key.hpp"

#include <netinet/in.h>

#include <cstring>

namespace portmatrix::probing {

std::size_t
UdpKeyHash::operator()(const UdpKey& key) const
{
  std::uint64_t hash = 1469598103934665603ull; // FNV-1a
  auto mix = [&hash](std::uint8_t byte) { hash = (hash ^ byte) * 1099511628211ull; };
  for (auto byte : key.host) mix(byte);
  mix(std::uint8_t(key.port));
  mix(std::uint8_t(key.port >> 8));
  mix(std::uint8_t(key.family));
  return std::size_t(hash);
}

std::optional<UdpKey>
udp_key(const sockaddr* address)
{
  UdpKey key;
  key.family = address->sa_family;
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    std::memcpy(key.host.data(), &v4->sin_addr, sizeof v4->sin_addr);
    key.port = ntohs(v4->sin_port);
    return key;
  }
  if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    std::memcpy(key.host.data(), &v6->sin6_addr, sizeof v6->sin6_addr);
    key.port = ntohs(v6->sin6_port);
    return key;
  }
  return std::nullopt;
}

} // namespace portmatrix::probing
