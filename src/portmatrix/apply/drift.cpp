// Drift by meaning (drift.hpp). Two evaluations of every inbound flow of the
// node: by the whole live ruleset (what packets meet: a drop added anywhere,
// in our table or another, shows as a required flow dropped, with the rule),
// and by portmatrix's table alone (which, as generated, admits exactly the
// required flows: a difference there means the table itself was edited).
// iptables: the same two evaluations, of the filter table's INPUT path and
// of the chain PORTMATRIX-INPUT alone (with INPUT's jump to it). firewalld:
// its nftables ruleset, and firewalld's table alone (its zones, ours among them).
#include "apply/drift.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sstream>

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
drift_report(const Plan& plan, const Node& node, const DriftInputs& inputs, const std::string& interface)
{
  DriftReport report;
  report.node = node.name;
  report.address = node.address;
  report.backend = inputs.backend;
  report.table_present = inputs.ours != nullptr;
  auto results = check_firewall(plan, node, {inputs.live}, interface);
  report.flows_checked = results.size();
  add_flow_findings(results, report.findings, {});
  if (!inputs.ours) {
    report.findings.push_back({"table-missing", {}, inputs.missing});
  } else if (!inputs.ours_unhooked.empty()) {
    report.findings.push_back({"table-edited", {}, inputs.ours_unhooked});
  } else {
    add_flow_findings(check_firewall(plan, node, {inputs.ours}, interface), report.findings,
                      "portmatrix's rules alone: ");
  }
  report.other_filters = inputs.other_filters;
  return report;
}

namespace {

// The input-hook chains of `live` outside the table inet `ours`.
void
other_nft_chains(const NftRuleset& live, const std::string& ours, std::vector<std::string>& out)
{
  for (const auto* chain : live.input_chains()) {
    if (chain->family == "inet" && chain->table == ours) continue;
    out.push_back(fmt::format("nftables {} {} chain {} (input hook, priority {}, policy {}, {} rules)", chain->family,
                              chain->table, chain->name, chain->priority, chain->policy, chain->rules.size()));
  }
}

} // namespace

DriftReport
nft_drift(const Plan& plan, const Node& node, const NftRuleset& live, const std::optional<NftRuleset>& ours,
          const std::string& interface)
{
  DriftInputs inputs{"nftables", &live, ours ? &*ours : nullptr,
                     "no table inet portmatrix: portmatrix's rules are not applied", {}, {}};
  if (ours && ours->empty()) inputs.ours_unhooked = "table inet portmatrix has no chain on the input hook";
  other_nft_chains(live, "portmatrix", inputs.other_filters);
  return drift_report(plan, node, inputs, interface);
}

DriftReport
firewalld_drift(const Plan& plan, const Node& node, const NftRuleset& live, const FirewalldLive& firewalld,
                const std::string& interface)
{
  DriftInputs inputs{"firewalld", &live, nullptr, {}, {}, {}};
  if (!firewalld.running) {
    inputs.missing = "firewalld is not running: portmatrix's zone is not applied";
  } else if (!firewalld.zone_exists) {
    inputs.missing = "no firewalld zone portmatrix at runtime: portmatrix's rules are not applied";
  } else if (!firewalld.table) {
    inputs.missing = "firewalld runs the zone portmatrix but has no table inet firewalld: its rules cannot be read "
                     "(FirewallBackend=iptables? status reads its nftables backend)";
  } else {
    inputs.ours = &*firewalld.table;
    if (firewalld.interface_zone != "portmatrix") {
      inputs.ours_unhooked = fmt::format("the interface {} is not in the zone portmatrix ({})",
                                         interface.empty() ? "holding the node's address" : interface,
                                         firewalld.interface_zone.empty() ? "no zone" : "zone " + firewalld.interface_zone);
    }
  }
  other_nft_chains(live, "firewalld", inputs.other_filters);
  // `firewall-cmd --get-active-zones`: a zone's name, then its indented bindings.
  std::istringstream in(firewalld.active_zones);
  std::string zone;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (line[0] != ' ') {
      zone = line.substr(0, line.find(' '));
      continue;
    }
    if (zone == "portmatrix") continue;
    inputs.other_filters.push_back(fmt::format("firewalld zone {} ({})", zone, line.substr(line.find_first_not_of(' '))));
  }
  return drift_report(plan, node, inputs, interface);
}

namespace {

constexpr std::string_view k_ipt_chain = "PORTMATRIX-INPUT";
constexpr std::string_view k_ipt_jump = "-A INPUT -j PORTMATRIX-INPUT";

// The lines of the *filter table of an iptables-save text (without "*filter" and "COMMIT").
std::vector<std::string>
filter_lines(const std::string& save)
{
  std::vector<std::string> out;
  std::istringstream in(save);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "*filter") inside = true;
    else if (line == "COMMIT") inside = false;
    else if (inside && !line.empty() && line[0] != '#') out.push_back(line);
  }
  return out;
}

// INPUT's policy and rules other than the jump to ours, as other filters.
void
other_input_filters(const std::string& save, const std::string& family, std::vector<std::string>& out)
{
  for (const auto& line : filter_lines(save)) {
    if (line.starts_with(":INPUT ") && !line.starts_with(":INPUT ACCEPT")) {
      out.push_back(fmt::format("{} filter INPUT policy {}", family, line.substr(7, line.find(' ', 7) - 7)));
    } else if (line.starts_with("-A INPUT ") && line != k_ipt_jump) {
      out.push_back(fmt::format("{} filter: {}", family, line));
    }
  }
}

} // namespace

