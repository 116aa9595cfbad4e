// What every check report format shares: ports as text, results grouped by
// direction, notes on agents, the summary line.
#include "report/check_report_parts.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace portmatrix::check_report {

std::string
ports_text(const PortRange& range, Protocol protocol)
{
  return fmt::format("{}/{}", to_string(range), to_string(protocol));
}

std::vector<std::pair<std::string, std::vector<const FlowResult*>>>
by_direction(const CheckReport& report)
{
  std::vector<const FlowResult*> ordered;
  for (const auto& r : report.results) ordered.push_back(&r);
  std::stable_sort(ordered.begin(), ordered.end(), [](const FlowResult* a, const FlowResult* b) {
    auto rank = [](Verdict v) { return v == Verdict::fail ? 0 : v == Verdict::skip ? 1 : 2; };
    return rank(a->verdict) < rank(b->verdict);
  });
  std::vector<std::pair<std::string, std::vector<const FlowResult*>>> groups;
  std::map<std::string, std::size_t> index;
  for (const auto* r : ordered) {
    auto key = fmt::format("{} → {}", to_string(r->flow.from_role), to_string(r->flow.to_role));
    auto [it, added] = index.emplace(key, groups.size());
    if (added) groups.push_back({key, {}});
    groups[it->second].second.push_back(r);
  }
  return groups;
}

std::string
backends_text(const FlowResult& r)
{
  std::string reached;
  for (const auto& name : r.backends_reached) reached += (reached.empty() ? "" : ",") + name;
  return "reached " + (reached.empty() ? std::string("none") : reached);
}

// One line per agent that needs a word: unreachable, in error, blind, or
// sharing a port with a service.
std::vector<std::string>
agent_notes(const CheckReport& report)
{
  std::vector<std::string> notes;
  for (const auto& a : report.agents) {
    if (!a.reachable) notes.push_back(fmt::format("agent {}: unreachable ({})", a.node, a.error));
    else if (!a.error.empty()) notes.push_back(fmt::format("agent {}: {}", a.node, a.error));
    else if (!a.capture) notes.push_back(fmt::format("agent {}: no capture ({})", a.node, a.capture_error));
    for (const auto& owner : a.owners) notes.push_back(fmt::format("agent {}: port {} is held by a service", a.node, owner));
    if (!a.note.empty()) notes.push_back(fmt::format("agent {}: {}", a.node, a.note));
  }
  return notes;
}

std::string
summary_text(const CheckReport& report)
{
  return fmt::format("{} passed, {} failed, {} skipped in {:.2f} s", report.passed, report.failed, report.skipped,
                     report.duration.count() / 1000.0);
}

} // namespace portmatrix::check_report
