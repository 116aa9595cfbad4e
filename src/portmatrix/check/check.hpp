// `portmatrix check`: asks every agent at once to probe the flows that start
// at its node, gathers the results, asks destinations what they saw for each
// failure, and diagnoses where a failing packet was dropped (DESIGN.md,
// "Diagnosis vocabulary").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/evaluate.hpp"
#include "crypto/hmac.hpp"
#include "egress/runner.hpp"
#include "plan/coverage.hpp"
#include "plan/plan.hpp"
#include "plan/untested.hpp"
#include "probe/prober.hpp"
#include "util/expected.hpp"

namespace portmatrix {

enum class Verdict { pass, fail, skip };
std::string_view to_string(Verdict verdict);

// Ports of a flow that did not behave as expected, with the same outcome.
struct FlowFailure
{
  PortRange ports;
  std::string state;     // filtered, refused, open, admin-prohibited, unreachable, blocked, error
  std::string diagnosis; // the vocabulary of DESIGN.md
  std::string detail;    // human explanation (who answered, errno, ...)
};

struct FlowResult
{
  Flow flow;
  std::string from;
  std::string to; // node name or "vip"
  std::string to_address;
  Verdict verdict = Verdict::skip;
  std::string diagnosis; // for pass: ok or service; for skip: agent-unreachable; for fail: the first failure's
  std::vector<FlowFailure> failures;
  std::vector<std::string> backends_reached; // flows to the VIP
  std::vector<std::string> backends_expected;
  std::string answered_by; // diagnosis service: who answers, as the destination's agent identified it
  // check --coverage sample: the ports probed, when not the whole range
  // (empty: every port of the flow was probed).
  std::vector<PortRange> sampled;
};

struct AgentStatus
{
  std::string node;
  bool reachable = false;
  std::string error;
  bool capture = false;
  std::string capture_error;
  std::vector<std::string> owners; // "6443/tcp haproxy (pid 12)"
  // What the check noticed about this node that is no error: probes that
  // reached its agent, which answered too late for the prober (overload).
  std::string note;
};

// Two nodes as the probes between them measured the path (issue 21): the
// overlay's full-size probes, and the round trips of every answered probe.
struct PairMeasure
{
  std::string from;
  std::string to;
  // The largest probe (IP bytes, DF set) that passed from `from` to `to`:
  // the full size when it passed, else what the search found; 0: not
  // measured (no overlay flow between them, or no answer at all).
  std::uint32_t path_mtu = 0;
  std::uint32_t mtu_from = 0; // the interfaces' MTUs (hello), 0: unknown
  std::uint32_t mtu_to = 0;
  std::size_t rtt_samples = 0;
  std::chrono::microseconds rtt_median{0};
  std::chrono::microseconds rtt_p99{0};
  // A requirement between them bounds the round trip (Requirement::max_rtt);
  // 0: none.
  std::chrono::milliseconds rtt_bound{0};
};

// check --egress: one node's egress check, done by its agent.
struct NodeEgress
{
  std::string node;
  std::string error; // the agent could not be asked or could not run it
  std::vector<EgressResult> results;

  bool ok() const;
};

// What untested requirements (CheckReport::untested) do to the exit status.
enum class UntestedPolicy { warn, fail };

// check --coverage sample: one node's live firewalls evaluated by its agent
// for every port of every inbound flow (the evaluate request).
struct NodeEvaluation
{
  std::string node;
  std::string error;                // the agent could not be asked, or could not read its firewalls
  std::uint64_t ports_expected = 0; // the ports of its inbound flows (the plan's count)
  EvaluateReply reply;

