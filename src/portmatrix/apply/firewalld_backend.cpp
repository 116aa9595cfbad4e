// The firewalld apply backend. Everything of portmatrix is firewalld's zone
// `portmatrix` and its pm-* ipsets, i.e. the files zones/portmatrix.xml and
// ipsets/pm-*.xml of /etc/firewalld; the host's other zones, services and
// policies are never touched. firewalld creates zones and ipsets only in its
// permanent configuration (there is no runtime-only --new-zone), so:
//   check    runs the generated script (firewall-cmd --permanent commands)
//            with firewall-offline-cmd against a copy of /etc/firewalld, which
//            validates every rule and changes nothing live; the zone's and
//            ipsets' files it produced become staged.sh (a script that writes
//            them into /etc/firewalld and reloads);
//   apply    staged.sh (our files in, `firewall-cmd --reload`), then saved.sh
//            without the reload: the runtime runs the new zone while the files
//            on disk, which firewalld reads at boot, are the old ones again
//            (its watcher drops the zone from the permanent view too);
//   rollback saved.sh: our files as they were, and a reload;
//   confirm  (persist) staged.sh without the reload: what runs is now on disk;
//   remove   our files deleted, a reload.
// A reload makes firewalld's permanent configuration its runtime one, so
// changes a host made at runtime only (firewall-cmd without --permanent) are
// lost by apply, rollback and remove, as by any `firewall-cmd --reload`.
#include <fmt/format.h>

#include <sstream>

#include "apply/backend.hpp"
#include "remote/ssh_command.hpp"

namespace portmatrix {
namespace {

constexpr const char* k_etc = "/etc/firewalld";
constexpr const char* k_zone = "portmatrix";
constexpr const char* k_heredoc = "PORTMATRIX_FIREWALLD_FILE";
constexpr const char* k_staged = "staged.sh";

// Reloads firewalld when it runs (a stopped one reads the files when it starts).
constexpr const char* k_reload = "if [ \"${PORTMATRIX_NO_RELOAD:-}\" != 1 ] && firewall-cmd --state >/dev/null 2>&1; then\n"
                                 "  firewall-cmd --reload >/dev/null\n"
                                 "fi\n";

// Shell lines deleting portmatrix's files under the config directory
// `etc_word` (a shell word: quoted, or "$1"), and the .old copies firewalld
// keeps of them.
std::string
delete_ours_lines(const std::string& etc_word)
{
  return fmt::format("rm -f {0}/zones/{1}.xml {0}/zones/{1}.xml.old {0}/ipsets/pm-*.xml {0}/ipsets/pm-*.xml.old\n",
                     etc_word, k_zone);
}

// portmatrix's files under `etc` (relative: zones/portmatrix.xml,
// ipsets/pm-x.xml) and their text; an error when they cannot be listed.
Expected<std::vector<std::pair<std::string, std::string>>, std::string>
our_files(ApplyHost& host, const std::string& etc)
{
  auto listed = host.run({"sh", "-c", "cd \"$1\" && for f in zones/$2.xml ipsets/pm-*.xml; do [ ! -f \"$f\" ] || echo \"$f\"; done",
                          "sh", etc, k_zone});
  if (listed.status != 0) return unexpected(command_failure("listing " + etc, listed));
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(listed.output);
  for (std::string name; std::getline(in, name);) {
    auto text = host.read(std::filesystem::path(etc) / name);
    if (!text) return unexpected(fmt::format("cannot read {}/{}", etc, name));
    if (text->find(std::string("\n") + k_heredoc + "\n") != std::string::npos) {
      return unexpected(fmt::format("{}/{}: cannot be saved", etc, name));
    }
    out.emplace_back(name, *text);
  }
  return out;
}

// A script that makes portmatrix's files in /etc/firewalld exactly `files`
// (none: deleted), then reloads firewalld unless PORTMATRIX_NO_RELOAD=1.
std::string
files_script(const std::string& what, const std::vector<std::pair<std::string, std::string>>& files)
{
  std::string out = fmt::format("#!/bin/sh\n# portmatrix: {}: its zone and pm-* ipsets in {}, then firewalld reloaded\nset -e\n",
                                what, k_etc);
  out += delete_ours_lines(shell_quote(k_etc));
  out += fmt::format("mkdir -p {0}/zones {0}/ipsets\n", k_etc);
  for (const auto& [name, text] : files) {
    out += fmt::format("cat >{}/{} <<'{}'\n{}{}{}\n", k_etc, shell_quote(name), k_heredoc, text,
                       text.empty() || text.back() == '\n' ? "" : "\n", k_heredoc);
  }
  return out + k_reload;
}

class FirewalldBackend : public ApplyBackend
{
public:
  FirewallFormat format() const override { return FirewallFormat::firewalld; }
  std::vector<std::string> programs() const override { return {"sh", "cp", "firewall-cmd", "firewall-offline-cmd", "nft"}; }
  std::string extension() const override { return "sh"; }

  Expected<std::string, std::string> save(ApplyHost& host) const override
  {
    auto state = host.run({"firewall-cmd", "--state"});
    if (state.status != 0) {
      return unexpected(command_failure("firewall-cmd --state (firewalld must run: start it, or apply another --backend)",
                                        state));
    }
    auto files = our_files(host, k_etc);
    if (!files) return unexpected(files.error());
    return files_script("what was there before `firewall apply`", *files);
  }

