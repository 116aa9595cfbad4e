// The apply backends. nftables: everything of portmatrix lives in the table
// inet portmatrix, so saving is listing that table, restoring is "create,
// delete, define again" in one `nft -f` (atomic), and persistence is one file
// included from /etc/nftables.conf. iptables: the chain PORTMATRIX-INPUT (v4
// and v6), its jump from INPUT, and the pm-* ipsets; the generated script
// fills the sets (`ipset restore`) and replaces the chain in one
// `iptables-restore --noflush` per family (a chain declared in it is flushed
// and refilled in one commit), leaving every other chain alone; saving is the
// same script for the chain and sets as they are; persistence is a marked
// block in each file netfilter-persistent loads at boot (/etc/iptables/
// rules.v4 and rules.v6 by iptables-restore, /etc/iptables/ipsets by `ipset
// restore -exist`), the rest of those files kept. ufw: its rules commented
// "portmatrix: " (deleted, then the generated script adds the new ones);
// saving is a copy of ufw's files, restored whole and reloaded; ufw's files
// are its own persistence. firewalld: firewalld_backend.cpp.
#include "apply/backend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "preflight/nftables.hpp"
#include "remote/ssh_command.hpp"

namespace portmatrix {

std::string
with_line(const std::string& text, const std::string& line)
{
  std::istringstream in(text);
  for (std::string each; std::getline(in, each);) {
    if (each == line) return text;
  }
  std::string out = text;
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out + line + "\n";
}

std::string
without_line(const std::string& text, const std::string& line)
{
  std::istringstream in(text);
  std::string out;
  for (std::string each; std::getline(in, each);) {
    if (each != line) out += each + "\n";
  }
  return out;
}

std::string
command_failure(const std::string& what, const ProcessResult& result)
{
  auto words = result.errors.empty() ? result.output : result.errors;
  while (!words.empty() && (words.back() == '\n' || words.back() == ' ')) words.pop_back();
  if (result.status < 0) return fmt::format("{}: cannot run it", what);
  return fmt::format("{} (exit {}): {}", what, result.status, words.substr(0, 2000));
}

Expected<NftRuleset, std::string>
read_nft_ruleset(ApplyHost& host)
{
  auto listed = host.run({"nft", "-j", "list", "ruleset"});
  if (listed.status != 0) return unexpected(command_failure("nft -j list ruleset", listed));
  auto ruleset = NftRuleset::parse(listed.output);
  if (!ruleset) return unexpected("nft -j list ruleset: " + ruleset.error());
  return std::move(ruleset.value());
}

Expected<std::optional<NftRuleset>, std::string>
read_nft_table(ApplyHost& host, const std::string& name)
{
  auto listed = host.run({"nft", "-j", "list", "table", "inet", name});
  if (listed.status != 0) return std::optional<NftRuleset>();
  auto table = NftRuleset::parse(listed.output);
  if (!table) return unexpected(fmt::format("nft -j list table inet {}: {}", name, table.error()));
  return std::optional<NftRuleset>(std::move(table.value()));
}

namespace {

constexpr const char* k_nft_table = "table inet portmatrix";
constexpr const char* k_nft_file = "etc/portmatrix/portmatrix.nft";
constexpr const char* k_nft_conf = "etc/nftables.conf";
// /etc/nftables.conf as persist() creates it where there was none (remove
// deletes it again when nothing else was added).
constexpr const char* k_nft_conf_created =
  "#!/usr/sbin/nft -f\n# created by portmatrix firewall confirm (its include below); firewall remove deletes it\n";

class NftablesBackend : public ApplyBackend
{
public:
  FirewallFormat format() const override { return FirewallFormat::nftables; }
  std::vector<std::string> programs() const override { return {"nft"}; }
  std::string extension() const override { return "nft"; }

  Expected<std::string, std::string> save(ApplyHost& host) const override
  {
    auto listed = host.run({"nft", "list", "table", "inet", "portmatrix"});
    std::string out = fmt::format("# portmatrix's table as it was before `firewall apply` (absent: deleted)\n"
                                  "{0} {{}}\ndelete {0}\n",
                                  k_nft_table);
    if (listed.status == 0) return out + listed.output;
    if (listed.status > 0 && (listed.errors.find("No such file") != std::string::npos ||
                              listed.errors.find("does not exist") != std::string::npos)) {
      return out; // no table: the restore deletes ours
    }
    return unexpected(command_failure("nft list table inet portmatrix", listed));
  }

