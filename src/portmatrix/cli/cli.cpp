// The command line. Parsing is CLI11's; loading, planning and rendering are
// the library's. Input errors are printed once, all of them, as
// file:line:column, and give exit status 2.
#include "cli/cli.hpp"
#include "cli/demo.hpp"
#include "cli/docs.hpp"
#include "cli/estimate.hpp"
#include "cli/firewall_apply.hpp"
#include "cli/output.hpp"
#include "cli/remote.hpp"
#include "cli/suggest.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <tuple>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "agent/agent.hpp"
#include "build_info.hpp"
#include "check/check.hpp"
#include "crypto/hmac.hpp"
#include "egress/runner.hpp"
#include "firewall/firewall.hpp"
#include "lb/lb.hpp"
#include "plan/diff.hpp"
#include "plan/untested.hpp"
#include "plan/egress.hpp"
#include "profiles/builtin.hpp"
#include "report/check_report.hpp"
#include "report/preflight_report.hpp"
#include "report/egress_report.hpp"
#include "report/ports_report.hpp"
#include "report/untested_report.hpp"
#include "util/edit_distance.hpp"

namespace portmatrix {
namespace {

// check --coverage sample without --seed: a fresh one, which the report names.
std::uint64_t
random_seed()
{
  return std::stoull(random_hex(8), nullptr, 16);
}

// Loads the profile (explicit, else the inventory's) and the inventory, and
// checks one against the other. Prints every problem and returns nullopt.
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

// A report: printed (in colour on a TTY unless NO_COLOR), or written whole
// to `output` with its table printed as well. False when writing failed.
template <class Format, class Render>
bool
emit_report(const std::string& output, Format format, Format table, const Render& render)
{
  if (output.empty()) {
    bool colour = ::isatty(STDOUT_FILENO) == 1 && !std::getenv("NO_COLOR");
    std::cout << render(format, colour ? Colour::on : Colour::off);
    return true;
  }
  if (!write_file(output, render(format, Colour::off))) return false;
  if (format != table) std::cout << render(table, Colour::off);
  return true;
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

std::optional<Token>
load_token(const std::string& path)
{
  if (path == "-") return read_token_from_stdin();
  std::string error;
  auto token = Token::load(path, error);
  if (!token) std::cerr << "portmatrix: " << error << "\n";
  return token;
}

int
command_agent(const Plan& plan, const std::string& node_name, const std::string& token_file, int exit_after_s)
{
  const auto* node = find_node(plan, node_name);
  auto token = load_token(token_file);
  if (!node || !token) return k_exit_input;
  return run_agent(plan, *node, *token, std::chrono::seconds(exit_after_s));
}

// Whether the overall line goes to stderr when the report goes to stdout: a
// check run by check --ssh --coordinator NODE --output FILE prints it there,
// and the workstation, which writes FILE, prints it (the hidden --overall-line).
enum class OverallLine { with_a_file, always };

// Runs the coordinator against agents holding `token`, prints the report,
// or writes it whole to `output` and prints only its overall line (stderr).
int
check_and_report(const Plan& plan, const Token& token, CheckFormat format, const std::string& output,
                 CheckDetail detail, OverallLine overall, CheckOptions options)
{
  bool progress_tty = ::isatty(STDERR_FILENO) == 1;
  if (progress_tty && !options.progress && !options.on_progress) {
    // The live line: the round, probes done of all, the rate, the time.
    options.on_progress = [](const CheckProgress& p) { std::cerr << "\r\033[Kcheck: " << to_text(p) << std::flush; };
  }
  auto report = run_check(plan, token, options);
  if (progress_tty) std::cerr << "\r\033[K" << std::flush;
  if (!report) {
    std::cerr << "portmatrix: check: " << report.error() << "\n";
    return k_exit_input;
  }
  report->preflight = std::move(options.preflight);
  if (output.empty()) {
    bool colour = ::isatty(STDOUT_FILENO) == 1 && !std::getenv("NO_COLOR");
    std::cout << render_check(*report, format, colour ? Colour::on : Colour::off, detail);
    if (overall == OverallLine::always) std::cerr << check_overall_line(*report) << "\n";
    return exit_status(*report);
  }
  if (!write_file(output, render_check(*report, format, Colour::off, detail))) return k_exit_input;
  bool colour = ::isatty(STDERR_FILENO) == 1 && !std::getenv("NO_COLOR");
  std::cerr << check_overall_line(*report, colour ? Colour::on : Colour::off) << " (report: " << output << ")\n";
  return exit_status(*report);
}

int
command_check(const Plan& plan, const std::string& token_file, const std::string& format_text,
              const std::string& output, CheckDetail detail, OverallLine overall, CheckOptions options,
              const SshArgs& ssh)
{
  auto format = parse_check_format(format_text);
  if (!format) {
    std::cerr << "portmatrix: --format must be table, json, junit or html\n";
    return k_exit_input;
  }
  if (ssh.enabled) {
    auto remote = ssh;
    remote.format = format_text;
    remote.output = output;
    remote.verbose = detail == CheckDetail::every_flow;
    return command_check_ssh(plan, remote, std::move(options), [&](const Token& token, const CheckOptions& with) {
      return check_and_report(plan, token, *format, output, detail, overall, with);
    });
  }
  if (token_file.empty()) {
    std::cerr << "portmatrix: check needs --token-file (or --ssh, which makes one for the run)\n";
    return k_exit_input;
  }
  auto token = load_token(token_file);
  if (!token) return k_exit_input;
  return check_and_report(plan, *token, *format, output, detail, overall, std::move(options));
}

int
command_preflight(const Plan& plan, const std::string& node_name, const std::string& mode_text, bool no_address_check,
                  const std::string& format_text, const std::string& output)
{
  auto format = parse_check_format(format_text);
  if (!format || *format == CheckFormat::html) {
    std::cerr << "portmatrix: --format must be table, json or junit\n";
    return k_exit_input;
  }
  if (node_name.empty()) {
    std::cerr << "portmatrix: preflight needs --node NAME (or --ssh: every node)\n";
    return k_exit_input;
  }
  const auto* node = find_node(plan, node_name);
  if (!node) return k_exit_input;
  PreflightOptions options;
  options.mode = mode_text == "install" ? PreflightMode::install : PreflightMode::running;
  options.address_check = !no_address_check;
  if (const char* root = std::getenv("PORTMATRIX_HOST_ROOT")) options.root = root; // tests: a fixture /proc and /sys
  auto report = run_preflight(plan, *node, options);
  if (!report) {
    std::cerr << "portmatrix: preflight: " << report.error() << "\n";
    return k_exit_input;
  }
  auto render = [&](CheckFormat as, Colour colour) { return render_preflight(*report, as, colour); };
  if (!emit_report(output, *format, CheckFormat::table, render)) return k_exit_input;
  return exit_status(*report);
}

int
command_preflight_ssh(const Plan& plan, const SshArgs& ssh, const std::string& node_name, const std::string& mode,
                      bool no_address_check, const std::string& format, const std::string& output)
{
  if (format != "table" && format != "json" && format != "junit") {
    std::cerr << "portmatrix: --format must be table, json or junit\n";
    return k_exit_input;
  }
  if (!node_name.empty()) {
    std::cerr << "portmatrix: preflight --ssh runs on every node: leave out --node\n";
    return k_exit_input;
  }
  std::vector<std::string> forward{"--mode", mode};
  if (no_address_check) forward.push_back("--no-address-check");
  return command_nodes_ssh(plan, ssh, "preflight", forward, format, output);
}

struct EgressArgs
{
  std::string format = "table";
  std::string proxy;
  std::string no_proxy;
  std::string output;
  int timeout_ms = 3000;
  int deadline_s = 20;
};

// Writes `text` to `output` (whole or not at all), or prints it.
bool
emit(const std::string& text, const std::string& output)
{
  if (!output.empty()) return write_file(output, text);
  std::cout << text;
  return true;
}

int
command_egress(const std::string& inventory_path, const std::string& profile_name, const EgressArgs& args)
{
  auto format = parse_egress_format(args.format);
  if (!format) {
    std::cerr << "portmatrix: --format must be table, json, junit, squid or domains\n";
    return k_exit_input;
  }
  std::vector<EgressHost> hosts;
  std::string cluster = "cluster";
  std::string inventory_proxy;
  std::string inventory_no_proxy;
  if (!inventory_path.empty()) {
    auto plan = load_plan(inventory_path, profile_name);
    if (!plan) return k_exit_input;
    hosts = resolve_egress(plan->matrix, &plan->inventory);
    cluster = plan->inventory.cluster;
    inventory_proxy = plan->inventory.egress.proxy;
    inventory_no_proxy = plan->inventory.egress.no_proxy;
  } else {
    auto profile = load_profile(profile_name.empty() ? "apinizer" : profile_name);
    if (!profile) {
      print(profile.error());
      return k_exit_input;
    }
    hosts = resolve_egress(resolve(std::move(*profile), nullptr), nullptr);
  }
  if (is_allowlist(*format)) {
    auto label = inventory_path.empty() ? "profile " + (profile_name.empty() ? std::string("apinizer") : profile_name)
                                        : "cluster " + cluster;
    return emit(render_allowlist(hosts, *format, label), args.output) ? 0 : k_exit_input;
  }

  // --proxy, else the inventory's egress proxy (what the agents use), else the environment.
  auto proxy = args.proxy.empty() && !inventory_proxy.empty()
                 ? proxy_settings(inventory_proxy, inventory_no_proxy, [](const char* name) { return std::getenv(name); },
                                  k_inventory_proxy_label)
                 : proxy_settings(args.proxy, args.no_proxy, [](const char* name) { return std::getenv(name); });
  if (!proxy) {
    std::cerr << "portmatrix: " << proxy.error() << "\n";
    return k_exit_input;
  }
  EgressOptions options;
  options.proxy = *proxy;
  options.timeout = std::chrono::milliseconds(args.timeout_ms);
  options.deadline = std::chrono::seconds(args.deadline_s);
  EgressReport report;
  report.cluster = cluster;
  report.proxy_source = proxy->https || proxy->http ? proxy->source : "";
  auto targets = egress_targets(hosts, &report.unchecked);
  bool progress_tty = ::isatty(STDERR_FILENO) == 1;
  if (progress_tty) {
    options.progress = [](std::size_t done, std::size_t total, std::chrono::milliseconds elapsed) {
      auto seconds = elapsed.count() / 1000.0;
      std::cerr << fmt::format("\r\033[Kegress: {}/{} hosts checked, {:.1f}/s, {:.1f} s", done, total,
                               seconds > 0 ? done / seconds : 0.0, seconds)
                << std::flush;
    };
  }
  auto started = std::chrono::steady_clock::now();
  report.results = run_egress(targets, options);
  if (progress_tty) std::cerr << "\r\033[K" << std::flush;
  report.duration =
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  auto render = [&](EgressFormat as, Colour colour) { return render_egress(report, as, colour); };
  if (!emit_report(args.output, *format, EgressFormat::table, render)) return k_exit_input;
  return report.failed() == 0 ? 0 : 1;
}

int
command_egress_ssh(const std::string& inventory_path, const std::string& profile_name, const EgressArgs& args,
                   const SshArgs& ssh)
{
  if (inventory_path.empty()) {
    std::cerr << "portmatrix: egress --ssh needs --inventory (its nodes are where it runs)\n";
    return k_exit_input;
  }
  if (args.format != "table" && args.format != "json" && args.format != "junit") {
    std::cerr << "portmatrix: egress --ssh: --format must be table, json or junit\n";
    return k_exit_input;
  }
  auto plan = load_plan(inventory_path, profile_name);
  if (!plan) return k_exit_input;
  std::vector<std::string> forward{"--timeout-ms", std::to_string(args.timeout_ms), "--deadline",
                                   std::to_string(args.deadline_s)};
  if (!args.proxy.empty()) forward.insert(forward.end(), {"--proxy", args.proxy});
  if (!args.no_proxy.empty()) forward.insert(forward.end(), {"--no-proxy", args.no_proxy});
  return command_nodes_ssh(*plan, ssh, "egress", forward, args.format, args.output);
}

} // namespace

int
run_cli(int argc, char** argv)
{
  CLI::App app{"portmatrix: a cluster's network port requirements as data, firewall rules and load-balancer\n"
               "configuration (and, with its agent, a live check).",
               "portmatrix"};
  app.set_version_flag("--version", build_info());
  app.require_subcommand(1);
  app.fallthrough(false);

  std::string profile;
  std::string inventory;
  std::string ports_format = "table";
  std::string ports_flows = "pairs";
  std::string diff_format = "table";
  std::string firewall_format = "nftables";
  std::string lb_format;
  std::string node;
  std::string out_dir;
  bool all = false;

  // An explicitly empty --profile "" would read as "not given" (the default profile).
  const CLI::Validator named_profile([](const std::string& value) { return value.empty() ? "no profile named" : ""; },
                                     "");

  auto* ports = app.add_subcommand("ports", "Print the requirement matrix (and, with --inventory, the node-to-node flows)");
  ports->add_option("--profile", profile, "Built-in profile name or YAML path; several with commas (default: the inventory's, else apinizer)")->check(named_profile);
  ports->add_option("--inventory", inventory, "Inventory YAML: adds the concrete flows")->check(CLI::ExistingFile);
  ports->add_option("--format", ports_format, "table, markdown, json or csv")->capture_default_str();
  ports->add_option("--flows", ports_flows,
                    "With --inventory: pairs (every node pair; O(nodes^2) lines) or groups (one entry per "
                    "requirement with its nodes and pair count: for large clusters)")
    ->capture_default_str();

  std::string diff_a;
  std::string diff_b;
  auto* diff = app.add_subcommand("diff", "Requirements added, removed or changed between two profiles, with reasons");
  diff->add_option("PROFILE_A", diff_a, "Profile name or path")->required();
  diff->add_option("PROFILE_B", diff_b, "Profile name or path")->required();
  diff->add_option("--format", diff_format, "table, markdown or json")->capture_default_str();

  auto* firewall = app.add_subcommand("firewall", "Host firewall that admits exactly what a node must receive");
  // Not required() here: `firewall apply ...` gives it to its own subcommand.
  firewall->add_option("--inventory", inventory, "Inventory YAML (required)")->check(CLI::ExistingFile);
  firewall->add_option("--profile", profile, "Override the inventory's profile")->check(named_profile);
  firewall->add_option("--node", node, "The node to generate for (printed on stdout, or written into --out DIR)");
  firewall->add_flag("--all", all, "Every node, one file each in --out DIR");
  firewall->add_option("--out", out_dir, "Directory to write into (one file per node with --all)");
  firewall->add_option("--format", firewall_format, "nftables, iptables, firewalld or ufw")->capture_default_str();
  FirewallActionArgs firewall_action;
  firewall->require_subcommand(0, 1);
  add_firewall_actions(*firewall, firewall_action);

  auto* lb = app.add_subcommand("lb", "Load-balancer configuration: haproxy.cfg, or keepalived.conf per load-balancer node");
  lb->add_option("--inventory", inventory, "Inventory YAML")->required()->check(CLI::ExistingFile);
  lb->add_option("--profile", profile, "Override the inventory's profile")->check(named_profile);
  lb->add_option("--format", lb_format, "haproxy or keepalived")->required();
  lb->add_option("--node", node, "keepalived: the load-balancer node (needed when there are several)");
  lb->add_option("--out", out_dir, "Write file(s) into this directory instead of stdout");

  std::string token_file;
  auto* agent = app.add_subcommand("agent", "Run the agent on a node: listen on its required ports, serve check");
  agent->add_option("--inventory", inventory, "Inventory YAML")->required()->check(CLI::ExistingFile);
  agent->add_option("--profile", profile, "Override the inventory's profile")->check(named_profile);
  agent->add_option("--node", node, "This node's name in the inventory")->required();
  agent->add_option("--token-file", token_file, "File holding the shared secret (mode 600), or - for standard input")->required();
  int exit_after_s = 0;
  agent->add_option("--exit-after", exit_after_s, "End by itself after this many seconds (0: run until stopped)")
    ->capture_default_str()
    ->check(CLI::Range(0, 7 * 24 * 3600));

  std::string check_format = "table";
  std::string output;
  int timeout_ms = 1000;
  int retries = 1;
  int deadline_s = 30;
  auto* check = app.add_subcommand("check", "Probe every flow from every node through the agents; diagnose failures");
  check->add_option("--inventory", inventory, "Inventory YAML")->required()->check(CLI::ExistingFile);
  check->add_option("--profile", profile, "Override the inventory's profile")->check(named_profile);
  check->add_option("--token-file", token_file, "File holding the shared secret (mode 600), or - for standard input");
  check->add_option("--format", check_format, "table, json, junit or html")->capture_default_str();
  check->add_option("--output", output,
                    "Write the report here (whole or not at all) instead of stdout; stderr gets its overall line");
  bool check_verbose = false;
  check->add_flag("--verbose,-v", check_verbose, "The table lists every flow (by default: failures by cause, untested, per direction)");
  check->add_option("--timeout-ms", timeout_ms, "Per-probe timeout")->capture_default_str()->check(CLI::Range(10, 60000));
  check->add_option("--retries", retries,
                    "Tries more for a port that got no answer or no identity, after the first pass (0: a dropped "
                    "range settles in one timeout, but a reply lost on a busy host reads as a failure)")
    ->capture_default_str()
    ->check(CLI::Range(0, 3));
  check->add_option("--deadline", deadline_s, "Seconds the whole check may take")->capture_default_str()->check(CLI::Range(1, 3600));
  int conntrack_ceiling = k_default_conntrack_ceiling;
  check->add_option("--conntrack-ceiling", conntrack_ceiling,
                    "Percent of a node's conntrack table its probes may fill; no probe starts while it is fuller, so a "
                    "running node keeps room for its live connections (100: no limit)")
    ->capture_default_str()
    ->check(CLI::Range(1, 100));
  EgressRoundOptions check_egress;
  bool check_strict = false;
  int egress_deadline_s = 10;
  check->add_flag("--strict", check_strict,
                  "Exit 1 when the inventory leaves a requirement untested (no client node, no load balancer, ...) or a "
                  "pair's round trip is above its requirement's bound (max_rtt_ms)");
  check->add_flag("--egress", check_egress.enabled,
                  "Also have every agent run `egress` from its node (after the probes), through the inventory's egress "
                  "proxy, else its own environment's");
  check->add_option("--egress-deadline", egress_deadline_s, "--egress: seconds the egress round may take")->capture_default_str()->check(CLI::Range(1, 25));
  std::string coverage = "full";
  std::optional<std::uint64_t> seed;
  int sample_ports = k_default_sample_ports;
  bool estimate = false;
  int probe_cost_us = int(k_measured_probe_cost.count());
  check->add_option("--coverage", coverage,
                    "full: every port of every flow; sample (1,000+ nodes): every port between one representative "
                    "pair per pair of ruleset groups, the range's edges and --sample-ports seeded ports elsewhere "
                    "(docs/coverage.md)")
    ->capture_default_str()
    ->check(CLI::IsMember({"full", "sample"}));
  check->add_option("--seed", seed, "--coverage sample: the seed of the sampled ports (default: random; the report "
                                    "names it, so a run can be repeated)");
  check->add_option("--sample-ports", sample_ports, "--coverage sample: random ports per flow besides its range's edges")
    ->capture_default_str()
    ->check(CLI::Range(0, k_max_sample_ports));
  std::string results_shown = "all";
  check->add_option("--results", results_shown,
                    "all, or failures: the report lists the failed and skipped flows only (the passes are counted)")
    ->capture_default_str()
    ->check(CLI::IsMember({"all", "failures"}));
  check->add_flag("--estimate", estimate,
                  "Probe nothing: print the probes and wall time of a check of this inventory, full and sample");
  check->add_option("--probe-cost-us", probe_cost_us,
                    "--estimate: an agent's CPU per probe, as bench/run.sh measures it")
    ->capture_default_str()
    ->check(CLI::Range(1, 100000));

  SshArgs ssh;
  add_ssh_options(*check, ssh, SshCommand::check);
  // check --ssh --coordinator NODE passes the nodes whose ssh failed (NODE=REASON) to the node's check.
  std::vector<std::string> absent;
  check->add_option("--absent", absent)->group("");
  // ... and --overall-line when the workstation writes the report to a file: the overall line on stderr too.
  bool overall_line = false;
  check->add_flag("--overall-line", overall_line)->group("");

  EgressArgs egress_args;
  auto* egress = app.add_subcommand(
    "egress",
    "From this host: DNS, TCP and TLS to the internet hosts the installation needs (or print their allowlist)");
  egress->footer(
    "Verdicts: ok, dns-failure, refused, timeout, tls-untrusted, tls-name-mismatch, proxy-denied (the proxy\n"
    "answered 403/407 or refused the request), proxy-unreachable (the proxy itself does not answer). Through a\n"
    "proxy, its 500/502/503 (it could not reach the host; it does not say whether DNS or the connection failed)\n"
    "count as refused and its 504 as timeout. Certificates are verified against the system trust store\n"
    "(SSL_CERT_FILE/SSL_CERT_DIR honoured). The proxy comes from --proxy, else the inventory's egress proxy\n"
    "(egress: {proxy, no_proxy}: what the agents use for check --egress), else https_proxy/HTTPS_PROXY (and\n"
    "http_proxy/HTTP_PROXY for plain-HTTP ports); no_proxy/NO_PROXY (or --no-proxy) lists hosts reached directly.\n"
    "Exit status: 0 every host ok, 1 some host failed, 2 input error.");
  egress->add_option("--inventory", inventory, "Inventory YAML (its options and egress overrides apply)")->check(CLI::ExistingFile);
  egress->add_option("--profile", profile, "Profile (default: the inventory's, else apinizer)")->check(named_profile);
  egress->add_option("--proxy", egress_args.proxy, "http://[user:pass@]host:port (default: from the environment)");
  egress->add_option("--no-proxy", egress_args.no_proxy, "Hosts reached directly: names, .domains, * (default: NO_PROXY)");
  egress->add_option("--format", egress_args.format, "table, json, junit, squid or domains (the last two: the allowlist, no network)")->capture_default_str();
  egress->add_option("--output", egress_args.output, "Write the report here (whole or not at all) instead of stdout");
  egress->add_option("--timeout-ms", egress_args.timeout_ms, "Per step: connect, proxy answer, TLS handshake")->capture_default_str()->check(CLI::Range(10, 60000));
  egress->add_option("--deadline", egress_args.deadline_s, "Seconds the whole run may take")->capture_default_str()->check(CLI::Range(1, 3600));

  std::string preflight_mode = "install";
  bool no_address_check = false;
  auto* preflight = app.add_subcommand("preflight", "On a node: its ports free (or who holds them), its live firewall per inbound flow, kernel prerequisites");
  preflight->add_option("--inventory", inventory, "Inventory YAML")->required()->check(CLI::ExistingFile);
  preflight->add_option("--profile", profile, "Override the inventory's profile")->check(named_profile);
  preflight->add_option("--node", node, "This node's name in the inventory (not with --ssh: every node)");
  preflight->add_option("--mode", preflight_mode, "install (a taken port fails) or running (owners shown)")->capture_default_str()->check(CLI::IsMember({"install", "running"}));
  preflight->add_flag("--no-address-check", no_address_check, "Run even when the node's address is not on this host");
  preflight->add_option("--format", check_format, "table, json or junit")->capture_default_str();
  preflight->add_option("--output", output, "Write the report here (whole or not at all) instead of stdout");
  add_ssh_options(*preflight, ssh, SshCommand::node);
  add_ssh_options(*egress, ssh, SshCommand::node);

  auto* demo = app.add_subcommand("demo", "The guide's topology on a simulated cluster, one fault planted, checked live");
  demo->add_option("--out", out_dir,
                   "Also write every artefact here: the inventory, each node's rules, haproxy.cfg, keepalived.conf "
                   "per load-balancer node, and the check's report (report.json, report.html)");
  bool files_only = false;
  demo->add_flag("--files-only", files_only, "With --out: only write the guide topology's files; run nothing")
    ->needs(demo->get_option("--out"));

  auto* profiles = app.add_subcommand("profiles", "List the built-in profiles, or print one's YAML");
  std::string show;
  profiles->add_option("NAME", show, "Print this built-in profile's YAML");

  // Hidden (group ""): the man pages and completions the build generates from
  // these definitions, and the words the completions look up as they complete.
  std::string docs_out;
  auto* docs = app.add_subcommand("__docs", "Write the man pages and shell completions into --out DIR")->group("");
  docs->add_option("--out", docs_out)->required();
  std::string complete_what;
  auto* complete = app.add_subcommand("__complete", "Words for shell completion, one per line")->group("");
  complete->add_option("WHAT", complete_what)->required()->check(CLI::IsMember({"profiles", "nodes"}));
  complete->add_option("--inventory", inventory);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (auto message = mistyped_argument(app, e)) {
      std::cerr << *message;
      return k_exit_input;
    }
    int code = app.exit(e);
    return code == 0 ? 0 : k_exit_input;
  }

