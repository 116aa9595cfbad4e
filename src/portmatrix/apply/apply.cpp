// The node-local steps of `firewall apply`, `confirm` and `rollback`
// (apply.hpp says what each file of the state directory holds). The order
// is what makes a cut connection safe: the saved state and the rollback are
// in place before the first new rule is, and confirm and the rollback decide
// under one lock, so a confirmation that comes a moment too late finds the
// rollback done and says so instead of overwriting it.
#include "apply/apply.hpp"

#include <ctime>
#include <sstream>

#include <fmt/format.h>

#include "remote/ssh_command.hpp"

namespace portmatrix {
namespace {

std::string
utc_now()
{
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string
state_text(const ApplyState& state)
{
  std::string out;
  for (const auto& [key, value] : state) out += key + " " + value + "\n";
  return out;
}

constexpr const char* k_script = "rollback.sh";

// Stops the rollback's timer (the detached shell's group, or the systemd
// units); what is not running is fine.
void
stop_timer(ApplyHost& host, const ApplyState& state, const std::filesystem::path& dir)
{
  auto timer = state.find("timer");
  if (timer == state.end()) return;
  if (timer->second.starts_with("systemd ")) {
    auto unit = timer->second.substr(8);
    (void)host.run({"systemctl", "stop", unit + ".timer"});
    return;
  }
  if (timer->second.starts_with("detached ")) {
    int pid = std::atoi(timer->second.c_str() + 9);
    if (host.running(pid, (dir / k_script).string())) host.stop_group(pid);
  }
}

bool
timer_running(ApplyHost& host, const ApplyState& state, const std::filesystem::path& dir)
{
  auto timer = state.find("timer");
  if (timer == state.end()) return false;
  if (timer->second.starts_with("systemd ")) {
    return host.run({"systemctl", "is-active", "--quiet", timer->second.substr(8) + ".timer"}).status == 0;
  }
  if (timer->second.starts_with("detached ")) {
    return host.running(std::atoi(timer->second.c_str() + 9), (dir / k_script).string());
  }
  return false;
}

std::string
value(const ApplyState& state, const std::string& key)
{
  auto it = state.find(key);
  return it == state.end() ? std::string() : it->second;
}

// Why there is nothing to confirm or roll back, from the state.
std::string
not_waiting(const ApplyState& state, const std::string& node)
{
  auto status = value(state, "status");
  if (status.empty()) return fmt::format("no apply on {} waits for confirmation (none recorded)", node);
  if (status == "confirmed") {
    return fmt::format("no apply on {} waits for confirmation: the last one was confirmed at {}", node,
                       value(state, "confirmed_at"));
  }
  if (status == "rolled-back") {
    return fmt::format("no apply on {} waits for confirmation: the last one (applied at {}) was rolled back at {}",
                       node, value(state, "armed_at"), value(state, "rolled_back_at"));
  }
  return fmt::format("no apply on {} waits for confirmation (status {})", node, status);
}

} // namespace

std::filesystem::path
node_state_dir(const ApplyOptions& options, const std::string& node)
{
  return options.state_dir / node;
}

ApplyState
read_apply_state(ApplyHost& host, const std::filesystem::path& dir)
{
  ApplyState state;
  auto text = host.read(dir / "state");
  if (!text) return state;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    auto space = line.find(' ');
    if (space == std::string::npos) continue;
    state[line.substr(0, space)] = line.substr(space + 1);
  }
  return state;
}

std::string
rollback_unit(const std::string& node)
{
  std::string out = "portmatrix-rollback-";
  for (char c : node) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  return out;
}

std::string
rollback_script(const ApplyBackend& backend, const std::filesystem::path& dir, const std::string& node)
{
  auto saved = dir / ("saved." + backend.extension());
  return fmt::format(R"SH(#!/bin/sh
# portmatrix: puts {node}'s firewall back as it was before `portmatrix
# firewall apply`, unless the apply is confirmed first. sh rollback.sh SECONDS:
# waits SECONDS, then decides under the lock `firewall confirm` takes.
dir={dir}
sleep "${{1:-0}}"
exec 9>>"$dir/lock"
flock 9
grep -qx 'status armed' "$dir/state" || exit 0
{restore} || {{ echo "portmatrix rollback: restoring $dir/saved failed" >&2; exit 1; }}
sed -i 's/^status armed$/status rolled-back/' "$dir/state"
echo "rolled_back_at $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$dir/state"
echo "portmatrix rollback: {node} restored at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
)SH",
                     fmt::arg("node", node), fmt::arg("dir", shell_quote(dir.string())),
                     fmt::arg("restore", backend.restore_command(saved)));
}

