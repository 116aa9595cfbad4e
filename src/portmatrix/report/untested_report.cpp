#include "report/untested_report.hpp"

namespace portmatrix {

nlohmann::json
untested_json(const std::vector<Untested>& untested)
{
  nlohmann::json out = nlohmann::json::array();
  for (const auto& entry : untested) {
    nlohmann::json requirements = nlohmann::json::array();
    for (const auto& item : entry.requirements) requirements.push_back(item.direction);
    out.push_back({{"code", to_string(entry.cause)}, {"message", entry.message}, {"requirements", std::move(requirements)}});
  }
  return out;
}

std::vector<std::string>
untested_lines(const std::vector<Untested>& untested)
{
  std::vector<std::string> lines;
  for (const auto& entry : untested) {
    lines.push_back("warning: " + entry.message);
    for (const auto& item : entry.requirements) {
      lines.push_back("  " + item.direction + (item.requirement->expect == Expect::deny ? " (must be denied)" : ""));
    }
  }
  return lines;
}

} // namespace portmatrix
