// check --estimate. Every agent probes from its own node at once, so a
// check's probing takes as long as its busiest agent: that agent's probes
// times the measured cost of one, plus the timeout its last unanswered
// probes wait and their retry. The flows are visited, never kept
// (estimate_coverage), so 5,000 nodes' 20 M flows cost seconds, not memory.
#include "cli/estimate.hpp"

#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/text_table.hpp"
#include "util/thousands.hpp"

namespace portmatrix {

namespace {

double
wall_seconds(const CoverageEstimate& estimate, const EstimateArgs& args)
{
  using namespace std::chrono;
  auto probing = duration<double>(args.probe_cost) * double(estimate.busiest_probes);
  return probing.count() + 2 * duration<double>(args.timeout).count();
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
  if (args.json) {
    auto row = [&](const CoverageEstimate& e) {
      return nlohmann::json{{"flows", e.flows},
                            {"flows_full", e.tally.flows_full},
                            {"flows_sampled", e.tally.flows_sampled},
                            {"group_pairs_full", e.tally.representative_pairs.size()},
                            {"probes", e.probes},
                            {"busiest_source", nodes.empty() ? "" : nodes[e.busiest_source].name},
                            {"busiest_probes", e.busiest_probes},
                            {"wall_s", wall_seconds(e, args)}};
    };
    nlohmann::json out{{"nodes", nodes.size()},
                       {"ruleset_groups", sampler.group_count()},
                       {"probe_cost_us", args.probe_cost.count()},
                       {"timeout_ms", args.timeout.count()},
                       {"seed", sample_options.seed},
                       {"sample_ports", sample_options.sample_ports},
                       {"full", row(full)},
                       {"sample", row(sample)}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} nodes in {} ruleset groups; {} us of agent CPU per probe, {} ms timeout\n",
                           with_thousands(nodes.size()), sampler.group_count(), args.probe_cost.count(),
                           args.timeout.count());
  TextTable table({"Coverage", "Flows", "Flows on every port", "Probes", "Busiest agent", "Its probes",
                   "Estimated wall"});
  auto add = [&](std::string name, const CoverageEstimate& e) {
    table.add({std::move(name), with_thousands(e.flows), with_thousands(e.tally.flows_full), with_thousands(e.probes),
               nodes.empty() ? "" : nodes[e.busiest_source].name, with_thousands(e.busiest_probes),
               fmt::format("{:.1f} s", wall_seconds(e, args))});
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
