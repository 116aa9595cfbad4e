// The argument vectors of ssh (the system's OpenSSH client) for one
// node, and the shell quoting of what runs on the node. Pure: nothing here
// runs a program.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/inventory.hpp"

namespace portmatrix {

// One node's SSH settings: the inventory's top level, each key replaced by
// the node's own; options are the top level's followed by the node's.
struct SshTarget
{
  std::string node;
  std::string host; // the node's ssh host, else its address
  std::optional<std::string> user;
  std::optional<std::uint16_t> port;
  std::optional<std::string> identity_file;
  std::optional<std::string> proxy_jump;
  bool sudo = false;
  std::vector<std::string> options;
};

SshTarget ssh_target(const Inventory& inventory, const Node& node);

// `text` as one word of a POSIX shell: single-quoted unless it is made only
// of characters no shell treats specially.
std::string shell_quote(std::string_view text);
// The words of `argv`, each quoted, separated by spaces: the command line a
// shell reads back as exactly `argv`.
std::string shell_join(const std::vector<std::string>& argv);

// Builds every ssh command for one node. All of them name the node's
// connection (ControlPath), so after open_master() each is one more session
// on the same multiplexed connection.
class SshCommands
{
public:
  // `control_path`: the master's socket, in a private directory.
  SshCommands(SshTarget target, std::string control_path);

  // ssh starts the master, authenticates, then goes to the background
  // (-f) and keeps the connection for `persist` after its last session
  // (ControlPersist), so a workstation that dies leaves it no longer.
  std::vector<std::string> open_master(std::chrono::seconds persist) const;
  // Runs `remote` (an argv, quoted here for the node's login shell) on the node.
  std::vector<std::string> run(const std::vector<std::string>& remote) const;
  // As run(), through `sudo -n` when the target says so.
  std::vector<std::string> run_privileged(const std::vector<std::string>& remote) const;
  // Runs `remote` over a connection of its own (ControlPath=none: not the
  // master's), as a new login would: whether the node still admits one.
  std::vector<std::string> run_new_connection(const std::vector<std::string>& remote) const;
  // Tells the master to close the connection (ssh -O exit).
  std::vector<std::string> close_master() const;

  const SshTarget& target() const { return m_target; }

private:
  // ssh, the -o options and the connection's own flags.
  std::vector<std::string> common() const;
  // The ProxyCommand that reaches the host through the bastion `jump` with
  // this target's options; nullopt for several hops (they stay ssh -J).
  std::optional<std::string> jump_command(const std::string& jump) const;

  SshTarget m_target;
  std::string m_control_path;
};

// What kind of failure ssh, sudo or the node's shell reported, from their
// own words: "host key", "auth", "unreachable", "sudo password", "disk full",
// "binary will not run", or "failed" when none fits.
std::string_view classify_failure(std::string_view output);

// The reason a node failed: "<step>: <kind>: <ssh's words>", its words being
// the output's lines (blank lines, ssh's "Warning: Permanently added" and
// its '@' banners dropped) joined with "; ", the last 300 bytes of them.
std::string failure_reason(std::string_view step, std::string_view output, int status);

} // namespace portmatrix
