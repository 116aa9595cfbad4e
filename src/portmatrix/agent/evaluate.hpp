// The `evaluate` control request: the agent evaluates its node's live
// firewalls (read afresh for every request: agent/firewall_reader.hpp) with
// preflight's evaluators for every required inbound flow of its node, on
// every port. Exact, and no packet is sent: with check --coverage sample it
// is what covers every port of every node's firewall. The request body is
// {}; the reply counts what was evaluated and lists what fails.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/plan.hpp"
#include "preflight/preflight.hpp"
#include "util/expected.hpp"

namespace portmatrix {

// The failures a reply lists at most; the rest are counted.
inline constexpr std::size_t k_max_evaluate_failures = 200;

struct EvaluateFailure
{
  std::string from; // source node
  Protocol protocol = Protocol::tcp;
  PortRange ports;
  Expect expect = Expect::allow;
  Decision decision = Decision::unknown;
  std::string rule; // the deciding rule, as preflight names it
};

struct EvaluateReply
{
  std::string error;   // the firewalls could not be read or parsed: nothing evaluated
  std::string backend; // LiveFirewalls::backend
  std::uint64_t ports = 0;    // (source, port) decisions made: every port of every inbound flow
  std::uint64_t passed = 0;   // ports decided as the flow expects
  std::uint64_t failed = 0;   // ports decided against it
  std::uint64_t unknown = 0;  // ports the evaluators could not decide (warn)
  std::vector<EvaluateFailure> failures; // failed and unknown runs, the first k_max_evaluate_failures
  std::uint64_t failures_left_out = 0;
};

// Evaluates every inbound flow of `node` (check_firewall) on `text`.
EvaluateReply evaluate_firewalls(const Plan& plan, const Node& node, const Expected<FirewallText, std::string>& text,
                                 const std::string& interface);

std::string to_json(const EvaluateReply& reply);
Expected<EvaluateReply, std::string> parse_evaluate_reply(std::string_view json);

} // namespace portmatrix
