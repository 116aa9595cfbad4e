// The live subcommands (commands.hpp): the agent, check, preflight and
// egress, on this host or, with --ssh, on every node (remote.cpp).
#include "cli/commands.hpp"
#include "cli/output.hpp"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <fmt/format.h>

#include "agent/agent.hpp"
#include "crypto/hmac.hpp"
#include "egress/runner.hpp"
#include "plan/egress.hpp"
#include "report/check_report.hpp"
#include "report/egress_report.hpp"
#include "report/preflight_report.hpp"

namespace portmatrix {
namespace {

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

// Writes `text` to `output` (whole or not at all), or prints it.
bool
emit(const std::string& text, const std::string& output)
{
  if (!output.empty()) return write_file(output, text);
  std::cout << text;
  return true;
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

} // namespace

int
command_agent(const Plan& plan, const std::string& node_name, const std::string& token_file, int exit_after_s)
{
  const auto* node = find_node(plan, node_name);
  auto token = load_token(token_file);
  if (!node || !token) return k_exit_input;
  return run_agent(plan, *node, *token, std::chrono::seconds(exit_after_s));
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

} // namespace portmatrix
