// `firewall apply` on one node, iptables-apply style: save what will be
// replaced, arm a rollback on the node itself, apply the generated rules;
// then `confirm` (stop the rollback, write the boot-time files) or
// `rollback` (put the saved state back now). The rollback is a process of
// its own (a transient systemd timer where systemd runs this host, else a
// detached shell in its own session), so it fires even when the ssh
// connection that applied the rules is cut. Everything lives in the node's
// state directory, <state_dir>/<node>/:
//   saved.<ext>    what apply replaced (a script that restores it)
//   applied.<ext>  the generated ruleset
//   staged.sh      firewalld: the zone's and ipsets' files the check produced
//   rollback.sh    waits, then restores saved.<ext> unless confirmed
//   state          status (armed, confirmed, rolled-back), backend, timer, times
//   lock           confirm and the rollback decide under it, so exactly one wins
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "apply/backend.hpp"
#include "apply/host.hpp"
#include "util/expected.hpp"

namespace portmatrix {

struct ApplyOptions
{
  std::chrono::seconds confirm_timeout{60};
  std::filesystem::path state_dir = "/var/lib/portmatrix"; // the node's files go to state_dir/<node>
  std::filesystem::path root = "/";                        // where boot-time files are written (tests: a private tree)
};

// The node's state file as read: key -> value ("status" -> "armed", ...).
using ApplyState = std::map<std::string, std::string>;

std::filesystem::path node_state_dir(const ApplyOptions& options, const std::string& node);
ApplyState read_apply_state(ApplyHost& host, const std::filesystem::path& dir);

// Saves, arms the rollback, applies `ruleset` (the generator's text for the
// node). A message saying what was done and how the rollback was armed; an
// error (nothing left changed: the rollback disarmed or run) when a step
// failed, or when an earlier apply still waits for its confirmation.
Expected<std::string, std::string> apply_rules(ApplyHost& host, const ApplyBackend& backend, const std::string& node,
                                               const std::string& ruleset, const ApplyOptions& options);

// The waiting apply becomes permanent: the rollback stopped, the boot-time
// files written. An error when there is none to confirm (never applied,
// confirmed already, or rolled back: the text says which and when).
Expected<std::string, std::string> confirm_apply(ApplyHost& host, const std::string& node, const ApplyOptions& options);

// The waiting apply is undone now (the same script the timer runs). An
// error when none waits.
Expected<std::string, std::string> rollback_apply(ApplyHost& host, const std::string& node,
                                                  const ApplyOptions& options);

// Removes portmatrix's live rules and boot-time files for `backend` (a
// waiting rollback stopped first) and the node's state directory. What is
// not portmatrix's stays.
Expected<std::string, std::string> remove_rules(ApplyHost& host, const ApplyBackend& backend, const std::string& node,
                                                const ApplyOptions& options);

// The shell script the rollback runs: `sh rollback.sh SECONDS` sleeps, takes
// the lock, and restores only when the state still says armed.
std::string rollback_script(const ApplyBackend& backend, const std::filesystem::path& dir, const std::string& node);

// The transient systemd unit's name for `node` (characters systemd would
// escape replaced by '_').
std::string rollback_unit(const std::string& node);

} // namespace portmatrix
