// `firewall apply|confirm|rollback|remove|status`: putting the generated
// rules on nodes without locking anyone out (apply/ does the node's part),
// on this node or, with --ssh, on the inventory's nodes from a workstation.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "cli/remote.hpp"
#include "plan/plan.hpp"

namespace portmatrix {

struct FirewallActionArgs
{
  std::string action;  // apply, confirm, rollback, remove, status
  std::string inventory;
  std::string profile;
  std::string node;    // this node; with --ssh: only this one
  std::string role;    // with --ssh: only the nodes with this role
  std::string backend; // nftables, iptables, firewalld, ufw (empty: the last apply's, else nftables)
  std::string format = "table"; // the report: table or json
  std::string output;
  int confirm_timeout_s = 60;
  bool no_verify = false;
  int timeout_ms = 1000; // apply --ssh: the check's per-probe timeout
  int deadline_s = 30;   // apply --ssh: the check's deadline
  std::string state_dir = "/var/lib/portmatrix";
  std::string root = "/";
  SshArgs ssh;
};

// Adds the five subcommands to `firewall`, every option bound into `args`
// (action set to the one given). Returns them, for the caller to test which ran.
std::vector<CLI::App*> add_firewall_actions(CLI::App& firewall, FirewallActionArgs& args);

// Runs args.action; the exit status (0 done / in sync, 1 failed / rolled back / drift, 2 input error).
int command_firewall_action(const Plan& plan, FirewallActionArgs args);

} // namespace portmatrix
