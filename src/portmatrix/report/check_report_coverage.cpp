// What a check covered (check --coverage, docs/coverage.md), in every
// format: the probes' coverage (every pair's path; every port between the
// representative pairs) and, in sample mode, the firewall evaluation's
// (every port of every inbound flow of every node).
#include "report/check_report_parts.hpp"

#include <fmt/format.h>

#include "util/text_table.hpp"

namespace portmatrix::check_report {

nlohmann::json
coverage_json(const CheckReport& report)
{
  const auto& c = report.coverage;
  nlohmann::json out{{"mode", to_string(report.coverage_options.mode)},
                     {"flows_full", c.flows_full},
                     {"flows_sampled", c.flows_sampled},
                     {"ports_required", c.ports_required},
                     {"ports_probed", c.ports_probed},
                     {"ruleset_groups", report.ruleset_groups},
                     {"group_pairs_full", c.representative_pairs.size()}};
  if (report.coverage_options.mode == CoverageMode::sample) {
    out["seed"] = report.coverage_options.seed;
    out["sample_ports"] = report.coverage_options.sample_ports;
  }
  return out;
}

// Each node's evaluate reply as its agent sent it (agent/evaluate.hpp: the
// same fields), with the node, whether it was complete and what was expected.
nlohmann::json
evaluation_json(const CheckReport& report)
{
  nlohmann::json out = nlohmann::json::array();
  for (const auto& node : report.evaluation) {
    auto item = nlohmann::json::parse(to_json(node.reply));
    item["node"] = node.node;
    item["complete"] = node.complete();
    if (!node.error.empty()) item["error"] = node.error;
    item["ports_expected"] = node.ports_expected;
    out.push_back(std::move(item));
  }
  return out;
}

std::string
coverage_text(const CheckReport& report)
{
  const auto& c = report.coverage;
  auto flows = c.flows_full + c.flows_sampled;
  if (report.coverage_options.mode == CoverageMode::full) {
    return fmt::format("coverage full: every port of every flow probed ({} flows, {} ports)", flows, c.ports_required);
  }
  return fmt::format("coverage sample (seed {}, {} random ports a flow): path coverage for every pair ({} flows); "
                     "every port probed on {} flows ({} pairs of {} ruleset groups, and the VIP), the edges and "
                     "the sample on the other {}; {} of {} ports probed",
                     report.coverage_options.seed, report.coverage_options.sample_ports, flows, c.flows_full,
                     c.representative_pairs.size(), report.ruleset_groups, c.flows_sampled, c.ports_probed,
                     c.ports_required);
}

std::string
evaluation_text(const CheckReport& report, Colour colour)
{
  if (report.evaluation.empty()) return {};
  std::string out = "\nFirewalls (each node's live rules, evaluated by its agent for every port of every inbound flow)\n";
  std::size_t complete = 0;
  std::uint64_t ports = 0, failed = 0;
  TextTable table({"Node", "Verdict", "From", "Ports", "Decision", "Rule"});
  for (const auto& node : report.evaluation) {
    complete += node.complete();
    ports += node.reply.ports;
    failed += node.reply.failed;
    auto error = node.error.empty() ? node.reply.error : node.error;
    if (!error.empty()) table.add({node.node, paint(colour, "1;33", "not evaluated"), "", "", "", error});
    for (const auto& f : node.reply.failures) {
      bool unknown = f.decision == Decision::unknown;
      table.add({node.node, unknown ? paint(colour, "1;33", "unknown") : paint(colour, "1;31", "fail"), f.from,
                 ports_text(f.ports, f.protocol), std::string(to_string(f.decision)), f.rule});
    }
    if (node.reply.failures_left_out > 0) {
      table.add({node.node, "", "", "", "", fmt::format("(+{} more)", node.reply.failures_left_out)});
    }
  }
  if (!table.empty()) out += table.render();
  out += fmt::format("  firewall coverage: {} of {} nodes evaluated on every port of every inbound flow ({} "
                     "ports), {} failing\n",
                     complete, report.evaluation.size(), ports, failed);
  return out;
}

} // namespace portmatrix::check_report
