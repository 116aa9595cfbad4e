#include "sim/planted_fault.hpp"

#include <fmt/format.h>

namespace portmatrix {

namespace {

std::string
flow_text(const FlowResult& result)
{
  return fmt::format("{} -> {} {}/{}", result.from, result.to, to_string(result.flow.range),
                     to_string(result.flow.protocol));
}

std::string
failures_text(const FlowResult& result)
{
  if (result.failures.empty()) return std::string(to_string(result.verdict)) + " (" + result.diagnosis + ")";
  std::string text;
  for (const auto& failure : result.failures) {
    text += fmt::format("{}{} {}: {}", text.empty() ? "" : "; ", to_string(failure.ports), failure.state,
                        failure.diagnosis);
  }
  return fmt::format("{}: {}", to_string(result.verdict), text);
}

} // namespace

bool
crosses(const FlowResult& result, const PlantedFault& fault)
{
  return result.to == fault.node && result.flow.expect == Expect::allow && result.flow.protocol == fault.protocol &&
         result.flow.range.min <= fault.port && fault.port <= result.flow.range.max;
}

std::vector<std::string>
differences(const CheckReport& report, const PlantedFault& fault)
{
  std::vector<std::string> found;
  std::size_t crossing = 0;
  for (const auto& result : report.results) {
    if (crosses(result, fault)) {
      ++crossing;
      bool exact = result.verdict == Verdict::fail && result.failures.size() == 1 &&
                   result.failures.front().ports == PortRange{fault.port, fault.port} &&
                   result.failures.front().diagnosis == fault.diagnosis;
      if (!exact) {
        found.push_back(fmt::format("{} crosses the planted fault but is not '{}: {}' ({})", flow_text(result),
                                    fault.port, fault.diagnosis, failures_text(result)));
      }
    } else if (result.verdict != Verdict::pass) {
      found.push_back(fmt::format("{} does not cross the planted fault, yet {}", flow_text(result),
                                  failures_text(result)));
    }
  }
  if (crossing == 0) {
    found.push_back(fmt::format("no flow of the report crosses the planted fault ({} {}/{})", fault.node, fault.port,
                                to_string(fault.protocol)));
  }
  return found;
}

} // namespace portmatrix
