// This host's network interfaces (getifaddrs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace portmatrix {

// The name of the interface holding `address` ("10.0.0.11", "fd00::11"), or
// nullopt when no interface of this network namespace has it.
std::optional<std::string> interface_with_address(const std::string& address);

// The MTU of the interface holding `address` (SIOCGIFMTU, in this network
// namespace), or 0 when there is none or it cannot be read.
std::uint32_t mtu_of_address(const std::string& address);

} // namespace portmatrix
