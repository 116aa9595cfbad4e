// The check report for the terminal, read at a glance: the overall line; the
// failures grouped by cause and place ("master2 drops 8472/udp from 5
// sources: dropped-by-destination-firewall"); what could not be tested, per
// node, and the requirements the inventory leaves untested; a line per direction; notes on agents and egress failures; the
// overall line again. --verbose adds a table per direction with every flow.
// Colour when asked; the columns stay aligned (TextTable ignores escapes).
#include "report/check_report_parts.hpp"
#include "report/untested_report.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "util/text_table.hpp"

namespace portmatrix::check_report {

namespace {

// Every flow, a table per direction, failures first.
std::string
every_flow(const CheckReport& report, Colour colour)
{
  std::string out;
  for (const auto& [key, results] : by_direction(report)) {
    out += "\n" + key + "\n";
    TextTable table({"Verdict", "From", "To", "Ports", "Purpose", "Diagnosis", "Detail"});
    for (const auto* r : results) {
      auto verdict = paint(colour, verdict_colour(r->verdict), std::string(to_string(r->verdict)));
      std::string detail;
      if (!r->failures.empty()) {
        const auto& f = r->failures.front();
        detail = fmt::format("{}{}: {}", failure_ports(f.ports, r->flow.protocol), f.state, f.detail);
        if (r->failures.size() > 1) detail += fmt::format(" (+{} more)", r->failures.size() - 1);
      }
      if (!r->answered_by.empty()) detail += (detail.empty() ? "" : "; ") + ("answered by " + r->answered_by);
      if (r->to == "vip") detail += (detail.empty() ? "" : "; ") + backends_text(*r);
      table.add({verdict, r->from, r->to, ports_text(r->flow.range, r->flow.protocol), r->flow.purpose, r->diagnosis,
                 detail});
    }
    out += table.render();
  }
  return out;
}

std::string
failures(const CheckReport& report, Colour colour)
{
  auto groups = cause_groups(report, Verdict::fail);
  if (groups.empty()) return {};
  std::string out = fmt::format("\n{} ({} flows)\n", paint(colour, verdict_colour(Verdict::fail), "Failures"), report.failed);
  for (const auto& group : groups) out += "  " + cause_text(group) + "\n";
  return out;
}

std::string
untested(const CheckReport& report, Colour colour)
{
  auto places = untested_places(report);
  if (places.empty()) return {};
  std::string out = fmt::format("\n{} ({} flows)\n", paint(colour, verdict_colour(Verdict::skip), "Untested"), report.skipped);
  for (const auto& place : places) out += "  " + untested_text(place) + "\n";
  return out;
}

// Requirements the inventory gives no flow to check, with why and what to add.
std::string
requirements_untested(const CheckReport& report, Colour colour)
{
  auto lines = untested_lines(report.untested);
  if (lines.empty()) return {};
  std::string out = "\nUntested requirements\n";
  for (const auto& line : lines) out += "  " + paint(colour, "33", line) + "\n";
  return out;
}

std::string
directions(const CheckReport& report, Colour colour)
{
  if (report.results.empty()) return {};
  TextTable table({"Direction", "Passed", "Failed", "Skipped"});
  auto count = [&](std::size_t n, Verdict verdict) {
    return n == 0 ? std::string("0") : paint(colour, verdict_colour(verdict), std::to_string(n));
  };
  for (const auto& c : direction_counts(report)) {
    table.add({c.direction, count(c.passed, Verdict::pass), count(c.failed, Verdict::fail), count(c.skipped, Verdict::skip)});
  }
  std::string out = "\n";
  auto text = table.render();
  for (std::size_t at = 0; at < text.size();) {
    auto end = std::min(text.find('\n', at), text.size() - 1);
    out += "  " + text.substr(at, end + 1 - at);
    at = end + 1;
  }
  return out;
}

std::string
egress(const CheckReport& report, Colour colour)
{
  if (report.egress.empty()) return {};
  // Failures only: one line per node and host that did not answer as it must.
  std::string out = "\nEgress (from every node)\n";
  TextTable table({"Node", "Verdict", "Host", "Port", "Via", "Detail"});
  std::size_t ok = 0;
  for (const auto& node : report.egress) {
    if (!node.error.empty()) table.add({node.node, paint(colour, "1;31", "error"), "", "", "", node.error});
    for (const auto& r : node.results) {
      if (r.verdict == EgressVerdict::ok) {
        ++ok;
        continue;
      }
      table.add({node.node, paint(colour, "1;31", std::string(to_string(r.verdict))), r.target.host,
                 std::to_string(r.target.port.port), r.proxy.empty() ? "direct" : r.proxy, r.detail});
    }
  }
  if (!table.empty()) out += table.render();
  out += fmt::format("  {} host check(s) ok on {} node(s)\n", ok, report.egress.size());
  return out;
}

// Each node's preflight counts, and what failed.
std::string
preflight(const CheckReport& report, Colour colour)
{
  if (report.preflight.empty()) return {};
  std::string out = "\nPreflight (each node, before its agent)\n";
  for (const auto& node : report.preflight) {
    auto line = preflight_text(node);
    out += "  " + (node.error.empty() && node.failed == 0 ? line : paint(colour, "1;31", line)) + "\n";
    for (const auto& failure : node.failures) out += "    " + failure + "\n";
  }
  return out;
}

} // namespace

std::string
render_table(const CheckReport& report, Colour colour, CheckDetail detail)
{
  std::string out = overall_line(report, colour) + "\n";
  switch (detail) {
  case CheckDetail::every_flow: out += every_flow(report, colour); break;
  case CheckDetail::summary: break;
  }
  out += failures(report, colour);
  out += untested(report, colour);
  out += requirements_untested(report, colour);
  out += directions(report, colour);
  auto notes = agent_notes(report);
  if (!notes.empty()) {
    out += "\nAgents\n";
    for (const auto& note : notes) out += "  " + note + "\n";
  }
  out += egress(report, colour);
  out += preflight(report, colour);
  out += evaluation_text(report, colour);
  out += "\n" + coverage_text(report) + "\n";
  out += overall_line(report, colour) + "\n";
  return out;
}

} // namespace portmatrix::check_report