Expected<std::string, std::string>
apply_rules(ApplyHost& host, const ApplyBackend& backend, const std::string& node, const std::string& ruleset,
            const ApplyOptions& options)
{
  auto dir = node_state_dir(options, node);
  auto before = read_apply_state(host, dir);
  if (value(before, "status") == "armed" && timer_running(host, before, dir)) {
    return unexpected(fmt::format("an apply on {} (at {}) still waits for its confirmation: run `firewall confirm` or "
                                  "`firewall rollback` first",
                                  node, value(before, "armed_at")));
  }
  for (const auto& program : backend.programs()) {
    if (!host.have_program(program)) return unexpected(fmt::format("{} is not installed on {}", program, node));
  }
  if (!host.have_program("flock")) return unexpected(fmt::format("flock (util-linux) is not installed on {}", node));
  auto ext = backend.extension();
  auto saved = backend.save(host);
  if (!saved) return unexpected("saving the live state: " + saved.error());
  auto saved_path = dir / ("saved." + ext);
  auto applied_path = dir / ("applied." + ext);
  auto script = dir / k_script;
  if (!host.write(saved_path, *saved, 0600) || !host.write(applied_path, ruleset, 0600) ||
      !host.write(script, rollback_script(backend, dir, node), 0700)) {
    return unexpected(fmt::format("cannot write the state directory {}", dir.string()));
  }
  if (auto problem = backend.check(host, applied_path); !problem.empty()) {
    return unexpected("the generated rules do not load: " + problem);
  }
  ApplyState state{{"status", "armed"},
                   {"backend", std::string(to_string(backend.format()))},
                   {"armed_at", utc_now()},
                   {"confirm_timeout", std::to_string(options.confirm_timeout.count())},
                   {"root", options.root.string()}};
  if (!host.write(dir / "state", state_text(state), 0600)) return unexpected("cannot write " + (dir / "state").string());

  // The rollback first, then the rules: a connection cut right after the
  // rules went in still finds it armed.
  std::string how;
  auto seconds = std::to_string(options.confirm_timeout.count());
  if (host.systemd_here()) {
    auto unit = rollback_unit(node);
    (void)host.run({"systemctl", "stop", unit + ".timer", unit + ".service"});
    (void)host.run({"systemctl", "reset-failed", unit + ".timer", unit + ".service"});
    auto armed = host.run({"systemd-run", "--unit=" + unit, "--on-active=" + seconds + "s",
                           "--timer-property=AccuracySec=1s", "--description=portmatrix rollback of " + node,
                           "/bin/sh", script.string(), "0"});
    if (armed.status != 0) return unexpected("systemd-run (the rollback timer) failed: " + armed.errors);
    state["timer"] = "systemd " + unit;
    how = fmt::format("a transient systemd timer ({}.timer)", unit);
  } else {
    int pid = host.spawn_detached({"/bin/sh", script.string(), seconds}, dir / "rollback.log");
    if (pid < 0) return unexpected("cannot start the rollback process");
    state["timer"] = "detached " + std::to_string(pid);
    how = fmt::format("a detached process (pid {}, its own session; no systemd here)", pid);
  }
  if (!host.write(dir / "state", state_text(state), 0600)) {
    stop_timer(host, state, dir);
    return unexpected("cannot write " + (dir / "state").string());
  }
  if (auto problem = backend.apply(host, applied_path); !problem.empty()) {
    // nft -f is atomic (nothing changed); a script may have half run: restore now.
    (void)host.run({"/bin/sh", script.string(), "0"});
    stop_timer(host, state, dir);
    return unexpected("applying failed (the saved state is back): " + problem);
  }
  return fmt::format("applied the {} rules on {}; they are rolled back in {} s unless confirmed (`portmatrix firewall "
                     "confirm`); the rollback: {}; saved state: {}",
                     to_string(backend.format()), node, seconds, how, saved_path.string());
}