  std::string check(ApplyHost& host, const std::filesystem::path& file) const override
  {
    auto result = host.run({"nft", "-c", "-f", file.string()});
    return result.status == 0 ? "" : command_failure("nft -c -f " + file.string(), result);
  }

  std::string apply(ApplyHost& host, const std::filesystem::path& file) const override
  {
    auto result = host.run({"nft", "-f", file.string()});
    return result.status == 0 ? "" : command_failure("nft -f " + file.string(), result);
  }

  std::string restore_command(const std::filesystem::path& file) const override
  {
    return "nft -f " + shell_quote(file.string());
  }

  std::string persist(ApplyHost& host, const std::filesystem::path& root,
                      const std::filesystem::path& file) const override
  {
    auto ruleset = host.read(file);
    if (!ruleset) return fmt::format("cannot read {}", file.string());
    if (!host.write(root / k_nft_file, *ruleset, 0600)) return fmt::format("cannot write {}", (root / k_nft_file).string());
    auto conf = host.read(root / k_nft_conf).value_or(k_nft_conf_created);
    if (!host.write(root / k_nft_conf, with_line(conf, include_line()), 0755)) {
      return fmt::format("cannot write {}", (root / k_nft_conf).string());
    }
    return {};
  }

  std::vector<std::filesystem::path> persistence_files(const std::filesystem::path& root) const override
  {
    return {root / k_nft_file, root / k_nft_conf};
  }

  std::string remove(ApplyHost& host, const std::filesystem::path& root) const override
  {
    std::string errors;
    auto result = host.run({"nft", "-f", "-"}, fmt::format("{0} {{}}\ndelete {0}\n", k_nft_table));
    if (result.status != 0) errors += command_failure("nft delete table inet portmatrix", result) + "\n";
    if (auto conf = host.read(root / k_nft_conf)) {
      auto kept = without_line(*conf, include_line());
      if (kept == k_nft_conf_created) {
        if (!host.remove(root / k_nft_conf)) errors += fmt::format("cannot remove {}\n", (root / k_nft_conf).string());
      } else if (kept != *conf && !host.write(root / k_nft_conf, kept, 0755)) {
        errors += fmt::format("cannot write {}\n", (root / k_nft_conf).string());
      }
    }
    if (!host.remove(root / k_nft_file)) errors += fmt::format("cannot remove {}\n", (root / k_nft_file).string());
    (void)host.remove((root / k_nft_file).parent_path()); // etc/portmatrix, when nothing else is in it
    return errors;
  }

  bool live(ApplyHost& host) const override
  {
    return host.run({"nft", "list", "table", "inet", "portmatrix"}).status == 0;
  }

