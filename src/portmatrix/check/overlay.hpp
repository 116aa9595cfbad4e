// The overlay's own probes of a flow (issue 21): beside the plain probe of
// an overlay port, the same probe in the overlay's shape (VXLAN, Geneve,
// WireGuard: agent/encapsulation.hpp). What they add to the plain verdict is
// decided here. Pure: the coordinator (coordinator.hpp) probes, this decides.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/messages.hpp"
#include "check/check.hpp"
#include "model/profile.hpp"

namespace portmatrix {

// The shaped probe of `flow` when its port is an overlay's tunnel and the
// flow is an allow flow to a node over UDP; nullopt otherwise. `plain` is the
// flow's plain target.
std::optional<ProbeTarget> shaped_target(const Flow& flow, const NamedPort* port, const ProbeTarget& plain);

// What the shaped probe adds to a flow whose plain probe passed: one
// `encapsulation-dropped` failure per shaped segment that no agent answered
// (both results in its detail). Nothing when every shaped port was answered
// by the destination's agent, or was not probed (the deadline: the plain
// verdict stands).
std::vector<FlowFailure> diagnose_shaped(const FlowResult& plain, const ProbeTarget& shaped,
                                         const std::vector<Segment>& segments);

// The full-size probe beside the shaped one: the same, its IP packet `mtu`
// bytes (the source interface's MTU: what the overlay sends), DF set;
// nullopt when the MTU is unknown (0) or no larger than the shaped probe.
std::optional<ProbeTarget> full_size_target(const ProbeTarget& shaped, std::uint32_t mtu);

// The IP size of the shaped probe (the smallest probe a search starts from).
std::uint32_t shaped_probe_size(const ProbeTarget& shaped, bool ipv6);

// What the overlay adds to each packet it carries: VXLAN and Geneve 50 bytes
// (outer IPv4, UDP, tunnel header, inner Ethernet), WireGuard 80 (outer IPv6,
// UDP, its 32 bytes: wg-quick's and Flannel's allowance).
std::uint32_t backend_overhead(Encapsulation encapsulation);

// A bounded binary search for the largest probe that passes: `passed`
// passed, `failed` did not. Its first step probes `failed` again: a full-size
// probe lost twice by chance (an overloaded agent) passes then, and the search
// ends there (passed == failed: no black hole). Each later step probes next()
// and narrows. It ends at the exact size, or after k_max_mtu_steps.
inline constexpr int k_max_mtu_steps = 12;
struct MtuSearch
{
  std::uint32_t passed = 0;
  std::uint32_t failed = 0;
  int steps = 0;

  bool done() const { return passed >= failed || failed <= passed + 1 || steps >= k_max_mtu_steps; }
  std::uint32_t next() const { return steps == 0 ? failed : passed + (failed - passed) / 2; }
  void record(std::uint32_t size, bool ok)
  {
    (ok ? passed : failed) = size;
    ++steps;
  }
  // The full size passed when it was asked again.
  bool lost_by_chance() const { return passed >= failed; }
};

// The full-size probe of a flow whose plain and shaped probes passed:
// `mtu-blackhole` when it was not answered (the detail: the largest size
// that passed, both interfaces' MTUs, the backend's overhead); nullopt when
// it passed or was not probed.
struct MtuEvidence
{
  std::string source;
  std::string destination;
  std::uint32_t mtu_from = 0;
  std::uint32_t mtu_to = 0;
  std::optional<MtuSearch> search; // nullopt: not searched (no time left)
};
std::optional<FlowFailure> diagnose_full_size(const ProbeTarget& full, const std::vector<Segment>& segments,
                                              const MtuEvidence& evidence);

// True when every segment of a target is open and answered by `node`'s agent.
bool answered_by_agent(const std::vector<Segment>& segments, const std::string& node);

// Round trips (microseconds) as the report gives them: how many, the median
// and the 99th percentile (nearest rank).
struct RttSummary
{
  std::size_t samples = 0;
  std::chrono::microseconds median{0};
  std::chrono::microseconds p99{0};
};
RttSummary summarize_rtts(std::vector<std::uint32_t> samples);

} // namespace portmatrix
