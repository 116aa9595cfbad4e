// `firewall status`: drift between a node's LIVE firewall and the rules
// portmatrix would generate for it, compared by meaning with preflight's
// evaluators (every inbound flow of the plan, required and denied, decided
// by the live ruleset), not by text. Pure: the live rulesets come in parsed
// (apply/backend.cpp reads them, per backend).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "plan/plan.hpp"
#include "preflight/iptables.hpp"
#include "preflight/nftables.hpp"
#include "preflight/preflight.hpp"

namespace portmatrix {

struct DriftFinding
{
  // required-dropped: a required flow the live rules do not admit;
  // denied-admitted: a flow the profile denies that they admit;
  // undecided: the evaluator cannot tell (a rule it does not understand);
  // table-missing: portmatrix's table (iptables: its chain) is not there;
  // table-edited: portmatrix's table alone no longer decides as generated.
  std::string kind;
  FirewallResult flow; // for the flow kinds: the flow, the decision, the deciding rule
  std::string detail;
};

struct DriftReport
{
  std::string node;
  std::string address;
  std::string backend = "nftables"; // nftables, iptables, ufw, firewalld
  bool table_present = false;
  std::size_t flows_checked = 0; // runs of ports evaluated
  std::vector<DriftFinding> findings;
  // Other filters on the input path: base chains of other tables (Docker's,
  // kube-proxy's, firewalld's), "chain input policy drop" and the like.
  std::vector<std::string> other_filters;
  bool in_sync() const { return findings.empty(); }
};

// What every backend's drift is computed from: `live` decides what packets
// meet; `ours` is portmatrix's rules alone (nullptr: absent, `missing` says
// so); `ours_unhooked` non-empty: they are there but nothing sends packets
// to them (that text is the finding). `other_filters` go into the report.
struct DriftInputs
{
  std::string backend;
  const RuleEvaluator* live = nullptr;
  const RuleEvaluator* ours = nullptr;
  std::string missing;
  std::string ours_unhooked;
  std::vector<std::string> other_filters;
};
DriftReport drift_report(const Plan& plan, const Node& node, const DriftInputs& inputs, const std::string& interface = {});

// `live`: the whole ruleset (nft -j list ruleset); `ours`: portmatrix's
// table alone (nft -j list table inet portmatrix), nullopt when absent.
DriftReport nft_drift(const Plan& plan, const Node& node, const NftRuleset& live, const std::optional<NftRuleset>& ours,
                      const std::string& interface = {});

// iptables: `v4_save`, `v6_save` the filter tables as iptables-save and
// ip6tables-save print them, `ipset_save` every set (ipset save). Portmatrix's
// part is the chain PORTMATRIX-INPUT and INPUT's jump to it; every other rule
// of INPUT (and a policy other than ACCEPT) is listed as another filter, and
// so is each chain of `nft_other` (nftables input chains of other tables than
// iptables-nft's own, already described).
DriftReport iptables_drift(const Plan& plan, const Node& node, const std::string& v4_save, const std::string& v6_save,
                           const std::string& ipset_save, const std::vector<std::string>& nft_other = {},
                           const std::string& interface = {});

// ufw: `v4_save`, `v6_save` as for iptables (ufw compiles its rules into
// iptables chains); the rules users add are the chains ufw-user-input and
// ufw6-user-input under INPUT's policy, and portmatrix's are those of ufw's
// user.rules / user6.rules (`user_rules`, `user6_rules`) whose tuple carries
// a comment starting "portmatrix: ". ufw's own before/after chains (loopback,
// established, ICMP, DHCP) are not evaluated. `active`: ufw is enabled;
// `other_filters`: the host's own ufw rules, as `ufw show added` prints them.
DriftReport ufw_drift(const Plan& plan, const Node& node, const std::string& v4_save, const std::string& v6_save,
                      const std::string& user_rules, const std::string& user6_rules, bool active,
                      const std::vector<std::string>& other_filters = {}, const std::string& interface = {});

// firewalld, as read from the node: whether it runs, its nftables table
// (nft -j list table inet firewalld), whether the zone portmatrix exists at
// runtime, the zone of the node's interface, and `firewall-cmd
// --get-active-zones` as printed.
struct FirewalldLive
{
  bool running = false;
  std::optional<NftRuleset> table;
  bool zone_exists = false;
  std::string interface_zone;
  std::string active_zones;
};
// firewalld with its nftables backend: `live` (nft -j list ruleset) decides
// what packets meet; portmatrix's rules alone are firewalld's table, valid
// when the zone portmatrix exists and holds the node's interface. Other
// tables' input chains and firewalld's other active zones are other filters.
DriftReport firewalld_drift(const Plan& plan, const Node& node, const NftRuleset& live, const FirewalldLive& firewalld,
                            const std::string& interface = {});

// The part of an iptables-save text that is portmatrix's: the *filter table
// with INPUT (policy ACCEPT) holding only the jump to PORTMATRIX-INPUT when
// the text has it, and that chain's rules. Empty when the chain is absent.
std::string iptables_ours(const std::string& save);
// True for a line of iptables-save (or of rules.v4) that is portmatrix's: its
// chain's declaration and rules, and INPUT's jump to it.
bool iptables_line_is_ours(const std::string& line);

std::string render_drift_table(const DriftReport& report);
std::string render_drift_json(const DriftReport& report);

} // namespace portmatrix