  Expected<DriftReport, std::string> drift(ApplyHost& host, const Plan& plan, const Node& node,
                                           const std::string& interface) const override
  {
    auto live = read_nft_ruleset(host);
    if (!live) return unexpected(live.error());
    auto ours = read_nft_table(host, "portmatrix");
    if (!ours) return unexpected(ours.error());
    return nft_drift(plan, node, *live, *ours, interface);
  }

private:
  // The path as the booted system sees it (root is where files are written).
  static std::string include_line() { return fmt::format("include \"/{}\"", k_nft_file); }
};


// --- iptables ---------------------------------------------------------------

constexpr const char* k_ipt_chain = "PORTMATRIX-INPUT";
constexpr const char* k_ipt_jump = "-A INPUT -j PORTMATRIX-INPUT";
constexpr const char* k_ipt_dir = "etc/iptables";
constexpr const char* k_block_begin = "# portmatrix: begin (written by `portmatrix firewall confirm`; `firewall remove` takes it out)";
constexpr const char* k_block_end = "# portmatrix: end";
// rules.v4 / rules.v6 as persist() creates them where there were none
// (remove deletes them again when nothing else was added).
constexpr const char* k_ipt_created = "# created by portmatrix firewall confirm; firewall remove deletes it\n"
                                      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
constexpr const char* k_ipset_created = "# created by portmatrix firewall confirm; firewall remove deletes it\n";

struct IptablesFamily
{
  const char* tool;
  const char* save;
  const char* restore;
  const char* file;
};
constexpr IptablesFamily k_families[] = {{"iptables", "iptables-save", "iptables-restore", "rules.v4"},
                                         {"ip6tables", "ip6tables-save", "ip6tables-restore", "rules.v6"}};

std::vector<std::string>
lines_of(const std::string& text)
{
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string
joined(const std::vector<std::string>& lines)
{
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

// The lines of `ipset save` (or of /etc/iptables/ipsets) about a pm-* set.
bool
ipset_line_is_ours(const std::string& line)
{
  std::istringstream in(line);
  std::string verb, name;
  in >> verb >> name;
  return (verb == "create" || verb == "add" || verb == "flush" || verb == "destroy") && name.starts_with("pm-");
}

std::vector<std::string>
our_ipset_lines(const std::string& save)
{
  std::vector<std::string> out;
  for (const auto& line : lines_of(save)) {
    if (ipset_line_is_ours(line)) out.push_back(line);
  }
  return out;
}

// Portmatrix's lines of an iptables-save text, in restore order: the chain's
// declaration, INPUT's jump (when there), the chain's rules. Empty: no chain.
std::vector<std::string>
our_chain_lines(const std::string& save)
{
  std::vector<std::string> out;
  for (const auto& line : lines_of(iptables_ours(save))) {
    if (iptables_line_is_ours(line)) out.push_back(line);
  }
  return out;
}

// Shell lines that take portmatrix's chain and INPUT's jumps to it out of
// one family (absent ones are fine).
std::string
drop_chain_lines(const IptablesFamily& family)
{
  return fmt::format("while {0} -D INPUT -j {1} 2>/dev/null; do :; done\n"
                     "{0} -F {1} 2>/dev/null || true\n"
                     "{0} -X {1} 2>/dev/null || true\n",
                     family.tool, k_ipt_chain);
}

// Shell lines that destroy every pm-* set but those named in `keep`.
std::string
destroy_sets_lines(const std::vector<std::string>& keep)
{
  std::string names;
  for (const auto& name : keep) names += " " + name;
  return fmt::format("for set in $(ipset list -n); do\n"
                     "  case $set in pm-*) case \" {} \" in *\" $set \"*) ;; *) ipset destroy \"$set\" ;; esac ;; esac\n"
                     "done\n",
                     names);
}

} // namespace

std::string
iptables_saved_script(const std::string& v4_save, const std::string& v6_save, const std::string& ipset_save)
{
  std::string out = "#!/bin/sh\n# portmatrix's iptables rules and pm-* ipsets as they were before `firewall apply`\n"
                    "# (absent: taken out); nothing else of the host's firewall is touched.\nset -e\n";
  auto sets = our_ipset_lines(ipset_save);
  std::vector<std::string> kept;
  if (!sets.empty()) {
    out += "ipset restore -exist <<'PORTMATRIX_IPSET'\n";
    for (const auto& line : sets) {
      std::istringstream in(line);
      std::string verb, name;
      in >> verb >> name;
      out += line + "\n";
      if (verb == "create") {
        out += "flush " + name + "\n";
        kept.push_back(name);
      }
    }
    out += "PORTMATRIX_IPSET\n";
  }
  const std::string* saves[] = {&v4_save, &v6_save};
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& family = k_families[i];
    auto chain = our_chain_lines(*saves[i]);
    if (chain.empty()) {
      out += drop_chain_lines(family);
      continue;
    }
    bool jump = false;
    out += fmt::format("{} --noflush <<'PORTMATRIX_RULES'\n*filter\n", family.restore);
    for (const auto& line : chain) {
      if (line == k_ipt_jump) jump = true;
      else out += line + "\n";
    }
    out += "COMMIT\nPORTMATRIX_RULES\n";
    if (jump) {
      out += fmt::format("{0} -C INPUT -j {1} 2>/dev/null || {0} -I INPUT 1 -j {1}\n", family.tool, k_ipt_chain);
    } else {
      out += fmt::format("while {} -D INPUT -j {} 2>/dev/null; do :; done\n", family.tool, k_ipt_chain);
    }
  }
  return out + destroy_sets_lines(kept);
}

std::string
with_iptables_rules(const std::string& text, const std::vector<std::string>& ours)
{
  auto base = without_iptables_rules(text);
  if (base.empty()) base = k_ipt_created;
  std::vector<std::string> block{k_block_begin};
  block.insert(block.end(), ours.begin(), ours.end());
  block.push_back(k_block_end);
  auto lines = lines_of(base);
  auto filter = std::find(lines.begin(), lines.end(), "*filter");
  if (filter == lines.end()) {
    lines.push_back("*filter");
    lines.insert(lines.end(), block.begin(), block.end());
    lines.push_back("COMMIT");
    return joined(lines);
  }
  // After the table's chain declarations: the chain is declared before any
  // rule, and the jump is INPUT's first rule.
  auto at = filter + 1;
  while (at != lines.end() && (at->starts_with(":") || at->starts_with("#"))) ++at;
  lines.insert(at, block.begin(), block.end());
  return joined(lines);
}

std::string
without_iptables_rules(const std::string& text)
{
  std::vector<std::string> kept;
  for (const auto& line : lines_of(text)) {
    if (line != k_block_begin && line != k_block_end && !iptables_line_is_ours(line) && !ipset_line_is_ours(line)) {
      kept.push_back(line);
    }
  }
  return joined(kept);
}

namespace {

class IptablesBackend : public ApplyBackend
{
public:
  FirewallFormat format() const override { return FirewallFormat::iptables; }
  std::vector<std::string> programs() const override
  {
    return {"sh", "iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore",
            "ipset"};
  }
  std::string extension() const override { return "sh"; }

