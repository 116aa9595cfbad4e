// Which ports of each flow a check probes (check --coverage), and what that
// covers. A full mesh costs O(nodes^2 x ports); but a node's firewall depends
// only on its roles (ruleset_groups), so `sample` probes every port only
// between one representative pair per (source group, destination group), and
// elsewhere the range's edges plus k seeded random ports: every pair's path
// is probed, every group's ruleset is probed on every port. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <utility>
#include <string_view>
#include <vector>

#include "plan/plan.hpp"

namespace portmatrix {

enum class CoverageMode { full, sample };
std::optional<CoverageMode> parse_coverage_mode(std::string_view text);
std::string_view to_string(CoverageMode mode);

inline constexpr int k_default_sample_ports = 8;
inline constexpr int k_max_sample_ports = 1024;

struct CoverageOptions
{
  CoverageMode mode = CoverageMode::full;
  std::uint64_t seed = 0;                    // sample: draws the random ports; the report names it
  int sample_ports = k_default_sample_ports; // sample: random ports per flow besides the range's edges
};

// The ports of `range` a sample probes: its first and last port and `count`
// distinct others drawn from a generator seeded by `seed` and `key`, sorted
// and merged; the whole range when it holds no more than that. The same
// arguments always give the same ports.
std::vector<PortRange> sample_ports(PortRange range, int count, std::uint64_t seed, std::uint64_t key);

// Decides per flow. `plan` must outlive it; O(nodes) memory.
class CoverageSelector
{
public:
  CoverageSelector(const Plan& plan, CoverageOptions options);

  const CoverageOptions& options() const { return m_options; }
  // True when every port of `flow` is probed: mode full, a flow to the VIP,
  // or the representative pair of its (source group, destination group):
  // the group's first node to the other group's first node (to its second
  // node when both are the same group).
  bool full(const Flow& flow) const;
  // True when `flow` is between the representative pair of its groups (in
  // any mode; never for the VIP).
  bool representative(const Flow& flow) const;
  // The ports of `flow` to probe: its range when full(), else sample_ports
  // keyed by the pair, protocol and range.
  std::vector<PortRange> ports(const Flow& flow) const;
  std::size_t group_of(std::size_t node) const { return m_group[node]; }
  std::size_t group_count() const { return m_first.size(); }

private:
  const Plan& m_plan;
  CoverageOptions m_options;
  std::vector<std::size_t> m_group;  // node -> ruleset group
  std::vector<std::size_t> m_first;  // group -> its first node
  std::vector<std::size_t> m_second; // group -> its second node, SIZE_MAX when alone
};

// What a check probed, in flows and ports, and over which pairs of groups.
struct CoverageTally
{
  std::uint64_t flows_full = 0;    // flows probed on every port
  std::uint64_t flows_sampled = 0; // flows probed on a sample
  std::uint64_t ports_required = 0;
  std::uint64_t ports_probed = 0;
  // The representative pairs (one per pair of groups with flows) that were
  // probed on every port, as (source, destination) nodes.
  std::set<std::pair<std::size_t, std::size_t>> representative_pairs;

  // Counts `flow`, probed on `ports` (CoverageSelector::ports).
  void add(const CoverageSelector& selector, const Flow& flow, const std::vector<PortRange>& ports);
};

// Every flow of `plan` through `selector`, counted without being kept (one
// pass of for_each_flow): what a check would probe. Probes, not ports: a
// flow to the VIP is probed `vip_repeat` times per port (check: 3 per
// backend). Also the busiest source: the most probes one agent sends.
// Per node: the entries a check's probes make in its conntrack table, sent
// and received (TCP: one per probe, each its own connection; UDP: one per
// port of a pair, since an agent's UDP probes share one socket, so a port's
// tries share one tuple). A flow to the VIP counts at its source only.
struct TableLoad
{
  std::uint64_t tcp = 0;
  std::uint64_t udp = 0;
};

struct CoverageEstimate
{
  CoverageTally tally;
  std::uint64_t probes = 0;
  std::uint64_t busiest_probes = 0;
  std::size_t busiest_source = 0;
  std::uint64_t flows = 0;
  std::vector<TableLoad> tables; // per node, in inventory order
};
CoverageEstimate estimate_coverage(const Plan& plan, const CoverageSelector& selector);

// A node's conntrack table during a check (check --estimate): `capacity`
// entries may be live at once (check's --conntrack-ceiling share of
// nf_conntrack_max: at that fill the prober holds), an entry lives
// `tcp_life` after its probe's reset (nf_conntrack_tcp_timeout_close) or
// `udp_life` after its answer (nf_conntrack_udp_timeout; one request and
// one answer never make a UDP stream).
struct TableModel
{
  std::uint64_t capacity = 0;
  double tcp_life_s = 10;
  double udp_life_s = 30;
};

// How long `load`'s entries take to be made when the node makes them evenly
// over `pace_s` (its probing's duration, were its table never full), TCP
// and UDP mixed in proportion, and holds while `model.capacity` are live:
// `pace_s` itself when they never fill it, else longer (a step simulation).
double table_seconds(const TableLoad& load, double pace_s, const TableModel& model);

// The nodes a flow to the VIP must reach: those of the backend role of the
// frontend on the flow's named port (the masters when no frontend names it).
std::vector<std::size_t> vip_backends(const Plan& plan, const Flow& flow);
// The probes of a flow to the VIP per port: three per backend, 1 to 64.
int vip_repeat(const Plan& plan, const Flow& flow);

} // namespace portmatrix