  if (*docs) {
    auto files = docs_files(describe_commands(app), "portmatrix " PORTMATRIX_VERSION);
    for (const auto* folder : {"man/man1", "completions"}) {
      if (!make_directory((std::filesystem::path(docs_out) / folder).string())) return k_exit_input;
    }
    return write_outputs(files, docs_out);
  }
  if (*complete) {
    std::cout << completion_words(complete_what, inventory);
    return 0;
  }
  if (*ports) return command_ports(profile, inventory, ports_format, ports_flows);
  if (*diff) return command_diff(diff_a, diff_b, diff_format);
  if (*firewall && !firewall_action.action.empty()) {
    auto plan = load_plan(firewall_action.inventory, firewall_action.profile);
    if (!plan) return k_exit_input;
    return command_firewall_action(*plan, firewall_action);
  }
  if (*firewall && inventory.empty()) {
    std::cerr << "portmatrix: firewall needs --inventory FILE\n";
    return k_exit_input;
  }
  if (*firewall || *lb || *agent || *check || *preflight) {
    auto plan = load_plan(inventory, profile);
    if (!plan) return k_exit_input;
    if (*firewall) return command_firewall(*plan, node, all, out_dir, firewall_format);
    if (*agent) return command_agent(*plan, node, token_file, exit_after_s);
    check_egress.deadline = std::chrono::seconds(egress_deadline_s);
    if (*check) {
      CoverageOptions coverage_options;
      coverage_options.mode = *parse_coverage_mode(coverage);
      coverage_options.seed = seed ? *seed : random_seed();
      coverage_options.sample_ports = sample_ports;
      if (estimate) {
        EstimateArgs args;
        args.sample = coverage_options;
        args.probe_cost = std::chrono::microseconds(probe_cost_us);
        args.timeout = std::chrono::milliseconds(timeout_ms);
        args.json = check_format == "json";
        return command_check_estimate(*plan, args);
      }
      CheckOptions options;
      options.coverage = coverage_options;
      options.results = results_shown == "failures" ? CheckOptions::Results::failures : CheckOptions::Results::all;
      options.timeout = std::chrono::milliseconds(timeout_ms);
      options.retries = retries;
      options.deadline = std::chrono::seconds(deadline_s);
      options.conntrack_ceiling = conntrack_ceiling;
      options.egress = check_egress;
      options.untested = check_strict ? UntestedPolicy::fail : UntestedPolicy::warn;
      for (const auto& item : absent) {
        auto equals = item.find('=');
        options.absent[item.substr(0, equals)] = equals == std::string::npos ? "absent" : item.substr(equals + 1);
      }
      ssh.inventory_path = inventory;
      ssh.profile = profile;
      return command_check(*plan, token_file, check_format, output,
                           check_verbose ? CheckDetail::every_flow : CheckDetail::summary,
                           overall_line ? OverallLine::always : OverallLine::with_a_file, std::move(options), ssh);
    }
    if (*preflight && ssh.enabled) {
      ssh.inventory_path = inventory;
      ssh.profile = profile;
      return command_preflight_ssh(*plan, ssh, node, preflight_mode, no_address_check, check_format, output);
    }
    if (*preflight) return command_preflight(*plan, node, preflight_mode, no_address_check, check_format, output);
    return command_lb(*plan, lb_format, node, out_dir);
  }
  if (*egress && ssh.enabled) {
    ssh.inventory_path = inventory;
    ssh.profile = profile;
    return command_egress_ssh(inventory, profile, egress_args, ssh);
  }
  if (*egress) return command_egress(inventory, profile, egress_args);
  if (*demo) return run_demo(out_dir, files_only ? DemoRun::files_only : DemoRun::live);
  if (*profiles) {
    if (show.empty()) {
      for (const auto& name : builtin_profile_names()) {
        auto loaded = load_profile(name);
        std::cout << fmt::format("{:<16} {}\n", name, loaded ? loaded->description : "(does not load)");
      }
      return 0;
    }
    auto text = builtin_profile_text(show);
    if (!text) {
      auto names = builtin_profile_names();
      std::string known;
      for (const auto& name : names) known += (known.empty() ? "" : ", ") + name;
      std::cerr << fmt::format("portmatrix: no built-in profile '{}'{} (built-in: {})\n", printable(show),
                               did_you_mean(show, names), known);
      return k_exit_input;
    }
    std::cout << *text;
    return 0;
  }
  return k_exit_input;
}

} // namespace portmatrix
