// `firewall apply|confirm|rollback|remove|status`. On a node, each is one
// call into apply/ with the node's generated rules. With --ssh, apply is a
// rollout from the workstation: the portmatrix binary and inventory go to
// every node, agents start everywhere (unless --no-verify), then one canary
// node and after it one ruleset group at a time: apply (the node arms its own
// rollback), then a NEW ssh connection to each node and a live check of the
// flows into and out of them; both pass: confirm (the rules persist), else
// roll the group back and stop, saying which nodes run the new rules.
// confirm, rollback, remove and status with --ssh run the same command on
// each selected node and merge the reports.
#include "cli/firewall_apply.hpp"

#include <unistd.h>

#include <atomic>
#include <iostream>
#include <mutex>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apply/apply.hpp"
#include "apply/drift.hpp"
#include "host/interfaces.hpp"
#include "apply/rollout.hpp"
#include "check/check.hpp"
#include "cli/output.hpp"
#include "crypto/hmac.hpp"
#include "firewall/firewall.hpp"
#include "remote/fleet.hpp"

namespace portmatrix {

std::vector<CLI::App*>
add_firewall_actions(CLI::App& firewall, FirewallActionArgs& args)
{
  struct Action
  {
    const char* name;
    const char* help;
  };
  const Action actions[] = {
    {"apply", "Apply the node's rules with an automatic rollback unless confirmed (--ssh: canary, then each "
              "role group; confirmed after a new ssh login and a live check pass)"},
    {"confirm", "Keep the rules a waiting apply put in place: stop its rollback, write the boot-time files"},
    {"rollback", "Undo a waiting apply now: the saved state back"},
    {"remove", "Remove portmatrix's rules, sets and boot-time files; the rest of the firewall stays"},
    {"status", "Drift: the live firewall against the rules portmatrix would generate, by meaning"},
  };
  std::vector<CLI::App*> out;
  for (const auto& action : actions) {
    auto* sub = firewall.add_subcommand(action.name, action.help);
    std::string name = action.name;
    sub->parse_complete_callback([&args, name] { args.action = name; });
    sub->add_option("--inventory", args.inventory, "Inventory YAML")->required()->check(CLI::ExistingFile);
    sub->add_option("--profile", args.profile, "Override the inventory's profile");
    sub->add_option("--node", args.node, "This node's name (with --ssh: only this node)");
    sub->add_option("--role", args.role, "--ssh: only the nodes with this role");
    sub->add_option("--backend", args.backend,
                    "nftables, iptables, firewalld or ufw (default: the last apply's on the node, else nftables)")
      ->check(CLI::IsMember({"nftables", "iptables", "firewalld", "ufw"}));
    sub->add_option("--format", args.format, "table or json")->capture_default_str()->check(CLI::IsMember({"table", "json"}));
    sub->add_option("--output", args.output, "Write the report here (whole or not at all) instead of stdout");
    sub->add_option("--state-dir", args.state_dir,
                    "Where the node keeps the saved state and the rollback (one directory per node in it)")
      ->capture_default_str();
    sub->add_option("--root", args.root, "Where the boot-time files are written (/etc/... under it)")->capture_default_str();
    if (name == "apply") {
      sub->add_option("--confirm-timeout", args.confirm_timeout_s,
                      "Seconds until the node restores its previous rules by itself, unless confirmed")
        ->capture_default_str()
        ->check(CLI::Range(10, 3600));
      sub->add_flag("--no-verify", args.no_verify,
                    "--ssh: confirm after the new ssh login alone, without the live check of the node's flows");
      sub->add_option("--timeout-ms", args.timeout_ms, "--ssh: the check's per-probe timeout")
        ->capture_default_str()
        ->check(CLI::Range(10, 60000));
      sub->add_option("--deadline", args.deadline_s, "--ssh: seconds each group's check may take")
        ->capture_default_str()
        ->check(CLI::Range(1, 3600));
    }
    add_ssh_options(*sub, args.ssh, SshCommand::node);
    out.push_back(sub);
  }
  return out;
}

namespace {

// One node's answer to an action, as printed and as merged over --ssh.
struct ActionResult
{
  std::string node;
  std::string action;
  bool ok = false;
  std::string message;
};

std::string
render_result(const ActionResult& result, const std::string& format)
{
  if (format == "json") {
    nlohmann::json out{{"node", result.node}, {"action", result.action}, {"ok", result.ok}, {"message", result.message}};
    return out.dump(2) + "\n";
  }
  return fmt::format("{}: {}: {}\n", result.node, result.action, result.message);
}

int
emit_result(const ActionResult& result, const FirewallActionArgs& args)
{
  auto text = render_result(result, args.format);
  if (!args.output.empty()) {
    if (!write_file(args.output, text)) return k_exit_input;
  } else {
    std::cout << text;
  }
  if (!result.ok && args.format == "json") std::cerr << "portmatrix: firewall " << result.action << ": " << result.message << "\n";
  return result.ok ? 0 : 1;
}

std::optional<FirewallFormat>
backend_of(ApplyHost& host, const FirewallActionArgs& args, const ApplyOptions& options)
{
  if (!args.backend.empty()) return parse_firewall_format(args.backend);
  auto state = read_apply_state(host, node_state_dir(options, args.node));
  if (auto it = state.find("backend"); it != state.end()) return parse_firewall_format(it->second);
  return FirewallFormat::nftables;
}

ApplyOptions
apply_options(const FirewallActionArgs& args)
{
  ApplyOptions options;
  options.confirm_timeout = std::chrono::seconds(args.confirm_timeout_s);
  options.state_dir = args.state_dir;
  options.root = args.root;
  return options;
}

// firewall status on this host: the live firewall against the plan, by the backend.
int
local_status(const Plan& plan, const Node& node, const FirewallActionArgs& args)
{
  auto host = make_system_apply_host();
  auto format = backend_of(*host, args, apply_options(args));
  auto backend = format ? make_apply_backend(*format) : nullptr;
  if (!backend) {
    std::cerr << fmt::format("portmatrix: firewall status: no backend '{}' (nftables, iptables, ufw or firewalld; "
                             "docs/apply.md)\n",
                             format ? to_string(*format) : "unknown");
    return k_exit_input;
  }
  auto report = backend->drift(*host, plan, node, interface_with_address(node.address).value_or(""));
  if (!report) {
    std::cerr << "portmatrix: firewall status: " << report.error() << "\n";
    return k_exit_input;
  }
  auto text = args.format == "json" ? render_drift_json(*report) : render_drift_table(*report);
  if (!args.output.empty()) {
    if (!write_file(args.output, text)) return k_exit_input;
  } else {
    std::cout << text;
  }
  return report->in_sync() ? 0 : 1;
}

// The action on this host, for the node named by --node.
int
local_action(const Plan& plan, const FirewallActionArgs& args)
{
  if (args.node.empty()) {
    std::cerr << fmt::format("portmatrix: firewall {} needs --node NAME (this node), or --ssh\n", args.action);
    return k_exit_input;
  }
  if (!args.role.empty()) {
    std::cerr << "portmatrix: --role selects nodes for --ssh; on a node give --node\n";
    return k_exit_input;
  }
  const auto* node = plan.inventory.find(args.node);
  if (!node) {
    std::cerr << fmt::format("portmatrix: no node '{}' in {}\n", printable(args.node), plan.inventory.file);
    return k_exit_input;
  }
  if (args.action == "status") return local_status(plan, *node, args);
  auto host = make_system_apply_host();
  auto options = apply_options(args);
  ActionResult result{args.node, args.action, false, {}};
  Expected<std::string, std::string> done = unexpected(std::string("unknown action"));
  if (args.action == "apply" || args.action == "remove") {
    auto format = backend_of(*host, args, options);
    auto backend = format ? make_apply_backend(*format) : nullptr;
    if (!backend) {
      std::cerr << fmt::format("portmatrix: firewall {}: no backend '{}' (nftables, iptables, ufw or firewalld; "
                               "docs/apply.md)\n",
                               args.action, format ? to_string(*format) : "unknown");
      return k_exit_input;
    }
    if (args.action == "apply") {
      auto ruleset = make_firewall_generator(*format, plan)->render(*node);
      if (*format == FirewallFormat::firewalld) {
        // The zone is bound to the interface holding the node's address.
        auto interface = interface_with_address(node->address);
        if (!interface) {
          std::cerr << fmt::format("portmatrix: firewall apply: no interface of this host holds {} ({}'s address): "
                                   "the firewalld zone has nothing to bind to\n",
                                   node->address, node->name);
          return k_exit_input;
        }
        ruleset = firewalld_ruleset_for(ruleset, *interface);
      }
      done = apply_rules(*host, *backend, node->name, ruleset, options);
    } else {
      done = remove_rules(*host, *backend, node->name, options);
    }
  } else if (args.action == "confirm") {
    done = confirm_apply(*host, node->name, options);
  } else if (args.action == "rollback") {
    done = rollback_apply(*host, node->name, options);
  }
  result.ok = bool(done);
  result.message = done ? *done : done.error();
  return emit_result(result, args);
}

// The nodes --node / --role select (every node when neither is given).
std::optional<std::vector<const Node*>>
selected_nodes(const Plan& plan, const FirewallActionArgs& args)
{
  std::vector<const Node*> out;
  std::optional<Role> role;
  if (!args.role.empty()) {
    role = parse_role(args.role);
    if (!role) {
      std::cerr << fmt::format("portmatrix: --role: no role '{}'\n", printable(args.role));
      return std::nullopt;
    }
  }
  if (!args.node.empty() && !plan.inventory.find(args.node)) {
    std::cerr << fmt::format("portmatrix: no node '{}' in {}\n", printable(args.node), plan.inventory.file);
    return std::nullopt;
  }
  for (const auto& node : plan.inventory.nodes) {
    if (!args.node.empty() && node.name != args.node) continue;
    if (role && !node.has(*role)) continue;
    out.push_back(&node);
  }
  if (out.empty()) {
    std::cerr << "portmatrix: --node and --role select no node\n";
    return std::nullopt;
  }
  return out;
}

// What every node's `firewall ACTION` gets besides node_arguments().
std::vector<std::string>
forwarded(const FirewallActionArgs& args, const std::string& action)
{
  std::vector<std::string> out{"--state-dir", args.state_dir, "--root", args.root};
  if (!args.backend.empty()) out.insert(out.end(), {"--backend", args.backend});
  if (action == "apply") out.insert(out.end(), {"--confirm-timeout", std::to_string(args.confirm_timeout_s)});
  return out;
}

// Runs `firewall ACTION` on one node through its session; its JSON answer.
ActionResult
run_action(NodeSession& session, const FirewallActionArgs& args, const std::string& action)
{
  ActionResult result{session.node(), action, false, {}};
  std::vector<std::string> command{"firewall", action};
  auto node_args = node_arguments(session, args.ssh);
  command.insert(command.end(), node_args.begin(), node_args.end());
  auto more = forwarded(args, action);
  command.insert(command.end(), more.begin(), more.end());
  command.insert(command.end(), {"--format", "json"});
  std::string output;
  int status = 0;
  if (!session.run_portmatrix(command, output, status)) {
    result.message = session.failure();
    return result;
  }
  if (args.ssh.dry_run) {
    result.ok = true;
    result.message = "(dry run)";
    return result;
  }
  auto parsed = nlohmann::json::parse(output, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    result.message = "the node's answer is not JSON: " + output.substr(0, 300);
    return result;
  }
  result.ok = parsed.value("ok", false) && status == 0;
  result.message = parsed.value("message", "");
  return result;
}

// Where a node stands at the end of a rollout.
struct NodeOutcome
{
  std::string state = "not applied"; // confirmed, rolled back, not applied, failed
  std::string wave;
  std::string detail;
};

// True when `result` involves a node of `wave`: from or to it, or a VIP flow
// it serves (its load balancer, or a backend expected behind the VIP).
bool
involves(const FlowResult& result, const std::set<std::string>& wave, const Plan& plan)
{
  if (wave.count(result.from) || wave.count(result.to)) return true;
  if (result.to != "vip") return false;
  for (const auto& backend : result.backends_expected) {
    if (wave.count(backend)) return true;
  }
  for (const auto& name : wave) {
    const auto* node = plan.inventory.find(name);
    if (node && node->has(Role::loadbalancer)) return true;
  }
  return false;
}

// The live check of the flows into and out of `wave`'s nodes: empty when
// every one passed, else why not (the first failures).
std::string
verify_flows(const Plan& plan, const Token& token, const FirewallActionArgs& args, const std::set<std::string>& wave)
{
  CheckOptions options;
  options.timeout = std::chrono::milliseconds(args.timeout_ms);
  options.deadline = std::chrono::seconds(args.deadline_s);
  auto report = run_check(plan, token, options);
  if (!report) return "the check could not run: " + report.error();
  std::size_t checked = 0;
  std::vector<std::string> bad;
  for (const auto& result : report->results) {
    if (!involves(result, wave, plan)) continue;
    ++checked;
    if (result.verdict == Verdict::pass) continue;
    bad.push_back(fmt::format("{} -> {} {}/{}: {} ({})", result.from, result.to, to_string(result.flow.protocol),
                              to_string(result.flow.range), to_string(result.verdict), result.diagnosis));
  }
  if (bad.empty()) return checked == 0 ? "the check found no flow into or out of these nodes" : "";
  std::string out = fmt::format("{} of {} flows did not pass: ", bad.size(), checked);
  for (std::size_t i = 0; i < bad.size() && i < 5; ++i) out += (i ? "; " : "") + bad[i];
  if (bad.size() > 5) out += fmt::format("; +{} more", bad.size() - 5);
  return out;
}

std::string
render_rollout(const Plan& plan, const std::vector<const Node*>& selected, const std::map<std::string, NodeOutcome>& outcomes,
               const std::string& format, const std::string& verdict)
{
  if (format == "json") {
    nlohmann::json nodes = nlohmann::json::object();
    for (const auto* node : selected) {
      const auto& outcome = outcomes.at(node->name);
      nodes[node->name] = {{"state", outcome.state}, {"wave", outcome.wave}, {"detail", outcome.detail}};
    }
    return nlohmann::json{{"cluster", plan.inventory.cluster}, {"result", verdict}, {"nodes", nodes}}.dump(2) + "\n";
  }
  std::string out;
  for (const auto* node : selected) {
    const auto& outcome = outcomes.at(node->name);
    out += fmt::format("{:<16} {:<12} {}{}\n", node->name, outcome.state, outcome.wave.empty() ? "" : "(" + outcome.wave + ") ",
                       outcome.detail);
  }
  return out + verdict + "\n";
}

int
apply_over_ssh(const Plan& plan, FirewallActionArgs args)
{
  auto selected = selected_nodes(plan, args);
  if (!selected) return k_exit_input;
  if (!args.no_verify && args.deadline_s + 20 > args.confirm_timeout_s) {
    std::cerr << fmt::format("portmatrix: --confirm-timeout {} s leaves no time for the check (--deadline {} s) and a "
                             "new ssh login before the nodes roll back: give at least {} s, or a shorter --deadline\n",
                             args.confirm_timeout_s, args.deadline_s, args.deadline_s + 20);
    return k_exit_input;
  }
  auto waves = rollout_waves(plan.inventory, *selected);
  std::map<std::string, NodeOutcome> outcomes;
  for (const auto* node : *selected) outcomes[node->name] = {};
  if (args.no_verify) {
    std::cerr << "portmatrix: --no-verify: each node is confirmed once a new ssh login succeeds; the flows are NOT checked\n";
  }
  // The check needs an agent at both ends of each flow: every node then;
  // without it, only the selected nodes are connected to.
  args.ssh.nodes.clear();
  if (args.no_verify) {
    for (const auto* node : *selected) args.ssh.nodes.push_back(node->name);
  }
  return with_ssh_fleet(plan, args.ssh, [&](Fleet& fleet, bool tty) {
    auto progress = [&](const std::string& message) {
      if (tty) tty_progress(message);
    };
    fleet.connect();
    fleet.install();
    std::map<std::string, NodeSession*> sessions;
    for (auto& session : fleet.sessions()) sessions[session->node()] = session.get();
    auto secret = random_hex(32);
    auto token = Token::from_text(secret);
    if (!args.no_verify) {
      // The agents live through every wave's apply, login and check.
      auto lifetime = std::chrono::seconds(waves.size() * std::size_t(args.confirm_timeout_s + args.deadline_s) + 120);
      std::atomic<std::size_t> up{0};
      fleet.each([&](NodeSession& session) {
        auto agent_args = node_arguments(session, args.ssh);
        agent_args.insert(agent_args.end(), {"--token-file", "-", "--exit-after", std::to_string(lifetime.count())});
        if (session.start_agent(agent_args, secret, std::chrono::seconds(30))) {
          progress(fmt::format("ssh: {}/{} agents up", ++up, fleet.sessions().size()));
        }
      });
    }
    std::string verdict = "every selected node runs the new rules (confirmed, persistent)";
    bool failed = false;
    for (const auto& wave : waves) {
      std::vector<NodeSession*> nodes;
      std::set<std::string> names;
      for (const auto* node : wave.nodes) {
        nodes.push_back(sessions.at(node->name));
        names.insert(node->name);
        outcomes[node->name].wave = wave.name;
      }
      // 1. Apply (each node arms its own rollback first).
      std::mutex mutex;
      std::vector<NodeSession*> applied;
      std::string why;
      for_each_bounded(nodes.size(), args.ssh.parallel, [&](std::size_t i) {
        auto& session = *nodes[i];
        auto result = session.failed() ? ActionResult{session.node(), "apply", false, session.failure()}
                                       : run_action(session, args, "apply");
        std::lock_guard lock(mutex);
        if (result.ok) {
          applied.push_back(&session);
          outcomes[session.node()].state = "applied";
        } else {
          outcomes[session.node()] = {"failed", wave.name, "apply: " + result.message};
          why += fmt::format("{}{}: apply: {}", why.empty() ? "" : "; ", session.node(), result.message);
        }
      });
      progress(fmt::format("apply: {}: applied on {}/{}", wave.name, applied.size(), nodes.size()));
      // 2. A new ssh login to every node (the admin path survived).
      if (why.empty()) {
        for_each_bounded(applied.size(), args.ssh.parallel, [&](std::size_t i) {
          std::string reason;
          if (applied[i]->new_connection(reason)) return;
          std::lock_guard lock(mutex);
          outcomes[applied[i]->node()].detail = "no new ssh login: " + reason;
          why += fmt::format("{}{}: no new ssh login: {}", why.empty() ? "" : "; ", applied[i]->node(), reason);
        });
      }
      // 3. The live check of the flows into and out of the wave's nodes.
      if (why.empty() && !args.no_verify && !args.ssh.dry_run && token) {
        progress(fmt::format("apply: {}: checking the flows of {} node(s)", wave.name, names.size()));
        why = verify_flows(plan, *token, args, names);
        if (!why.empty()) {
          for (auto* session : applied) outcomes[session->node()].detail = "check: " + why;
        }
      }
      // 4. Confirm every node, or roll the wave back.
      if (why.empty()) {
        for_each_bounded(applied.size(), args.ssh.parallel, [&](std::size_t i) {
          auto result = run_action(*applied[i], args, "confirm");
          std::lock_guard lock(mutex);
          auto& outcome = outcomes[applied[i]->node()];
          if (result.ok) {
            outcome.state = "confirmed";
            outcome.detail = args.no_verify ? "new ssh login ok; flows not checked (--no-verify)"
                                            : "new ssh login ok, its flows pass";
          } else {
            outcome.state = "failed";
            outcome.detail = "confirm: " + result.message;
            why += fmt::format("{}{}: confirm: {}", why.empty() ? "" : "; ", applied[i]->node(), result.message);
          }
        });
      }
      if (!why.empty()) {
        for_each_bounded(applied.size(), args.ssh.parallel, [&](std::size_t i) {
          auto result = run_action(*applied[i], args, "rollback");
          std::lock_guard lock(mutex);
          auto& outcome = outcomes[applied[i]->node()];
          if (outcome.state == "confirmed") return;
          if (result.ok) {
            outcome.state = "rolled back";
          } else {
            outcome.state = "rolling back";
            outcome.detail += fmt::format(" (rollback now failed: {}; the node restores its previous rules by "
                                          "itself within {} s of the apply)",
                                          result.message, args.confirm_timeout_s);
          }
        });
        verdict = fmt::format("stopped at {}: {}", wave.name, why);
        failed = true;
        break;
      }
    }
    progress("");
    if (args.ssh.dry_run) {
      for (const auto& session : fleet.sessions()) {
        std::cout << fmt::format("# node {}\n", session->node());
        for (const auto& command : session->commands()) std::cout << command << "\n";
      }
      return 0;
    }
    auto text = render_rollout(plan, *selected, outcomes, args.format, verdict);
    if (!args.output.empty()) {
      if (!write_file(args.output, text)) return k_exit_input;
    } else {
      std::cout << text;
    }
    if (failed) std::cerr << "portmatrix: firewall apply: " << verdict << "\n";
    return failed ? 1 : 0;
  });
}

} // namespace

int
command_firewall_action(const Plan& plan, FirewallActionArgs args)
{
  if (!args.ssh.enabled) return local_action(plan, args);
  args.ssh.inventory_path = args.inventory;
  args.ssh.profile = args.profile;
  if (args.action == "apply") return apply_over_ssh(plan, args);
  auto selected = selected_nodes(plan, args);
  if (!selected) return k_exit_input;
  for (const auto* node : *selected) args.ssh.nodes.push_back(node->name);
  auto more = forwarded(args, args.action);
  return command_nodes_ssh(plan, args.ssh, "firewall " + args.action, more, args.format, args.output);
}

} // namespace portmatrix
