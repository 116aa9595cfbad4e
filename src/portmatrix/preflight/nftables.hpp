// Evaluates a live nftables ruleset (`nft -j list ruleset`) for one inbound
// packet: the filter chains on the input hook, in priority order, with named
// and anonymous sets (intervals, prefixes, concatenations), verdict maps,
// jump/goto/return and chain policies. Anything it does not understand turns
// the decision into `unknown`, naming the rule: never a guessed answer.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "preflight/rule_eval.hpp"
#include "util/expected.hpp"

namespace portmatrix {

class NftRuleset : public RuleEvaluator
{
public:
  // Parses the JSON; an error text when it is not nft's JSON.
  static Expected<NftRuleset, std::string> parse(std::string_view json);

  // True when no filter chain hooks input: nftables decides nothing.
  bool empty() const { return m_base_chains.empty(); }

  PortDecision decide(const Packet& packet) const override;
  std::vector<std::uint32_t> breakpoints() const override { return m_breakpoints; }

  struct Rule
  {
    long handle = 0;
    nlohmann::json expr;
    std::string text; // "inet portmatrix input #7: tcp dport 10250 drop"
  };
  struct Chain
  {
    std::string family, table, name;
    bool base = false; // a filter chain on the input hook
    long priority = 0;
    std::string policy = "accept";
    std::vector<Rule> rules;
  };
  // The filter chains on the input hook, in priority order.
  std::vector<const Chain*> input_chains() const;

private:
  std::map<std::string, Chain> m_chains;           // by "family table name"
  std::map<std::string, nlohmann::json> m_sets;    // elements by "family table name"
  std::vector<std::string> m_base_chains;          // keys of m_chains, priority order
  std::vector<std::uint32_t> m_breakpoints;
  friend struct NftEvaluation;
};

} // namespace portmatrix
