// The planning subcommands (commands.hpp): ports, diff, firewall, lb and
// profiles. Files in, text out: nothing here touches the network.
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/suggest.hpp"

#include <iostream>

#include <fmt/format.h>

#include "firewall/firewall.hpp"
#include "lb/lb.hpp"
#include "plan/diff.hpp"
#include "plan/untested.hpp"
#include "profiles/builtin.hpp"
#include "report/ports_report.hpp"
#include "report/untested_report.hpp"
#include "util/edit_distance.hpp"

namespace portmatrix {

std::optional<Plan>
load_plan(const std::string& inventory_path, const std::string& profile_override)
{
  auto inventory = load_inventory(inventory_path);
  if (!inventory) {
    print(inventory.error());
    return std::nullopt;
  }
  auto profile = profile_override.empty() ? load_profile(inventory->profile, inventory->profile_at)
                                          : load_profile(profile_override, {"--profile", 0, 0, {}});
  if (!profile) {
    print(profile.error());
    return std::nullopt;
  }
  if (auto problems = check_against(*inventory, *profile); !problems.empty()) {
    print(problems);
    return std::nullopt;
  }
  return make_plan(std::move(*profile), std::move(*inventory));
}

const Node*
find_node(const Plan& plan, const std::string& name)
{
  const auto* node = plan.inventory.find(name);
  if (!node) {
    std::string known;
    std::vector<std::string> names;
    for (const auto& n : plan.inventory.nodes) {
      known += (known.empty() ? "" : ", ") + n.name;
      names.push_back(n.name);
    }
    std::cerr << fmt::format("portmatrix: no node '{}' in {}{} (nodes: {})\n", printable(name), plan.inventory.file,
                             did_you_mean(name, names), known);
  }
  return node;
}

int
command_ports(const std::string& profile_name, const std::string& inventory_path, const std::string& format_text,
              const std::string& flows_text)
{
  auto format = parse_ports_format(format_text);
  if (!format) {
    std::cerr << "portmatrix: --format must be table, markdown, json or csv\n";
    return k_exit_input;
  }
  auto view = parse_flows_view(flows_text);
  if (!view) {
    std::cerr << fmt::format("portmatrix: --flows must be pairs or groups, not '{}'\n", printable(flows_text));
    return k_exit_input;
  }
  if (!inventory_path.empty()) {
    auto plan = load_plan(inventory_path, profile_name);
    if (!plan) return k_exit_input;
    write_ports(std::cout, plan->matrix, &*plan, *format, *view);
    std::cout.flush();
    // CSV has no place for them: what the inventory leaves untested goes to stderr.
    if (*format == PortsFormat::csv) {
      for (const auto& line : untested_lines(untested_requirements(*plan))) std::cerr << "portmatrix: " << line << "\n";
    }
    if (!std::cout) {
      std::cerr << "portmatrix: cannot write the report to standard output\n";
      return k_exit_input;
    }
    return 0;
  }
  auto profile = load_profile(profile_name.empty() ? "apinizer" : profile_name);
  if (!profile) {
    print(profile.error());
    return k_exit_input;
  }
  auto matrix = resolve(std::move(*profile), nullptr);
  std::cout << render_ports(matrix, nullptr, *format);
  return 0;
}

int
command_diff(const std::string& a, const std::string& b, const std::string& format_text)
{
  auto format = parse_ports_format(format_text);
  if (!format || *format == PortsFormat::csv) {
    std::cerr << "portmatrix: --format must be table, markdown or json\n";
    return k_exit_input;
  }
  auto first = load_profile(a, {"PROFILE_A", 0, 0, {}});
  auto second = load_profile(b, {"PROFILE_B", 0, 0, {}});
  if (!first || !second) {
    if (!first) print(first.error());
    if (!second) print(second.error());
    return k_exit_input;
  }
  std::cout << render_diff(diff_profiles(*first, *second), *format);
  return 0;
}

int
command_firewall(const Plan& plan, const std::string& node_name, bool all, const std::string& out_dir,
                 const std::string& format_text)
{
  auto format = parse_firewall_format(format_text);
  if (!format) {
    std::cerr << "portmatrix: --format must be nftables, iptables, firewalld or ufw\n";
    return k_exit_input;
  }
  if (all == !node_name.empty()) {
    std::cerr << "portmatrix: give either --node NAME or --all --out DIR\n";
    return k_exit_input;
  }
  auto generator = make_firewall_generator(*format, plan);
  if (!all) {
    const auto* node = find_node(plan, node_name);
    if (!node) return k_exit_input;
    if (out_dir.empty()) {
      std::cout << generator->render(*node);
      return 0;
    }
    return write_outputs({{generator->file_name(*node), generator->render(*node)}}, out_dir);
  }
  if (out_dir.empty()) {
    std::cerr << "portmatrix: --all needs --out DIR (one file per node)\n";
    return k_exit_input;
  }
  if (!make_directory(out_dir)) return k_exit_input;
  auto rulesets = write_rulesets(*generator, plan, out_dir);
  if (!rulesets) return k_exit_input;
  std::cerr << fmt::format("portmatrix: wrote {} file(s) to {}: {} ruleset(s), one per set of roles, each written "
                           "once and hard-linked to its nodes' names\n",
                           plan.inventory.nodes.size(),
                           out_dir,
                           *rulesets);
  return 0;
}

int
command_lb(const Plan& plan, const std::string& format, const std::string& node_name, const std::string& out_dir)
{
  if (format == "haproxy") {
    auto config = generate_haproxy(plan);
    if (!config) {
      std::cerr << "portmatrix: " << config.error() << "\n";
      return k_exit_input;
    }
    if (!out_dir.empty()) return write_outputs({{"haproxy.cfg", *config}}, out_dir);
    std::cout << *config;
    return 0;
  }
  if (format != "keepalived") {
    std::cerr << "portmatrix: --format must be haproxy or keepalived\n";
    return k_exit_input;
  }
  std::vector<const Node*> nodes;
  if (!node_name.empty()) {
    const auto* node = find_node(plan, node_name);
    if (!node) return k_exit_input;
    nodes.push_back(node);
  } else {
    for (const auto& node : plan.inventory.nodes) {
      if (node.has(Role::loadbalancer)) nodes.push_back(&node);
    }
  }
  if (nodes.empty()) {
    std::cerr << "portmatrix: the inventory has no node with the loadbalancer role\n";
    return k_exit_input;
  }
  if (nodes.size() > 1 && out_dir.empty()) {
    std::cerr << "portmatrix: several load-balancer nodes: give --node NAME, or --out DIR for one file each\n";
    return k_exit_input;
  }
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto* node : nodes) {
    auto config = generate_keepalived(plan, *node);
    if (!config) {
      std::cerr << "portmatrix: " << config.error() << "\n";
      return k_exit_input;
    }
    files.emplace_back(node->name + ".keepalived.conf", *config);
  }
  if (!out_dir.empty()) return write_outputs(files, out_dir);
  std::cout << files[0].second;
  return 0;
}

int
command_profiles(const std::string& name)
{
  if (name.empty()) {
    for (const auto& each : builtin_profile_names()) {
      auto loaded = load_profile(each);
      std::cout << fmt::format("{:<16} {}\n", each, loaded ? loaded->description : "(does not load)");
    }
    return 0;
  }
  auto text = builtin_profile_text(name);
  if (!text) {
    auto names = builtin_profile_names();
    std::string known;
    for (const auto& each : names) known += (known.empty() ? "" : ", ") + each;
    std::cerr << fmt::format("portmatrix: no built-in profile '{}'{} (built-in: {})\n", printable(name),
                             did_you_mean(name, names), known);
    return k_exit_input;
  }
  std::cout << *text;
  return 0;
}

} // namespace portmatrix