  // Every port of every inbound flow decided, none against the flow.
  bool complete() const { return error.empty() && reply.error.empty() && reply.ports >= ports_expected; }
};

// check --ssh --preflight: one node's preflight (--mode running), run over
// ssh before its agent starts. Shown in the report; no part of its verdict.
struct NodePreflight
{
  std::string node;
  std::string error; // it could not be run, or gave no report
  std::string json;  // its report, as `preflight --format json` printed it
  std::size_t passed = 0;
  std::size_t failed = 0;
  std::size_t warnings = 0;
  std::vector<std::string> failures; // "kernel br_netfilter: ...", one per failed check
};

struct CheckReport
{
  std::string cluster;
  // What was checked, with what, when (the reports' header; set by run_check).
  std::string profile;          // the inventory's profile: a built-in name, a path or a composition
  std::string profile_version;  // the profile's `version`
  std::string portmatrix;       // build_info(): this binary's version, commit and linkage
  std::string inventory_sha256; // of the inventory file's bytes; empty when it could not be read
  std::chrono::system_clock::time_point started;
  std::vector<FlowResult> results;
  std::vector<AgentStatus> agents;
  std::size_t passed = 0;
  std::size_t failed = 0;
  std::size_t skipped = 0;
  std::chrono::milliseconds duration{0};
  // Wall time of each round (hello, probe, observe[, egress]), in order.
  std::vector<std::pair<std::string, std::chrono::milliseconds>> rounds;
  std::vector<NodeEgress> egress; // check --egress only: one per node, inventory order
  // What the probes covered (check --coverage): the mode, its seed, and the
  // flows and ports probed on every port or on a sample.
  CoverageOptions coverage_options;
  CoverageTally coverage;
  std::size_t ruleset_groups = 0;
  std::vector<NodeEvaluation> evaluation; // check --coverage sample: one per node, inventory order
  bool passes_left_out = false;           // check --results failures: `results` holds no pass
  std::vector<PairMeasure> pairs;  // node pairs with a measure, in the order of their first flow
  // What is wrong but fails no flow: a pair above its round-trip bound.
  std::vector<std::string> warnings;
  std::vector<NodePreflight> preflight; // check --ssh --preflight only: one per node, inventory order
  // Requirements the inventory gives no flow to check (no client node, no
  // load balancer, ...): not in `results`, said in every format.
  std::vector<Untested> untested;
  UntestedPolicy untested_policy = UntestedPolicy::warn; // CheckOptions::untested (check --strict: fail)
};

// check --egress: each agent checks the profile's egress list from its node.
struct EgressRoundOptions
{
  bool enabled = false;
  std::chrono::milliseconds timeout{3000};
  std::chrono::milliseconds deadline{10000}; // on top of the check's deadline; at most 25 s
};

// Where a running check stands, for a live progress line: the round, how
// much of it is done (probes whose source's agent answered, or agents), and
// the times. Reported as answers come and about every 250 ms between them.
struct CheckProgress
{
  std::string_view round; // hello, probe, vip, observe, egress
  std::string_view unit;  // "probes" (the probe and VIP rounds) or "agents"
  std::uint64_t done = 0;
  std::uint64_t total = 0;
  std::chrono::milliseconds round_elapsed{0};
  std::chrono::milliseconds elapsed{0}; // since the check began
};

// "probe round: 1,200/5,000 probes, 2,400/s, 3.1 s".
std::string to_text(const CheckProgress& progress);

struct CheckOptions
{
  std::chrono::milliseconds timeout{1000};  // per probe
  int retries = 1;                           // per unanswered port, after the first pass (0-3)
  std::chrono::milliseconds deadline{30000}; // the whole run
  int conntrack_ceiling = k_default_conntrack_ceiling; // ProbeRequest::conntrack_ceiling
  EgressRoundOptions egress;
  // Which ports of each flow are probed (plan/coverage.hpp): all of them,
  // or all between one representative pair per pair of ruleset groups and a
  // seeded sample elsewhere.
  CoverageOptions coverage;
  // Which results the report keeps: all, or only the failed and skipped
  // ones (the passes are counted, not kept: at 1,000 nodes they are 840,000).
  enum class Results { all, failures };
  Results results = Results::all;
  // Nodes known to have no agent (check --ssh: ssh failed there), with why.
  // They are not asked; the flows from and to them are skip, the reason in
  // their failure's detail and in the agent's error.
  std::map<std::string, std::string> absent;
  UntestedPolicy untested = UntestedPolicy::warn; // check --strict: fail
  // Progress messages (agents answered, flows done); may be empty.
  std::function<void(const std::string&)> progress;
  // The live progress of each round (check's progress line on a TTY); may be empty.
  std::function<void(const CheckProgress&)> on_progress;
  // check --ssh --preflight: the nodes' preflight, put into the report as is.
  std::vector<NodePreflight> preflight;
};

// Runs the check. An error (exit 2) when no agent accepted our token or the
// plan cannot be checked; otherwise a complete report, whatever failed.
Expected<CheckReport, std::string> run_check(const Plan& plan, const Token& token, const CheckOptions& options);

// 0 when every flow passed (and with --egress every node reached every host),
// 1 when one failed or was skipped. Untested requirements count only when the
// report's untested_policy is UntestedPolicy::fail (check --strict).

// 0 when every flow passed (and with --egress every node reached every host;
// with --coverage sample every node's firewalls were evaluated and admit
// every flow), 1 when one failed or was skipped.
int exit_status(const CheckReport& report);

} // namespace portmatrix
