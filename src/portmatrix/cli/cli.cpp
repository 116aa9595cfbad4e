// The command line. Parsing is CLI11's; loading, planning and rendering are
// the library's. Input errors are printed once, all of them, as
// file:line:column, and give exit status 2.
#include "cli/cli.hpp"
#include "cli/commands.hpp"
#include "cli/demo.hpp"
#include "cli/docs.hpp"
#include "cli/estimate.hpp"
#include "cli/firewall_apply.hpp"
#include "cli/output.hpp"
#include "cli/remote.hpp"
#include "cli/suggest.hpp"

#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "build_info.hpp"
#include "check/check.hpp"
#include "crypto/hmac.hpp"

namespace portmatrix {
namespace {

// check --coverage sample without --seed: a fresh one, which the report names.
std::uint64_t
random_seed()
{
  return std::stoull(random_hex(8), nullptr, 16);
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
  std::uint64_t conntrack_max = k_default_conntrack_max;
  check->add_option("--conntrack-max", conntrack_max,
                    "--estimate: each node's nf_conntrack_max (kube-proxy sets 32768 per core, at least 131072)")
    ->capture_default_str()
    ->check(CLI::Range(std::uint64_t(1000), std::uint64_t(1) << 32));

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
        args.conntrack_max = conntrack_max;
        args.conntrack_ceiling = conntrack_ceiling;
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
  if (*profiles) return command_profiles(show);
  return k_exit_input;
}

} // namespace portmatrix
