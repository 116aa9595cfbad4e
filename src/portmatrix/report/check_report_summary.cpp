// What every check report format shares: ports as text, results grouped by
// direction, notes on agents, the summary line.
#include "report/check_report_parts.hpp"
#include "report/untested_report.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include <fmt/format.h>

namespace portmatrix::check_report {

std::string
ports_text(const PortRange& range, Protocol protocol)
{
  if (!has_ports(protocol)) return fmt::format("{} (IP protocol {})", to_string(protocol), ip_protocol_number(protocol));
  return fmt::format("{}/{}", to_string(range), to_string(protocol));
}

std::string
failure_ports(const PortRange& range, Protocol protocol)
{
  return has_ports(protocol) ? to_string(range) + " " : std::string();
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
// sharing a port with a service; then the report's warnings.
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
  for (const auto& warning : report.warnings) notes.push_back("warning: " + warning);
  return notes;
}

std::string
summary_text(const CheckReport& report)
{
  auto untested = untested_count(report.untested);
  return fmt::format("{} passed, {} failed, {} skipped{} in {:.2f} s", report.passed, report.failed, report.skipped,
                     untested ? fmt::format(", {} requirement{} untested", untested, untested == 1 ? "" : "s") : "",
                     report.duration.count() / 1000.0);
}

std::string_view
run_status(const CheckReport& report)
{
  if (exit_status(report) == 0) return "pass";
  bool egress_failed = std::any_of(report.egress.begin(), report.egress.end(), [](const NodeEgress& n) { return !n.ok(); });
  bool strict_warning = report.untested_policy == UntestedPolicy::fail && !report.warnings.empty();
  return report.failed > 0 || egress_failed || strict_warning ? "fail" : "incomplete";
}

std::string
overall_line(const CheckReport& report, Colour colour)
{
  auto status = run_status(report);
  std::string word = status == "pass" ? "PASS" : status == "fail" ? "FAIL" : "INCOMPLETE";
  auto code = status == "pass" ? "1;32" : status == "fail" ? "1;31" : "1;33";
  return fmt::format("{} {}: {}", paint(colour, code, word), report.cluster, summary_text(report));
}

std::string
preflight_text(const NodePreflight& node)
{
  if (!node.error.empty()) return fmt::format("{}: not run: {}", node.node, node.error);
  return fmt::format("{}: {} passed, {} failed, {} warning{}", node.node, node.passed, node.failed, node.warnings,
                     node.warnings == 1 ? "" : "s");
}

std::string_view
verdict_colour(Verdict verdict)
{
  switch (verdict) {
  case Verdict::pass: return "32";
  case Verdict::fail: return "1;31";
  case Verdict::skip: return "33";
  }
  return "0";
}

namespace {

// Causes that sit at the source: the group is placed there.
bool
at_source(std::string_view diagnosis)
{
  return diagnosis == "blocked-by-source-firewall";
}

bool
agent_reachable(const CheckReport& report, const std::string& node)
{
  return std::any_of(report.agents.begin(), report.agents.end(),
                     [&](const AgentStatus& a) { return a.node == node && a.reachable && a.error.empty(); });
}

} // namespace

std::vector<CauseGroup>
cause_groups(const CheckReport& report, Verdict verdict)
{
  std::vector<CauseGroup> groups;
  std::map<std::tuple<std::string, bool, std::string, std::string>, std::size_t> index;
  auto add = [&](const FlowResult& r, const std::string& ports, const std::string& diagnosis, const std::string& detail,
                 bool source_side) {
    const auto& place = source_side ? r.from : r.to;
    const auto& other = source_side ? r.to : r.from;
    auto [it, added] = index.emplace(std::tuple(place, source_side, ports, diagnosis), groups.size());
    if (added) groups.push_back({place, source_side, ports, diagnosis, detail, {}, {}});
    auto& group = groups[it->second];
    if (std::find(group.others.begin(), group.others.end(), other) == group.others.end()) group.others.push_back(other);
    if (group.flows.empty() || group.flows.back() != &r) group.flows.push_back(&r);
  };
  for (const auto& r : report.results) {
    if (r.verdict != verdict) continue;
    if (verdict == Verdict::skip) {
      // Untested: where the agent that could not be asked is; the whole flow.
      bool source_side = !agent_reachable(report, r.from) || r.to == "vip" || agent_reachable(report, r.to);
      std::string detail = r.failures.empty() ? std::string() : r.failures.front().detail;
      add(r, ports_text(r.flow.range, r.flow.protocol), r.diagnosis, detail, source_side);
      continue;
    }
    if (r.failures.empty()) {
      add(r, ports_text(r.flow.range, r.flow.protocol), r.diagnosis, {}, at_source(r.diagnosis));
      continue;
    }
    for (const auto& f : r.failures) add(r, ports_text(f.ports, r.flow.protocol), f.diagnosis, f.detail, at_source(f.diagnosis));
  }
  return groups;
}

std::string
cause_text(const CauseGroup& group)
{
  // What the place does to the flows, by diagnosis; the diagnosis follows as is.
  static const std::map<std::string, std::string, std::less<>> k_verbs = {
    {"dropped-by-destination-firewall", "drops"},
    {"rejected-by-destination-firewall", "rejects"},
    {"no-listener", "has no listener on"},
    {"lost-in-network", "never receives"},
    {"wrong-responder", "is answered by the wrong host on"},
    {"unexpectedly-open", "is open on"},
    {"blocked-by-source-firewall", "blocks"},
    {"filtered", "does not answer on"},
    {"agent-unreachable", "could not be asked about"},
  };
  auto verb = k_verbs.find(group.diagnosis);
  std::string what = verb != k_verbs.end() ? verb->second : "fails on";
  auto n = group.others.size();
  std::string ends = group.place_is_source ? (n == 1 ? "destination" : "destinations") : (n == 1 ? "source" : "sources");
  std::string names;
  constexpr std::size_t k_named = 6;
  for (std::size_t i = 0; i < n && i < k_named; ++i) names += (i ? ", " : "") + group.others[i];
  if (n > k_named) names += fmt::format(" and {} more", n - k_named);
  std::string flows = group.flows.size() == n ? "" : fmt::format(", {} flows", group.flows.size());
  return fmt::format("{} {} {} {} {} {}{}: {} ({})", group.place, what, group.ports, group.place_is_source ? "to" : "from",
                     n, ends, flows, group.diagnosis.empty() ? "?" : group.diagnosis, names);
}

std::vector<UntestedPlace>
untested_places(const CheckReport& report)
{
  std::vector<UntestedPlace> places;
  std::map<std::pair<std::string, std::string>, std::size_t> index;
  for (const auto& group : cause_groups(report, Verdict::skip)) {
    auto [it, added] = index.emplace(std::pair(group.place, group.diagnosis), places.size());
    if (added) places.push_back({group.place, group.diagnosis, 0, 0, {}, group.flows.front()});
    auto& place = places[it->second];
    (group.place_is_source ? place.from : place.to) += group.flows.size();
    if (place.why.empty()) place.why = group.detail;
  }
  for (auto& place : places) {
    for (const auto& a : report.agents) {
      if (a.node == place.node && !a.error.empty()) place.why = a.error;
    }
  }
  return places;
}

std::string
untested_text(const UntestedPlace& place)
{
  std::string sides;
  if (place.from > 0) sides = fmt::format("{} from it", place.from);
  if (place.to > 0) sides += fmt::format("{}{} to it", sides.empty() ? "" : ", ", place.to);
  return fmt::format("{}: {} flows untested ({}): {}{}", place.node, place.from + place.to, sides,
                     place.diagnosis.empty() ? "?" : place.diagnosis, place.why.empty() ? "" : " (" + place.why + ")");
}

std::vector<DirectionCounts>
direction_counts(const CheckReport& report)
{
  std::vector<DirectionCounts> counts;
  std::map<std::string, std::size_t> index;
  for (const auto& r : report.results) {
    auto key = fmt::format("{} → {}", to_string(r.flow.from_role), to_string(r.flow.to_role));
    auto [it, added] = index.emplace(key, counts.size());
    if (added) counts.push_back({key});
    auto& c = counts[it->second];
    switch (r.verdict) {
    case Verdict::pass: ++c.passed; break;
    case Verdict::fail: ++c.failed; break;
    case Verdict::skip: ++c.skipped; break;
    }
  }
  return counts;
}

} // namespace portmatrix::check_report
