// The check report for the terminal: a table per direction, failures first,
// colour when asked, notes on agents, egress failures, the summary.
#include "report/check_report_parts.hpp"

#include <fmt/format.h>

#include "util/text_table.hpp"

namespace portmatrix::check_report {

std::string
render_table(const CheckReport& report, Colour colour)
{
  std::string out;
  for (const auto& [key, results] : by_direction(report)) {
    out += "\n" + key + "\n";
    TextTable table({"Verdict", "From", "To", "Ports", "Purpose", "Diagnosis", "Detail"});
    for (const auto* r : results) {
      std::string verdict(to_string(r->verdict));
      verdict = paint(colour, r->verdict == Verdict::pass ? "32" : r->verdict == Verdict::fail ? "1;31" : "33", verdict);
      std::string detail;
      if (!r->failures.empty()) {
        const auto& f = r->failures.front();
        detail = fmt::format("{} {}: {}", to_string(f.ports), f.state, f.detail);
        if (r->failures.size() > 1) detail += fmt::format(" (+{} more)", r->failures.size() - 1);
      }
      if (!r->answered_by.empty()) detail += (detail.empty() ? "" : "; ") + ("answered by " + r->answered_by);
      if (r->to == "vip") detail += (detail.empty() ? "" : "; ") + backends_text(*r);
      table.add({verdict, r->from, r->to, ports_text(r->flow.range, r->flow.protocol), r->flow.purpose, r->diagnosis,
                 detail});
    }
    auto text = table.render();
    out += text;
  }
  auto notes = agent_notes(report);
  if (!notes.empty()) {
    out += "\nAgents\n";
    for (const auto& note : notes) out += "  " + note + "\n";
  }
  if (!report.egress.empty()) {
    // Failures only: one line per node and host that did not answer as it must.
    out += "\nEgress (from every node)\n";
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
  }
  out += evaluation_text(report, colour);
  out += "\n" + coverage_text(report) + "\n";
  out += summary_text(report) + "\n";
  return out;
}

} // namespace portmatrix::check_report
