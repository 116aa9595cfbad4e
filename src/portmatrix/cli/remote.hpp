// --ssh for check, preflight and egress: the same commands, run through the
// system's OpenSSH client on every node of the inventory (remote/).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "check/check.hpp"
#include "crypto/hmac.hpp"
#include "plan/plan.hpp"

namespace portmatrix {

struct SshArgs
{
  bool enabled = false;
  int parallel = 10;
  bool dry_run = false;
  std::string binary; // default: this program
  bool keep_binary = false;
  int exit_after_s = 0; // check: the agents' lifetime (0: the deadlines plus two minutes)
  std::string coordinator; // check: the node that runs the check (empty: this host)
  std::string inventory_path;
  std::string profile; // --profile as given (forwarded to the nodes)
  std::string format;  // check --coordinator: the report's, and where it goes
  std::string output;
  bool verbose = false; // check --coordinator: every flow in the table
  bool preflight = false; // check: each node's preflight (running) before its agent, in the report
  // The nodes to work on (firewall's --node/--role); empty: every node.
  std::vector<std::string> nodes;
};

enum class SshCommand { check, node };

// Adds --ssh, --parallel, --dry-run, --binary, --keep-binary (and for check,
// --exit-after) to `command`.
void add_ssh_options(CLI::App& command, SshArgs& args, SshCommand which);

// The token from standard input (`--token-file -`); prints why not and
// returns nullopt when it is shorter than 16 characters.
std::optional<Token> read_token_from_stdin();

// check --ssh: starts an agent on every node with a fresh token, calls
// `check` (the local coordinator, which prints the report) with the nodes
// whose ssh failed marked absent, then stops the agents and removes
// everything it put on the nodes. With a coordinator, the check runs there
// instead (its report printed as it comes). Returns the exit status.
using CheckWithAgents = std::function<int(const Token&, const CheckOptions&)>;
int command_check_ssh(const Plan& plan, const SshArgs& args, CheckOptions options, const CheckWithAgents& check);

// preflight --ssh / egress --ssh: runs `portmatrix SUBCOMMAND --inventory
// ... --node NAME --format F <forward...>` on every node and prints one
// report (table by node, JSON keyed by node, JUnit one testsuite per node).
// 0 when every node passed, 1 when one failed or could not be run.
int command_nodes_ssh(const Plan& plan, const SshArgs& args, const std::string& subcommand,
                      const std::vector<std::string>& forward, const std::string& format, const std::string& output);

// The fleet of an --ssh command (the nodes of args.nodes, else every node),
// not yet connected, with the signal teardown in place while `work` runs;
// torn down after it. `work` gets the fleet and whether progress goes to a
// TTY. Returns work's status, or 2 when the run could not start.
class Fleet;
class NodeSession;
int with_ssh_fleet(const Plan& plan, const SshArgs& args, const std::function<int(Fleet&, bool tty)>& work);

// The arguments every node's portmatrix gets: its copy of the inventory, its
// name (--node) and the profile, if one was given.
std::vector<std::string> node_arguments(const NodeSession& session, const SshArgs& args);

// The progress line on a TTY, rewritten in place.
void tty_progress(const std::string& message);

} // namespace portmatrix
