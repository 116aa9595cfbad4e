// Drift by meaning (drift.hpp). Two evaluations of every inbound flow of the
// node: by the whole live ruleset (what packets meet: a drop added anywhere,
// in our table or another, shows as a required flow dropped, with the rule),
// and by portmatrix's table alone (which, as generated, admits exactly the
// required flows: a difference there means the table itself was edited).
#include "apply/drift.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace portmatrix {
namespace {

void
add_flow_findings(const std::vector<FirewallResult>& results, std::vector<DriftFinding>& findings,
                  const std::string& edited_prefix)
{
  for (const auto& result : results) {
    if (result.status == CheckStatus::pass || result.status == CheckStatus::skip) continue;
    std::string kind;
    if (result.decision == Decision::unknown) kind = "undecided";
    else kind = result.expect == Expect::allow ? "required-dropped" : "denied-admitted";
    if (!edited_prefix.empty()) {
      if (kind == "undecided") continue; // said once, by the whole ruleset
      findings.push_back({"table-edited", result, edited_prefix + kind});
      continue;
    }
    findings.push_back({kind, result, {}});
  }
}

std::string
flow_text(const FirewallResult& flow)
{
  return fmt::format("{} -> {} {}/{} ({}): {}, by {}", flow.from, flow.to_address, to_string(flow.protocol),
                     to_string(flow.ports), flow.purpose, to_string(flow.decision),
                     flow.rule.empty() ? "no rule" : flow.rule);
}

} // namespace

DriftReport
nft_drift(const Plan& plan, const Node& node, const NftRuleset& live, const std::optional<NftRuleset>& ours,
          const std::string& interface)
{
  DriftReport report;
  report.node = node.name;
  report.address = node.address;
  report.table_present = ours.has_value();
  auto results = check_firewall(plan, node, {&live}, interface);
  report.flows_checked = results.size();
  add_flow_findings(results, report.findings, {});
  if (!ours) {
    report.findings.push_back({"table-missing", {}, "no table inet portmatrix: portmatrix's rules are not applied"});
  } else if (ours->empty()) {
    report.findings.push_back({"table-edited", {}, "table inet portmatrix has no chain on the input hook"});
  } else {
    add_flow_findings(check_firewall(plan, node, {&*ours}, interface), report.findings,
                      "portmatrix's table alone: ");
  }
  for (const auto* chain : live.input_chains()) {
    if (chain->family == "inet" && chain->table == "portmatrix") continue;
    report.other_filters.push_back(fmt::format("nftables {} {} chain {} (input hook, priority {}, policy {}, {} rules)",
                                               chain->family, chain->table, chain->name, chain->priority,
                                               chain->policy, chain->rules.size()));
  }
  return report;
}

std::string
render_drift_table(const DriftReport& report)
{
  std::string out = fmt::format("firewall status of {} ({}), {}: {}\n", report.node, report.address, report.backend,
                                report.in_sync() ? "in sync" : "DRIFT");
  out += fmt::format("  portmatrix's table: {}; {} runs of ports of inbound flows evaluated\n",
                     report.table_present ? "present" : "missing", report.flows_checked);
  for (const auto& finding : report.findings) {
    out += fmt::format("  {}: {}\n", finding.kind,
                       finding.flow.from.empty() ? finding.detail
                                                 : (finding.detail.empty() ? "" : finding.detail + ": ") + flow_text(finding.flow));
  }
  for (const auto& other : report.other_filters) out += fmt::format("  also filters input: {}\n", other);
  return out;
}

std::string
render_drift_json(const DriftReport& report)
{
  nlohmann::json findings = nlohmann::json::array();
  for (const auto& finding : report.findings) {
    nlohmann::json item{{"kind", finding.kind}, {"detail", finding.detail}};
    if (!finding.flow.from.empty()) {
      const auto& f = finding.flow;
      item["flow"] = {{"from", f.from},
                      {"from_address", f.from_address},
                      {"to_address", f.to_address},
                      {"protocol", to_string(f.protocol)},
                      {"port_min", f.ports.min},
                      {"port_max", f.ports.max},
                      {"purpose", f.purpose},
                      {"expect", to_string(f.expect)},
                      {"decision", to_string(f.decision)},
                      {"rule", f.rule}};
    }
    findings.push_back(std::move(item));
  }
  nlohmann::json out{{"node", report.node},
                     {"address", report.address},
                     {"backend", report.backend},
                     {"in_sync", report.in_sync()},
                     {"table_present", report.table_present},
                     {"flows_checked", report.flows_checked},
                     {"findings", findings},
                     {"other_filters", report.other_filters}};
  return out.dump(2) + "\n";
}

} // namespace portmatrix