  // The generated script against a copy of /etc/firewalld: every command
  // checked by firewalld's own code, nothing live changed. The result is staged.sh.
  std::string check(ApplyHost& host, const std::filesystem::path& file) const override
  {
    auto stage = (file.parent_path() / "firewalld-staged").string();
    auto ran = host.run({"sh", "-c",
                         "set -e\nrm -rf \"$1\"\nmkdir -p \"$1\"\ncp -a /etc/firewalld/. \"$1\"/\n" + delete_ours_lines("\"$1\"") +
                           "FIREWALL_CMD=\"firewall-offline-cmd --system-config $1\" sh \"$2\"\n",
                         "sh", stage, file.string()});
    std::string problem;
    if (ran.status != 0) problem = command_failure("firewall-offline-cmd (the generated script, on a copy of /etc/firewalld)", ran);
    if (problem.empty()) {
      auto files = our_files(host, stage);
      if (!files) problem = files.error();
      else if (!host.write(file.parent_path() / k_staged, files_script("the rules `firewall apply` put in", *files), 0600)) {
        problem = "cannot write " + (file.parent_path() / k_staged).string();
      }
    }
    (void)host.run({"rm", "-rf", stage});
    return problem;
  }

  std::string apply(ApplyHost& host, const std::filesystem::path& file) const override
  {
    auto dir = file.parent_path();
    auto in = host.run({"sh", (dir / k_staged).string()});
    if (in.status != 0) return command_failure("sh " + (dir / k_staged).string() + " (the zone in, firewall-cmd --reload)", in);
    // Live now; the files firewalld boots with are the old ones until confirmed.
    auto back = host.run({"env", "PORTMATRIX_NO_RELOAD=1", "sh", (dir / ("saved." + extension())).string()});
    if (back.status != 0) return command_failure("putting the saved files of /etc/firewalld back", back);
    return {};
  }

  std::string restore_command(const std::filesystem::path& file) const override
  {
    return "sh " + shell_quote(file.string());
  }

  std::string persist(ApplyHost& host, const std::filesystem::path& /*root: firewalld's files are its persistence*/,
                      const std::filesystem::path& file) const override
  {
    auto staged = file.parent_path() / k_staged;
    // A reload by someone else since the apply ran the old files again: then this one brings the zone back.
    bool running = live(host);
    auto result = host.run({"env", std::string("PORTMATRIX_NO_RELOAD=") + (running ? "1" : "0"), "sh", staged.string()});
    return result.status == 0 ? "" : command_failure("sh " + staged.string() + " (the zone's files into /etc/firewalld)", result);
  }

  std::vector<std::filesystem::path> persistence_files(const std::filesystem::path&) const override
  {
    return {fmt::format("{}/zones/{}.xml", k_etc, k_zone), fmt::format("{}/ipsets/pm-*.xml", k_etc)};
  }

  std::string remove(ApplyHost& host, const std::filesystem::path&) const override
  {
    auto result = host.run({"sh", "-c", "set -e\n" + delete_ours_lines(shell_quote(k_etc)) + k_reload});
    std::string errors;
    if (result.status != 0) errors += command_failure("deleting the zone portmatrix and the pm-* ipsets", result) + "\n";
    if (live(host)) errors += "firewalld still runs the zone portmatrix\n";
    return errors;
  }

  bool live(ApplyHost& host) const override
  {
    auto zones = host.run({"firewall-cmd", "--get-zones"});
    std::istringstream in(zones.output);
    for (std::string zone; in >> zone;) {
      if (zone == k_zone) return zones.status == 0;
    }
    return false;
  }

  Expected<DriftReport, std::string> drift(ApplyHost& host, const Plan& plan, const Node& node,
                                           const std::string& interface) const override
  {
    auto live_rules = read_nft_ruleset(host);
    if (!live_rules) return unexpected(live_rules.error());
    FirewalldLive state;
    state.running = host.run({"firewall-cmd", "--state"}).status == 0;
    if (state.running) {
      auto table = read_nft_table(host, "firewalld");
      if (!table) return unexpected(table.error());
      state.table = std::move(*table);
      state.zone_exists = live(host);
      if (!interface.empty()) {
        auto zone = host.run({"firewall-cmd", "--get-zone-of-interface=" + interface});
        state.interface_zone = zone.status == 0 ? zone.output.substr(0, zone.output.find('\n')) : "";
      }
      state.active_zones = host.run({"firewall-cmd", "--get-active-zones"}).output;
    }
    return firewalld_drift(plan, node, *live_rules, state, interface);
  }
};

} // namespace

std::unique_ptr<ApplyBackend>
make_firewalld_apply_backend()
{
  return std::make_unique<FirewalldBackend>();
}

std::string
firewalld_ruleset_for(const std::string& script, const std::string& interface)
{
  auto line = fmt::format("PORTMATRIX_IFACE={} # the interface holding the node's address (firewall apply)\n",
                          shell_quote(interface));
  auto first = script.find('\n');
  if (!script.starts_with("#!") || first == std::string::npos) return line + script;
  return script.substr(0, first + 1) + line + script.substr(first + 1);
}

} // namespace portmatrix
