// `firewall status`: drift between a node's LIVE firewall and the rules
// portmatrix would generate for it, compared by meaning with preflight's
// evaluators (every inbound flow of the plan, required and denied, decided
// by the live ruleset), not by text. Pure: the live rulesets come in parsed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "plan/plan.hpp"
#include "preflight/nftables.hpp"
#include "preflight/preflight.hpp"

namespace portmatrix {

struct DriftFinding
{
  // required-dropped: a required flow the live rules do not admit;
  // denied-admitted: a flow the profile denies that they admit;
  // undecided: the evaluator cannot tell (a rule it does not understand);
  // table-missing: portmatrix's table is not there;
  // table-edited: portmatrix's table alone no longer decides as generated.
  std::string kind;
  FirewallResult flow; // for the flow kinds: the flow, the decision, the deciding rule
  std::string detail;
};

struct DriftReport
{
  std::string node;
  std::string address;
  std::string backend = "nftables";
  bool table_present = false;
  std::size_t flows_checked = 0; // runs of ports evaluated
  std::vector<DriftFinding> findings;
  // Other filters on the input path: base chains of other tables (Docker's,
  // kube-proxy's, firewalld's), "chain input policy drop" and the like.
  std::vector<std::string> other_filters;
  bool in_sync() const { return findings.empty(); }
};

// `live`: the whole ruleset (nft -j list ruleset); `ours`: portmatrix's
// table alone (nft -j list table inet portmatrix), nullopt when absent.
DriftReport nft_drift(const Plan& plan, const Node& node, const NftRuleset& live, const std::optional<NftRuleset>& ours,
                      const std::string& interface = {});

std::string render_drift_table(const DriftReport& report);
std::string render_drift_json(const DriftReport& report);

} // namespace portmatrix