  Expected<std::string, std::string> save(ApplyHost& host) const override
  {
    auto live = read_live(host);
    if (!live) return unexpected(live.error());
    return iptables_saved_script(live->v4, live->v6, live->sets);
  }

  std::string check(ApplyHost& host, const std::filesystem::path& file) const override
  {
    auto result = host.run({"sh", "-n", file.string()});
    return result.status == 0 ? "" : command_failure("sh -n " + file.string(), result);
  }

  std::string apply(ApplyHost& host, const std::filesystem::path& file) const override
  {
    auto result = host.run({"sh", file.string()});
    return result.status == 0 ? "" : command_failure("sh " + file.string(), result);
  }

  std::string restore_command(const std::filesystem::path& file) const override
  {
    return "sh " + shell_quote(file.string());
  }

  std::string persist(ApplyHost& host, const std::filesystem::path& root,
                      const std::filesystem::path& /*file: the live rules are written, as applied*/) const override
  {
    auto live = read_live(host);
    if (!live) return live.error();
    const std::string* saves[] = {&live->v4, &live->v6};
    for (std::size_t i = 0; i < 2; ++i) {
      auto path = root / k_ipt_dir / k_families[i].file;
      auto ours = our_chain_lines(*saves[i]);
      if (ours.empty()) return fmt::format("{}: no chain {} live to persist", k_families[i].tool, k_ipt_chain);
      if (!host.write(path, with_iptables_rules(host.read(path).value_or(""), ours), 0640)) {
        return fmt::format("cannot write {}", path.string());
      }
    }
    auto path = root / k_ipt_dir / "ipsets";
    auto base = without_iptables_rules(host.read(path).value_or(""));
    if (base.empty()) base = k_ipset_created;
    std::vector<std::string> block{k_block_begin};
    auto sets = our_ipset_lines(live->sets);
    block.insert(block.end(), sets.begin(), sets.end());
    block.push_back(k_block_end);
    if (!host.write(path, base + joined(block), 0640)) return fmt::format("cannot write {}", path.string());
    return {};
  }

  std::vector<std::filesystem::path> persistence_files(const std::filesystem::path& root) const override
  {
    return {root / k_ipt_dir / "ipsets", root / k_ipt_dir / "rules.v4", root / k_ipt_dir / "rules.v6"};
  }

  std::string remove(ApplyHost& host, const std::filesystem::path& root) const override
  {
    std::string errors;
    std::string script = drop_chain_lines(k_families[0]) + drop_chain_lines(k_families[1]) + destroy_sets_lines({});
    auto result = host.run({"sh", "-c", script});
    if (result.status != 0) errors += command_failure("removing the chain and the pm-* sets", result) + "\n";
    if (live(host)) errors += fmt::format("the chain {} is still there (another rule jumps to it?)\n", k_ipt_chain);
    for (const auto& path : persistence_files(root)) {
      auto text = host.read(path);
      if (!text) continue;
      auto kept = without_iptables_rules(*text);
      bool created = kept == k_ipt_created || kept == k_ipset_created;
      if (created ? !host.remove(path) : (kept != *text && !host.write(path, kept, 0640))) {
        errors += fmt::format("cannot rewrite {}\n", path.string());
      }
    }
    return errors;
  }

