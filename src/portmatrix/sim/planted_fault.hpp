// A fault planted on purpose in a simulated cluster (the demo's), and what
// a check must report for it: exactly the flows that cross it fail, at its
// port, with its diagnosis; every other flow passes. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "check/check.hpp"

namespace portmatrix {

struct PlantedFault
{
  std::string node;      // whose firewall drops
  Protocol protocol = Protocol::udp;
  std::uint16_t port = 0;
  std::string diagnosis; // what the check must say about each flow it breaks
};

// The flows the fault breaks: allowed flows to `fault.node` over
// `fault.protocol` whose range holds `fault.port`.
bool crosses(const FlowResult& result, const PlantedFault& fault);

// What differs between `report` and the fault, one line each (empty: the
// report is exactly the fault). A flow that crosses it must fail with one
// failure, at the port, with the diagnosis; every other flow must pass; and
// at least one flow must cross it.
std::vector<std::string> differences(const CheckReport& report, const PlantedFault& fault);

} // namespace portmatrix
