// This host's network interfaces (getifaddrs).
#pragma once

#include <optional>
#include <string>

namespace portmatrix {

// The name of the interface holding `address` ("10.0.0.11", "fd00::11"), or
// nullopt when no interface of this network namespace has it.
std::optional<std::string> interface_with_address(const std::string& address);

} // namespace portmatrix