  bool live(ApplyHost& host) const override
  {
    return host.run({"iptables", "-S", k_ipt_chain}).status == 0 || host.run({"ip6tables", "-S", k_ipt_chain}).status == 0;
  }

  Expected<DriftReport, std::string> drift(ApplyHost& host, const Plan& plan, const Node& node,
                                           const std::string& interface) const override
  {
    auto live = read_live(host);
    if (!live) return unexpected(live.error());
    // nftables' own input chains (not iptables-nft's tables): listed, not evaluated.
    std::vector<std::string> others;
    if (host.have_program("nft")) {
      if (auto ruleset = read_nft_ruleset(host)) {
        for (const auto* chain : ruleset->input_chains()) {
          if ((chain->family == "ip" || chain->family == "ip6") && chain->table == "filter") continue;
          others.push_back(fmt::format("nftables {} {} chain {} (input hook, priority {}, policy {}, {} rules; not "
                                       "evaluated)",
                                       chain->family, chain->table, chain->name, chain->priority, chain->policy,
                                       chain->rules.size()));
        }
      }
    }
    return iptables_drift(plan, node, live->v4, live->v6, live->sets, others, interface);
  }

private:
  struct Live
  {
    std::string v4, v6, sets;
  };
  // The filter tables of both families and every ipset, as their save tools print them.
  static Expected<Live, std::string> read_live(ApplyHost& host)
  {
    Live out;
    for (std::size_t i = 0; i < 2; ++i) {
      auto result = host.run({k_families[i].save, "-t", "filter"});
      if (result.status != 0) return unexpected(command_failure(std::string(k_families[i].save) + " -t filter", result));
      (i == 0 ? out.v4 : out.v6) = result.output;
    }
    auto sets = host.run({"ipset", "save"});
    if (sets.status != 0) return unexpected(command_failure("ipset save", sets));
    out.sets = sets.output;
    return out;
  }
};

// --- ufw --------------------------------------------------------------------

// ufw's own files: what apply changes (its rules, the before.rules blocks of
// rules it cannot say, its enabled flag and default policy). ufw writes them
// itself as rules are added: they are its persistence.
const std::vector<std::filesystem::path> k_ufw_files{"/etc/ufw/user.rules",   "/etc/ufw/user6.rules",
                                                     "/etc/ufw/before.rules", "/etc/ufw/before6.rules",
                                                     "/etc/ufw/ufw.conf",     "/etc/default/ufw"};
constexpr const char* k_ufw_mark = " comment 'portmatrix: ";

class UfwBackend : public ApplyBackend
{
public:
  FirewallFormat format() const override { return FirewallFormat::ufw; }
  std::vector<std::string> programs() const override { return {"sh", "ufw", "iptables-save", "ip6tables-save"}; }
  std::string extension() const override { return "sh"; }

  // A script writing every file back as it was and reloading ufw (or
  // disabling it, when it was inactive).
  Expected<std::string, std::string> save(ApplyHost& host) const override
  {
    auto status = host.run({"ufw", "status"});
    if (status.status != 0) return unexpected(command_failure("ufw status", status));
    std::string out = "#!/bin/sh\n# ufw's files as they were before `firewall apply`, then ufw reloaded (or disabled)\nset -e\n";
    for (const auto& path : k_ufw_files) {
      auto text = host.read(path);
      if (!text) {
        out += "rm -f " + shell_quote(path.string()) + "\n";
        continue;
      }
      if (text->find("\nPORTMATRIX_UFW_SAVED\n") != std::string::npos) return unexpected(path.string() + ": cannot be saved");
      out += fmt::format("cat >{} <<'PORTMATRIX_UFW_SAVED'\n{}{}PORTMATRIX_UFW_SAVED\n", shell_quote(path.string()), *text,
                         text->empty() || text->back() == '\n' ? "" : "\n");
    }
    bool active = status.output.find("Status: active") != std::string::npos;
    return out + (active ? "ufw reload\n" : "ufw --force disable\n");
  }

  std::string check(ApplyHost& host, const std::filesystem::path& file) const override
  {
    auto result = host.run({"sh", "-n", file.string()});
    return result.status == 0 ? "" : command_failure("sh -n " + file.string(), result);
  }

