// The key that matches a UDP probe with its answer: the address and port it
// went to.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace portmatrix::probing {

// Where a UDP probe went: its answer comes back from there, and an ICMP error
// about it quotes it.
struct UdpKey
{
  std::array<std::uint8_t, 16> host{};
  std::uint16_t port = 0;
  std::uint16_t family = 0;
  bool operator==(const UdpKey&) const = default;
};

struct UdpKeyHash
{
  std::size_t operator()(const UdpKey& key) const;
};

// The key of an IPv4 or IPv6 address; nullopt for any other family.
std::optional<UdpKey> udp_key(const sockaddr* address);

} // namespace portmatrix::probing
