// Planning and generation speed: load a generated N-node inventory, plan it,
// and render every node's host firewall (or the ports report's flows). The target (issue 2): 5,000 nodes in
// under a second for nftables, with one node's rule count the same for 10
// nodes and 5,000 (reported as the counter `rules_per_node`).
//   build/bench/bench_plan --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <ostream>
#include <sstream>

#include <fmt/format.h>

#include "firewall/firewall.hpp"
#include "plan/plan.hpp"
#include "report/ports_report.hpp"

namespace portmatrix {
namespace {

std::string
inventory_text(int nodes)
{
  std::string text = "cluster: bench\nloadbalancer: {vip: 10.255.255.254}\nadmin_cidrs: [10.0.0.0/8]\nnodes:\n"
                     "  - {name: lb1, address: 10.255.255.1, roles: [loadbalancer]}\n"
                     "  - {name: client1, address: 10.255.255.2, roles: [client]}\n";
  for (int i = 0; i < nodes; ++i) {
    const char* role = i < 3 ? "master" : i % 10 == 3 ? "mongodb" : i % 10 == 4 ? "elasticsearch" : "worker";
    text += fmt::format("  - {{name: n{}, address: 10.{}.{}.{}, roles: [{}]}}\n", i, i / 65536 % 256,
                        i / 256 % 256, i % 256, role);
  }
  return text;
}

std::size_t
rule_count(const std::string& ruleset)
{
  std::istringstream in(ruleset);
  std::size_t count = 0;
  for (std::string line; std::getline(in, line);) {
    bool verdict = line.find(" accept") != std::string::npos || line.find(" drop") != std::string::npos;
    count += verdict && line.find("elements") == std::string::npos;
  }
  return count;
}

// Load + plan + render every node, as `portmatrix firewall --all` does minus the disk.
void
BM_PlanAndGenerateAll(benchmark::State& state, FirewallFormat format)
{
  auto text = inventory_text(int(state.range(0)));
  auto profile = load_profile("apinizer");
  std::size_t bytes = 0;
  std::size_t rules = 0;
  for (auto _ : state) {
    auto inventory = parse_inventory(text, "bench.yaml");
    auto plan = make_plan(*profile, std::move(*inventory));
    auto generator = make_firewall_generator(format, plan);
    bytes = 0;
    for (const auto& node : plan.inventory.nodes) {
      auto rendered = generator->render(node);
      bytes += rendered.size();
      benchmark::DoNotOptimize(rendered);
    }
    if (format == FirewallFormat::nftables) rules = rule_count(generator->render(*plan.inventory.find("n5")));
  }
  state.counters["nodes"] = double(state.range(0));
  state.counters["output_MB"] = double(bytes) / 1e6;
  if (format == FirewallFormat::nftables) state.counters["rules_per_node"] = double(rules);
}

// Planning alone (inventory parse + flows), for `portmatrix ports --inventory`.
void
BM_ParseAndPlan(benchmark::State& state)
{
  auto text = inventory_text(int(state.range(0)));
  auto profile = load_profile("apinizer");
  for (auto _ : state) {
    auto inventory = parse_inventory(text, "bench.yaml");
    auto plan = make_plan(*profile, std::move(*inventory));
    benchmark::DoNotOptimize(plan);
  }
}

// `ports --inventory --format json` minus the disk: the pairs (streamed) or
// the groups, written to a stream that counts and discards.
void
BM_PortsJson(benchmark::State& state, FlowsView view)
{
  struct Counter : std::streambuf
  {
    std::size_t bytes = 0;
    std::streamsize xsputn(const char*, std::streamsize n) override
    {
      bytes += std::size_t(n);
      return n;
    }
    int overflow(int c) override
    {
      ++bytes;
      return c;
    }
  };
  auto text = inventory_text(int(state.range(0)));
  auto profile = load_profile("apinizer");
  Counter counter;
  for (auto _ : state) {
    counter.bytes = 0;
    auto inventory = parse_inventory(text, "bench.yaml");
    auto plan = make_plan(*profile, std::move(*inventory));
    std::ostream out(&counter);
    write_ports(out, plan.matrix, &plan, PortsFormat::json, view);
  }
  state.counters["output_MB"] = double(counter.bytes) / 1e6;
}

BENCHMARK_CAPTURE(BM_PortsJson, pairs, FlowsView::pairs)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PortsJson, groups, FlowsView::groups)->Arg(5000)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PlanAndGenerateAll, nftables, FirewallFormat::nftables)
  ->Arg(10)->Arg(1000)->Arg(5000)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PlanAndGenerateAll, iptables, FirewallFormat::iptables)
  ->Arg(10)->Arg(5000)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PlanAndGenerateAll, firewalld, FirewallFormat::firewalld)->Arg(5000)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PlanAndGenerateAll, ufw, FirewallFormat::ufw)->Arg(5000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParseAndPlan)->Arg(1000)->Arg(5000)->Unit(benchmark::kMillisecond);

} // namespace
} // namespace portmatrix

BENCHMARK_MAIN();