  // ufw has no atomic replace: portmatrix's previous rules are deleted, then
  // the generated script adds the new ones (established connections stay).
  std::string apply(ApplyHost& host, const std::filesystem::path& file) const override
  {
    if (auto problem = delete_ours(host); !problem.empty()) return problem;
    auto result = host.run({"sh", file.string()});
    return result.status == 0 ? "" : command_failure("sh " + file.string(), result);
  }

  std::string restore_command(const std::filesystem::path& file) const override
  {
    return "sh " + shell_quote(file.string());
  }

  std::string persist(ApplyHost&, const std::filesystem::path&, const std::filesystem::path&) const override
  {
    return {}; // ufw wrote its files as the rules went in
  }

  std::vector<std::filesystem::path> persistence_files(const std::filesystem::path&) const override
  {
    return {k_ufw_files.begin(), k_ufw_files.begin() + 4};
  }

  std::string remove(ApplyHost& host, const std::filesystem::path&) const override
  {
    std::string errors = delete_ours(host);
    bool changed = false;
    for (const char* path : {"/etc/ufw/before.rules", "/etc/ufw/before6.rules"}) {
      auto text = host.read(path);
      if (!text) continue;
      std::string kept;
      bool inside = false;
      for (const auto& line : lines_of(*text)) {
        if (line.starts_with("# BEGIN portmatrix")) inside = true;
        if (!inside) kept += line + "\n";
        if (line.starts_with("# END portmatrix")) inside = false;
      }
      if (kept == *text) continue;
      changed = true;
      if (!host.write(path, kept, 0640)) errors += fmt::format("cannot write {}\n", path);
    }
    if (changed && host.run({"ufw", "status"}).output.find("Status: active") != std::string::npos) {
      auto result = host.run({"ufw", "reload"});
      if (result.status != 0) errors += command_failure("ufw reload", result) + "\n";
    }
    return errors;
  }

  bool live(ApplyHost& host) const override
  {
    return host.run({"ufw", "show", "added"}).output.find(k_ufw_mark) != std::string::npos;
  }

  Expected<DriftReport, std::string> drift(ApplyHost& host, const Plan& plan, const Node& node,
                                           const std::string& interface) const override
  {
    auto status = host.run({"ufw", "status"});
    if (status.status != 0) return unexpected(command_failure("ufw status", status));
    std::string saves[2];
    for (std::size_t i = 0; i < 2; ++i) {
      auto result = host.run({k_families[i].save, "-t", "filter"});
      if (result.status != 0) return unexpected(command_failure(std::string(k_families[i].save) + " -t filter", result));
      saves[i] = result.output;
    }
    std::vector<std::string> others; // the host's own ufw rules
    for (const auto& line : lines_of(host.run({"ufw", "show", "added"}).output)) {
      if (line.starts_with("ufw ") && line.find(k_ufw_mark) == std::string::npos) others.push_back("ufw rule: " + line.substr(4));
    }
    return ufw_drift(plan, node, saves[0], saves[1], host.read(k_ufw_files[0]).value_or(""),
                     host.read(k_ufw_files[1]).value_or(""), status.output.find("Status: active") != std::string::npos,
                     others, interface);
  }

private:
  // Deletes every ufw rule whose comment starts "portmatrix: " (as `ufw show
  // added` prints it, without the comment: ufw matches the rule).
  static std::string delete_ours(ApplyHost& host)
  {
    auto added = host.run({"ufw", "show", "added"});
    if (added.status != 0) return command_failure("ufw show added", added);
    for (const auto& line : lines_of(added.output)) {
      auto mark = line.find(k_ufw_mark);
      if (!line.starts_with("ufw ") || mark == std::string::npos) continue;
      std::vector<std::string> argv{"ufw", "delete"};
      std::istringstream words(line.substr(4, mark - 4));
      for (std::string word; words >> word;) argv.push_back(word);
      auto result = host.run(argv);
      if (result.status != 0) return command_failure("ufw delete (portmatrix's rule " + line.substr(4, mark - 4) + ")", result);
    }
    return {};
  }
};

} // namespace

std::unique_ptr<ApplyBackend>
make_apply_backend(FirewallFormat format)
{
  switch (format) {
  case FirewallFormat::nftables: return std::make_unique<NftablesBackend>();
  case FirewallFormat::iptables: return std::make_unique<IptablesBackend>();
  case FirewallFormat::ufw: return std::make_unique<UfwBackend>();
  case FirewallFormat::firewalld: return make_firewalld_apply_backend();
  default: return nullptr;
  }
}

} // namespace portmatrix
