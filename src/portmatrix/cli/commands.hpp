// The subcommands run_cli() (cli.cpp) dispatches to once CLI11 has parsed
// their options: the planning ones in commands_plan.cpp (files in, text out:
// no network, no privileges) and the live ones in commands_live.cpp (the
// agent, check, preflight and egress, here or over --ssh). Each prints its
// own diagnostics and returns its exit status: 0 ok, 1 a required flow or
// host fails, 2 a usage or input error.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "check/check.hpp"
#include "cli/remote.hpp"
#include "plan/plan.hpp"
#include "report/check_report.hpp"

namespace portmatrix {

// Loads the profile (explicit, else the inventory's) and the inventory, and
// checks one against the other. Prints every problem and returns nullopt.
std::optional<Plan> load_plan(const std::string& inventory_path, const std::string& profile_override);

// The node named `name`, else nullptr after printing the inventory's nodes.
const Node* find_node(const Plan& plan, const std::string& name);

int command_ports(const std::string& profile_name, const std::string& inventory_path, const std::string& format_text,
                  const std::string& flows_text);
int command_diff(const std::string& a, const std::string& b, const std::string& format_text);
int command_firewall(const Plan& plan, const std::string& node_name, bool all, const std::string& out_dir,
                     const std::string& format_text);
int command_lb(const Plan& plan, const std::string& format, const std::string& node_name, const std::string& out_dir);
// The built-in profiles, one line each; or, given a name, that profile's YAML.
int command_profiles(const std::string& name);

int command_agent(const Plan& plan, const std::string& node_name, const std::string& token_file, int exit_after_s);

// Whether the overall line goes to stderr when the report goes to stdout: a
// check run by check --ssh --coordinator NODE --output FILE prints it there,
// and the workstation, which writes FILE, prints it (the hidden --overall-line).
enum class OverallLine { with_a_file, always };

int command_check(const Plan& plan, const std::string& token_file, const std::string& format_text,
                  const std::string& output, CheckDetail detail, OverallLine overall, CheckOptions options,
                  const SshArgs& ssh);
int command_preflight(const Plan& plan, const std::string& node_name, const std::string& mode_text,
                      bool no_address_check, const std::string& format_text, const std::string& output);
int command_preflight_ssh(const Plan& plan, const SshArgs& ssh, const std::string& node_name, const std::string& mode,
                          bool no_address_check, const std::string& format, const std::string& output);

struct EgressArgs
{
  std::string format = "table";
  std::string proxy;
  std::string no_proxy;
  std::string output;
  int timeout_ms = 3000;
  int deadline_s = 20;
};

int command_egress(const std::string& inventory_path, const std::string& profile_name, const EgressArgs& args);
int command_egress_ssh(const std::string& inventory_path, const std::string& profile_name, const EgressArgs& args,
                       const SshArgs& ssh);

} // namespace portmatrix
