// Evaluates the filter table's INPUT chain of `iptables-save` and
// `ip6tables-save` output (iptables-legacy; iptables-nft rules show up in
// nftables instead) for one inbound packet: addresses, protocols, ports
// (--dport, multiport), ipsets (`ipset save`), conntrack/state, interfaces,
// user chains with RETURN, and the chain policy. An option it does not model
// makes the decision `unknown`, naming the rule.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "preflight/rule_eval.hpp"

namespace portmatrix {

class IptablesRuleset : public RuleEvaluator
{
public:
  // Any argument may be empty (that family has no rules, or ipset is absent).
  static IptablesRuleset parse(std::string_view v4_save, std::string_view v6_save, std::string_view ipset_save);

  // True when INPUT of both families is empty with policy ACCEPT.
  bool empty() const;

  PortDecision decide(const Packet& packet) const override;
  std::vector<std::uint32_t> breakpoints() const override { return m_breakpoints; }

  struct Rule
  {
    std::vector<std::string> args; // after "-A CHAIN"
    std::string text;              // "-A INPUT -p tcp --dport 10250 -j DROP"
  };
  struct Chain
  {
    std::string policy; // "ACCEPT", "DROP", or "-" for user chains
    std::vector<Rule> rules;
  };
  using Table = std::map<std::string, Chain>;

private:
  Table m_v4;
  Table m_v6;
  std::map<std::string, std::vector<std::string>> m_ipsets; // name -> entries; only hash:ip/hash:net
  std::vector<std::uint32_t> m_breakpoints;
  friend struct IptablesEvaluation;
};

} // namespace portmatrix
