// check --estimate. Every agent probes from its own node at once, so a
// check's probing takes as long as its busiest agent: that agent's probes
// times the measured cost of one, plus the timeout its last unanswered
// probes wait and their retry. Unless a node's conntrack table fills: a
// prober holds while its node's table is at the ceiling, and an entry
// lives on after its probe (10 s after a TCP reset, 30 s after a UDP
// answer), so a node with more entries to make than the ceiling allows
// waits for old ones to expire (table_seconds). The flows are visited, never kept
// (estimate_coverage), so 5,000 nodes' 20 M flows cost seconds, not memory.
#include "cli/estimate.hpp"

#include <algorithm>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/text_table.hpp"
#include "util/thousands.hpp"

namespace portmatrix {

namespace {

// What bounds a check's wall time: its busiest agent's CPU, or the node
// whose conntrack table holds its probes back longest.
struct Wall
{
  double seconds = 0;   // the estimate: the longer of the two, plus two timeouts
  double cpu_s = 0;     // the busiest agent's probes at the cost per probe
  double table_s = 0;   // the slowest table (cpu_s when no table fills)
  std::size_t table_node = 0;
  bool table_bound = false;
};

Wall
wall_of(const CoverageEstimate& estimate, const EstimateArgs& args)
{
  using namespace std::chrono;
  Wall wall;
  wall.cpu_s = duration<double>(args.probe_cost).count() * double(estimate.busiest_probes);
  wall.table_s = wall.cpu_s;
  wall.table_node = estimate.busiest_source;
  TableModel model;
  model.capacity = args.conntrack_max * std::uint64_t(args.conntrack_ceiling) / 100;
  // Every agent probes at once for as long as the busiest: a node's entries
  // (sent and received) come over that time.
  for (std::size_t node = 0; node < estimate.tables.size(); ++node) {
    auto seconds = table_seconds(estimate.tables[node], wall.cpu_s, model);
    if (seconds > wall.table_s) {
      wall.table_s = seconds;
      wall.table_node = node;
    }
  }
  wall.table_bound = wall.table_s > wall.cpu_s * 1.001;
  wall.seconds = std::max(wall.cpu_s, wall.table_s) + 2 * duration<double>(args.timeout).count();
  return wall;
}

} // namespace

int
command_check_estimate(const Plan& plan, const EstimateArgs& args)
{
  CoverageOptions full_options;
  full_options.mode = CoverageMode::full;
  CoverageOptions sample_options = args.sample;
  sample_options.mode = CoverageMode::sample;
  auto full = estimate_coverage(plan, CoverageSelector(plan, full_options));
  CoverageSelector sampler(plan, sample_options);
  auto sample = estimate_coverage(plan, sampler);
  const auto& nodes = plan.inventory.nodes;
  auto name_of = [&](std::size_t node) { return nodes.empty() ? std::string() : nodes[node].name; };
  if (args.json) {
    auto row = [&](const CoverageEstimate& e) {
      auto wall = wall_of(e, args);
      return nlohmann::json{{"flows", e.flows},
                            {"flows_full", e.tally.flows_full},
                            {"flows_sampled", e.tally.flows_sampled},
                            {"group_pairs_full", e.tally.representative_pairs.size()},
                            {"probes", e.probes},
                            {"busiest_source", name_of(e.busiest_source)},
                            {"busiest_probes", e.busiest_probes},
                            {"wall_s", wall.seconds},
                            {"cpu_s", wall.cpu_s},
                            {"conntrack_s", wall.table_s},
                            {"bound_by", wall.table_bound ? "conntrack" : "cpu"},
                            {"bound_node", name_of(wall.table_bound ? wall.table_node : e.busiest_source)}};
    };
    nlohmann::json out{{"nodes", nodes.size()},
                       {"ruleset_groups", sampler.group_count()},
                       {"probe_cost_us", args.probe_cost.count()},
                       {"timeout_ms", args.timeout.count()},
                       {"conntrack_max", args.conntrack_max},
                       {"conntrack_ceiling", args.conntrack_ceiling},
                       {"seed", sample_options.seed},
                       {"sample_ports", sample_options.sample_ports},
                       {"full", row(full)},
                       {"sample", row(sample)}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} nodes in {} ruleset groups; {} us of agent CPU per probe, {} ms timeout; "
                           "conntrack: probes hold at {}% of {} entries\n",
                           with_thousands(nodes.size()), sampler.group_count(), args.probe_cost.count(),
                           args.timeout.count(), args.conntrack_ceiling, with_thousands(args.conntrack_max));
  TextTable table({"Coverage", "Flows", "Flows on every port", "Probes", "Busiest agent", "Its probes",
                   "Estimated wall", "Bound by"});
  auto add = [&](std::string name, const CoverageEstimate& e) {
    auto wall = wall_of(e, args);
    auto bound = wall.table_bound ? fmt::format("{}'s conntrack table ({:.1f} s of CPU)", name_of(wall.table_node),
                                                wall.cpu_s)
                                  : std::string("CPU");
    table.add({std::move(name), with_thousands(e.flows), with_thousands(e.tally.flows_full), with_thousands(e.probes),
               name_of(e.busiest_source), with_thousands(e.busiest_probes), fmt::format("{:.1f} s", wall.seconds),
               bound});
  };
  add("full", full);
  add(fmt::format("sample (edges + {})", sample_options.sample_ports), sample);
  std::cout << table.render();
  std::cout << fmt::format("sample: every port between {} representative pairs (one per pair of ruleset groups "
                           "with flows) and to the VIP; every other pair on its range's edges and {} seeded ports\n",
                           sample.tally.representative_pairs.size(), sample_options.sample_ports);
  return 0;
}

} // namespace portmatrix