Expected<std::string, std::string>
confirm_apply(ApplyHost& host, const std::string& node, const ApplyOptions& options)
{
  auto dir = node_state_dir(options, node);
  if (auto state = read_apply_state(host, dir); value(state, "status") != "armed") return unexpected(not_waiting(state, node));
  std::string error;
  std::string message;
  bool took = host.locked(dir / "lock", [&] {
    auto state = read_apply_state(host, dir);
    if (value(state, "status") != "armed") {
      error = not_waiting(state, node);
      return;
    }
    auto format = parse_firewall_format(value(state, "backend"));
    auto backend = format ? make_apply_backend(*format) : nullptr;
    if (!backend) {
      error = fmt::format("{}: unknown backend '{}'", (dir / "state").string(), value(state, "backend"));
      return;
    }
    auto root = value(state, "root").empty() ? options.root : std::filesystem::path(value(state, "root"));
    if (auto problem = backend->persist(host, root, dir / ("applied." + backend->extension())); !problem.empty()) {
      error = "not confirmed (the rollback stays armed): writing the boot-time files: " + problem;
      return;
    }
    stop_timer(host, state, dir);
    state["status"] = "confirmed";
    state["confirmed_at"] = utc_now();
    if (!host.write(dir / "state", state_text(state), 0600)) {
      error = "cannot write " + (dir / "state").string();
      return;
    }
    std::string files;
    for (const auto& file : backend->persistence_files(root)) files += (files.empty() ? "" : ", ") + file.string();
    message = fmt::format("confirmed on {}: the rollback is stopped, the rules persist ({})", node, files);
  });
  if (!took) return unexpected(fmt::format("cannot lock {}", (dir / "lock").string()));
  if (!error.empty()) return unexpected(error);
  return message;
}

Expected<std::string, std::string>
rollback_apply(ApplyHost& host, const std::string& node, const ApplyOptions& options)
{
  auto dir = node_state_dir(options, node);
  auto state = read_apply_state(host, dir);
  if (value(state, "status") != "armed") return unexpected(not_waiting(state, node));
  auto result = host.run({"/bin/sh", (dir / k_script).string(), "0"});
  auto after = read_apply_state(host, dir);
  if (value(after, "status") != "rolled-back") {
    if (value(after, "status") != "armed") return unexpected(not_waiting(after, node));
    return unexpected(fmt::format("the rollback on {} failed: {}{}", node, result.output, result.errors));
  }
  stop_timer(host, state, dir);
  return fmt::format("rolled back on {}: the state saved before the apply of {} is back", node,
                     value(state, "armed_at"));
}

Expected<std::string, std::string>
remove_rules(ApplyHost& host, const ApplyBackend& backend, const std::string& node, const ApplyOptions& options)
{
  auto dir = node_state_dir(options, node);
  auto state = read_apply_state(host, dir);
  std::string error;
  host.locked(dir / "lock", [&] {
    stop_timer(host, state, dir);
    if (value(state, "status") == "armed") {
      state["status"] = "removed";
      (void)host.write(dir / "state", state_text(state), 0600);
    }
  });
  auto root = value(state, "root").empty() ? options.root : std::filesystem::path(value(state, "root"));
  auto problem = backend.remove(host, root);
  if (root != options.root) problem += backend.remove(host, options.root);
  for (const char* name : {"state", "lock", "rollback.sh", "rollback.log"}) (void)host.remove(dir / name);
  for (const char* name : {"saved.", "applied.", "staged."}) (void)host.remove(dir / (name + backend.extension())); // staged: firewalld's
  (void)host.remove(dir);
  if (!problem.empty()) return unexpected(fmt::format("removing on {}: {}", node, problem));
  std::string files;
  for (const auto& file : backend.persistence_files(root)) files += (files.empty() ? "" : ", ") + file.string();
  return fmt::format("removed portmatrix's {} rules on {}, its boot-time entries ({}) and {}", to_string(backend.format()),
                     node, files, dir.string());
}

} // namespace portmatrix
