// check --estimate: what a check of the inventory would probe, in full and
// in sample coverage, and how long it would take: its busiest agent's
// probes at a measured cost per probe, or longer where a node's conntrack
// table holds its probes back. Nothing is sent; no agent is needed.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "plan/coverage.hpp"
#include "plan/plan.hpp"
#include "probe/prober.hpp"

namespace portmatrix {

// The agent's CPU per probe sent (answers to other agents' probes included),
// measured by bench/run.sh item 6 at 100 simulated nodes: 10.3 s of CPU for
// the busiest agent's 276,921 probes (bench/RESULTS.md, 2026-12-05; 47 µs
// on 2026-11-27). On a veth the peers' receive path runs in the sender's
// system calls, so a real node's cost is lower.
inline constexpr std::chrono::microseconds k_measured_probe_cost{37};

// nf_conntrack_max of a node with more than 4 GiB of memory (the kernel's
// default; kube-proxy raises it to 32,768 per core, at least 131,072).
inline constexpr std::uint64_t k_default_conntrack_max = 262144;

struct EstimateArgs
{
  CoverageOptions sample;                              // seed and ports per flow for the sample row
  std::chrono::microseconds probe_cost = k_measured_probe_cost;
  std::chrono::milliseconds timeout{1000};             // check --timeout-ms: what the unanswered cost
  std::uint64_t conntrack_max = k_default_conntrack_max; // each node's nf_conntrack_max
  int conntrack_ceiling = k_default_conntrack_ceiling; // check --conntrack-ceiling, percent
  bool json = false;
};

// Prints the estimate to stdout (a table, or JSON). Returns the exit status.
int command_check_estimate(const Plan& plan, const EstimateArgs& args);

} // namespace portmatrix