bool
iptables_line_is_ours(const std::string& line)
{
  return line.starts_with(fmt::format(":{} ", k_ipt_chain)) || line.starts_with(fmt::format("-A {} ", k_ipt_chain)) ||
         line == k_ipt_jump;
}

std::string
iptables_ours(const std::string& save)
{
  auto lines = filter_lines(save);
  bool chain = false, jump = false;
  std::string rules;
  for (const auto& line : lines) {
    if (line.starts_with(fmt::format(":{} ", k_ipt_chain))) chain = true;
    else if (line == k_ipt_jump) jump = true;
    else if (iptables_line_is_ours(line)) rules += line + "\n";
  }
  if (!chain) return {};
  return fmt::format("*filter\n:INPUT ACCEPT [0:0]\n:{} - [0:0]\n{}{}COMMIT\n", k_ipt_chain,
                     jump ? std::string(k_ipt_jump) + "\n" : "", rules);
}

DriftReport
iptables_drift(const Plan& plan, const Node& node, const std::string& v4_save, const std::string& v6_save,
               const std::string& ipset_save, const std::vector<std::string>& nft_other, const std::string& interface)
{
  auto live = IptablesRuleset::parse(v4_save, v6_save, ipset_save);
  auto ours_v4 = iptables_ours(v4_save);
  auto ours_v6 = iptables_ours(v6_save);
  auto ours = IptablesRuleset::parse(ours_v4, ours_v6, ipset_save);
  DriftInputs inputs{"iptables", &live, ours_v4.empty() ? nullptr : &ours,
                     fmt::format("no chain {} (IPv4): portmatrix's rules are not applied", k_ipt_chain), {}, {}};
  if (!ours_v4.empty() && ours.empty()) {
    inputs.ours_unhooked = fmt::format("INPUT does not jump to {}", k_ipt_chain);
  }
  other_input_filters(v4_save, "iptables", inputs.other_filters);
  other_input_filters(v6_save, "ip6tables", inputs.other_filters);
  inputs.other_filters.insert(inputs.other_filters.end(), nft_other.begin(), nft_other.end());
  return drift_report(plan, node, inputs, interface);
}

namespace {

// "*filter" with INPUT's policy, INPUT jumping to `chain`, and `rules` (-A chain ... lines).
std::string
ufw_filter(const std::string& policy, const std::string& chain, const std::string& rules)
{
  return fmt::format("*filter\n:INPUT {} [0:0]\n:{} - [0:0]\n-A INPUT -j {}\n{}COMMIT\n", policy, chain, chain, rules);
}

// INPUT's policy and the rules of `chain`, from an iptables-save text.
std::string
ufw_live(const std::string& save, const std::string& chain)
{
  std::string policy = "ACCEPT";
  std::string rules;
  for (const auto& line : filter_lines(save)) {
    if (line.starts_with(":INPUT ")) policy = line.substr(7, line.find(' ', 7) - 7);
    else if (line.starts_with("-A " + chain + " ")) rules += line + "\n";
  }
  return ufw_filter(policy, chain, rules);
}

std::string
unhex(const std::string& hex)
{
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// The -A lines of ufw's user rules file whose tuple's comment starts "portmatrix: ".
std::string
ufw_ours(const std::string& user_rules, bool& any)
{
  std::string rules;
  bool ours = false;
  std::istringstream in(user_rules);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("### tuple ###")) {
      auto at = line.find(" comment=");
      ours = at != std::string::npos && unhex(line.substr(at + 9)).starts_with("portmatrix: ");
      any = any || ours;
    } else if (line.empty() || line.starts_with("###")) {
      ours = false;
    } else if (ours && line.starts_with("-A ")) {
      rules += line + "\n";
    }
  }
  return rules;
}

} // namespace

DriftReport
ufw_drift(const Plan& plan, const Node& node, const std::string& v4_save, const std::string& v6_save,
          const std::string& user_rules, const std::string& user6_rules, bool active,
          const std::vector<std::string>& other_filters, const std::string& interface)
{
  auto live = IptablesRuleset::parse(ufw_live(v4_save, "ufw-user-input"), ufw_live(v6_save, "ufw6-user-input"), "");
  bool any = false;
  auto ours_v4 = ufw_ours(user_rules, any);
  auto ours_v6 = ufw_ours(user6_rules, any);
  auto ours = IptablesRuleset::parse(ufw_filter("DROP", "ufw-user-input", ours_v4),
                                     ufw_filter("DROP", "ufw6-user-input", ours_v6), "");
  DriftInputs inputs{"ufw", &live, any && active ? &ours : nullptr,
                     active ? "no ufw rule with a comment starting 'portmatrix: ': portmatrix's rules are not applied"
                            : "ufw is inactive: portmatrix's rules are not applied",
                     {}, other_filters};
  return drift_report(plan, node, inputs, interface);
}

std::string
render_drift_table(const DriftReport& report)
{
  std::string out = fmt::format("firewall status of {} ({}), {}: {}\n", report.node, report.address, report.backend,
                                report.in_sync() ? "in sync" : "DRIFT");
  out += fmt::format("  portmatrix's {}: {}; {} runs of ports of inbound flows evaluated\n",
                     report.backend == "iptables" ? "chain PORTMATRIX-INPUT"
                     : report.backend == "ufw"    ? "ufw rules (comment 'portmatrix: ...')"
                     : report.backend == "firewalld" ? "firewalld zone portmatrix"
                                                  : "table",
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
