// check --estimate: what a check of the inventory would probe, in full and
// in sample coverage, and how long its busiest agent would take, from a
// measured cost per probe. Nothing is sent; no agent is needed.
#pragma once

#include <chrono>
#include <string>

#include "plan/coverage.hpp"
#include "plan/plan.hpp"

namespace portmatrix {

// The agent's CPU per probe sent (answers to other agents' probes included),
// measured by bench/run.sh item 6 at 100 simulated nodes: 10.3 s of CPU for
// the busiest agent's 276,921 probes (bench/RESULTS.md, 2026-12-05; 47 µs
// on 2026-11-27). On a veth the peers' receive path runs in the sender's
// system calls, so a real node's cost is lower.
inline constexpr std::chrono::microseconds k_measured_probe_cost{37};

struct EstimateArgs
{
  CoverageOptions sample;                              // seed and ports per flow for the sample row
  std::chrono::microseconds probe_cost = k_measured_probe_cost;
  std::chrono::milliseconds timeout{1000};             // check --timeout-ms: what the unanswered cost
  bool json = false;
};

// Prints the estimate to stdout (a table, or JSON). Returns the exit status.
int command_check_estimate(const Plan& plan, const EstimateArgs& args);

} // namespace portmatrix
