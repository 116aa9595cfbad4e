// Test helpers for preflight: fixture files, the golden inventory's plan,
// packets.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "../plan/demo.hpp"
#include "preflight/rule_eval.hpp"

namespace portmatrix::testing {

inline std::string
read_fixture(const std::string& relative)
{
  std::ifstream file(std::string(PORTMATRIX_TEST_DATA) + "/" + relative);
  if (!file) throw std::runtime_error("missing fixture " + relative);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

inline Plan
golden_plan()
{
  return plan_for(read_fixture("golden/inventory.yaml"));
}

inline Packet
packet(const std::string& from, Protocol protocol, std::uint16_t port, const std::string& to = "10.0.0.21")
{
  return {*IpAddress::parse(from), *IpAddress::parse(to), protocol, port, "eth0"};
}

} // namespace portmatrix::testing
