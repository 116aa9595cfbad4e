// check --coverage: the representative pairs come from the ruleset groups
// (ruleset_group_of, the grouping `firewall --all` renders by), so no pass
// over the flows is needed to pick them: all nodes of a group have the same
// roles, so if any pair of two groups has a flow of a requirement, the pair
// of their first nodes has it too. The sample's generator is splitmix64,
// seeded per flow by the check's seed and the flow's key, so a port drawn
// does not depend on which other flows exist or in which order they come.
#include "plan/coverage.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace portmatrix {

std::optional<CoverageMode>
parse_coverage_mode(std::string_view text)
{
  if (text == "full") return CoverageMode::full;
  if (text == "sample") return CoverageMode::sample;
  return std::nullopt;
}

std::string_view
to_string(CoverageMode mode)
{
  return mode == CoverageMode::full ? "full" : "sample";
}

namespace {

std::uint64_t
splitmix64(std::uint64_t& state)
{
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t
mix(std::uint64_t hash, std::uint64_t value)
{
  std::uint64_t state = hash ^ value;
  return splitmix64(state);
}

} // namespace

std::vector<PortRange>
sample_ports(PortRange range, int count, std::uint64_t seed, std::uint64_t key)
{
  std::uint64_t size = range.size();
  if (count < 0) count = 0;
  if (size <= std::uint64_t(count) + 2) return {range};
  std::vector<std::uint16_t> ports{range.min, range.max};
  std::uint64_t state = mix(seed, key);
  std::uint64_t inner = size - 2; // ports strictly between the edges
  while (ports.size() < std::size_t(count) + 2) {
    auto port = std::uint16_t(range.min + 1 + splitmix64(state) % inner);
    if (std::find(ports.begin(), ports.end(), port) == ports.end()) ports.push_back(port);
  }
  std::sort(ports.begin(), ports.end());
  std::vector<PortRange> ranges;
  for (auto port : ports) {
    if (!ranges.empty() && ranges.back().max + 1 == port) ranges.back().max = port;
    else ranges.push_back({port, port});
  }
  return ranges;
}

CoverageSelector::CoverageSelector(const Plan& plan, CoverageOptions options)
  : m_plan(plan), m_options(options), m_group(ruleset_group_of(plan.inventory))
{
  for (std::size_t node = 0; node < m_group.size(); ++node) {
    auto group = m_group[node];
    if (group == m_first.size()) {
      m_first.push_back(node);
      m_second.push_back(SIZE_MAX);
    } else if (m_second[group] == SIZE_MAX) {
      m_second[group] = node;
    }
  }
}

bool
CoverageSelector::representative(const Flow& flow) const
{
  if (!flow.to) return false;
  auto from = m_group[flow.from];
  auto to = m_group[*flow.to];
  return flow.from == m_first[from] && *flow.to == (from == to ? m_second[to] : m_first[to]);
}

bool
CoverageSelector::full(const Flow& flow) const
{
  return m_options.mode == CoverageMode::full || !flow.to || representative(flow);
}

std::vector<PortRange>
CoverageSelector::ports(const Flow& flow) const
{
  if (full(flow)) return {flow.range};
  std::uint64_t key = mix(mix(mix(0, flow.from), *flow.to), (std::uint64_t(flow.protocol) << 32) |
                                                                 (std::uint64_t(flow.range.min) << 16) | flow.range.max);
  return sample_ports(flow.range, m_options.sample_ports, m_options.seed, key);
}

void
CoverageTally::add(const CoverageSelector& selector, const Flow& flow, const std::vector<PortRange>& ports)
{
  bool full = ports.size() == 1 && ports.front() == flow.range;
  (full ? flows_full : flows_sampled) += 1;
  ports_required += flow.range.size();
  for (const auto& range : ports) ports_probed += range.size();
  if (selector.representative(flow)) representative_pairs.emplace(flow.from, *flow.to);
}

std::vector<std::size_t>
vip_backends(const Plan& plan, const Flow& flow)
{
  Role backend = Role::master;
  for (const auto& frontend : plan.matrix.profile.frontends) {
    if (frontend.port == flow.port) backend = frontend.backend;
  }
  std::vector<std::size_t> nodes;
  for (std::size_t i = 0; i < plan.inventory.nodes.size(); ++i) {
    if (plan.inventory.nodes[i].has(backend)) nodes.push_back(i);
  }
  return nodes;
}

int
vip_repeat(const Plan& plan, const Flow& flow)
{
  return int(std::clamp<std::size_t>(3 * vip_backends(plan, flow).size(), 1, 64));
}

CoverageEstimate
estimate_coverage(const Plan& plan, const CoverageSelector& selector)
{
  CoverageEstimate estimate;
  std::vector<std::uint64_t> per_source(plan.inventory.nodes.size(), 0);
  estimate.tables.assign(plan.inventory.nodes.size(), {});
  std::map<std::string, int> repeat_of; // the VIP's named port -> probes per port
  plan.for_each_flow([&](const Flow& flow) {
    if (flow.protocol == Protocol::vrrp) return;
    ++estimate.flows;
    auto ports = selector.ports(flow);
    estimate.tally.add(selector, flow, ports);
    std::uint64_t repeat = 1;
    if (!flow.to) {
      auto [it, fresh] = repeat_of.try_emplace(flow.port, 0);
      if (fresh) it->second = vip_repeat(plan, flow);
      repeat = std::uint64_t(it->second);
    }
    std::uint64_t probes = 0;
    for (const auto& range : ports) probes += range.size() * repeat;
    estimate.probes += probes;
    per_source[flow.from] += probes;
    auto add_entries = [&](std::size_t node) {
      if (flow.protocol == Protocol::tcp) estimate.tables[node].tcp += probes;
      if (flow.protocol == Protocol::udp) estimate.tables[node].udp += probes / repeat;
    };
    add_entries(flow.from);
    if (flow.to) add_entries(*flow.to);
  });
  for (std::size_t node = 0; node < per_source.size(); ++node) {
    if (per_source[node] > estimate.busiest_probes) {
      estimate.busiest_probes = per_source[node];
      estimate.busiest_source = node;
    }
  }
  return estimate;
}

double
table_seconds(const TableLoad& load, double pace_s, const TableModel& model)
{
  double total = double(load.tcp) + double(load.udp);
  if (total <= double(model.capacity) || pace_s <= 0) return std::max(pace_s, 0.0);
  if (model.capacity == 0) return std::numeric_limits<double>::infinity();
  // Steps of `dt`: entries made in a step expire a lifetime later. A node
  // makes at most total / pace_s a second, and none while the table is full.
  double slowest = std::max(model.tcp_life_s, model.udp_life_s);
  double rough = std::max(pace_s, (total / double(model.capacity) + 1) * slowest); // an upper bound
  double dt = std::max(0.001, rough / 20000);
  auto slots = [dt](double life) { return std::max<std::size_t>(1, std::size_t(std::ceil(life / dt))); };
  std::vector<double> tcp_made(slots(model.tcp_life_s), 0.0);
  std::vector<double> udp_made(slots(model.udp_life_s), 0.0);
  double tcp_share = double(load.tcp) / total;
  double per_step = total / pace_s * dt;
  double live = 0;
  double left = total;
  double t = 0;
  for (std::size_t step = 0; left > 0; ++step) {
    auto& tcp_slot = tcp_made[step % tcp_made.size()];
    auto& udp_slot = udp_made[step % udp_made.size()];
    live -= tcp_slot + udp_slot; // made a lifetime ago
    double made = std::min({per_step, left, std::max(0.0, double(model.capacity) - live)});
    tcp_slot = made * tcp_share;
    udp_slot = made - tcp_slot;
    live += made;
    left -= made;
    t += dt;
    if (left < 0.5) break;
  }
  return t;
}

} // namespace portmatrix
