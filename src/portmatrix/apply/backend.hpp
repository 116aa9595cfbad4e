// What `firewall apply` does per firewall backend: save the state it is about
// to replace, check and apply the generated rules, the shell lines that put
// the saved state back (run by the rollback on the node), the files that make
// the rules survive a reboot, and removing all of it. Only what portmatrix
// owns is saved, replaced and removed (nftables: the table inet portmatrix;
// iptables: the chain PORTMATRIX-INPUT, its INPUT hooks and the pm-* ipsets;
// ufw: its rules commented "portmatrix: " and portmatrix's block in
// before.rules, though the rollback puts ufw's files back whole; firewalld:
// the zone portmatrix and the pm-* ipsets, i.e. their files in
// /etc/firewalld), so the rest of the host's firewall is never touched.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apply/drift.hpp"
#include "apply/host.hpp"
#include "firewall/firewall.hpp"
#include "util/expected.hpp"

namespace portmatrix {

class ApplyBackend
{
public:
  virtual ~ApplyBackend() = default;
  virtual FirewallFormat format() const = 0;
  // The programs it runs; apply refuses to start when one is missing.
  virtual std::vector<std::string> programs() const = 0;
  // The file extension of its rulesets ("nft", "sh").
  virtual std::string extension() const = 0;
  // A script that, run by restore_command(), puts back what apply replaces:
  // portmatrix's own rules as they are now, or their absence.
  virtual Expected<std::string, std::string> save(ApplyHost& host) const = 0;
  // Checks the generated ruleset at `file` without applying it, when the
  // backend can (nft -c); an error text, or empty.
  virtual std::string check(ApplyHost& host, const std::filesystem::path& file) const = 0;
  // Applies the ruleset at `file` (atomically where the backend can); an error text, or empty.
  virtual std::string apply(ApplyHost& host, const std::filesystem::path& file) const = 0;
  // The shell command (for rollback.sh) that runs the saved script at `file`.
  virtual std::string restore_command(const std::filesystem::path& file) const = 0;
  // Writes the boot-time files under `root` ("/" on a real node) for the
  // applied ruleset at `file`; an error text, or empty.
  virtual std::string persist(ApplyHost& host, const std::filesystem::path& root,
                              const std::filesystem::path& file) const = 0;
  // Every file persist() writes or edits, under `root` (for remove and status).
  virtual std::vector<std::filesystem::path> persistence_files(const std::filesystem::path& root) const = 0;
  // Removes portmatrix's live rules and its persistence files, nothing else;
  // absent ones are fine. An error text, or empty.
  virtual std::string remove(ApplyHost& host, const std::filesystem::path& root) const = 0;
  // True when portmatrix's rules are live (its table, or its chain).
  virtual bool live(ApplyHost& host) const = 0;
  // `firewall status`: the live firewall read and compared with what the
  // plan wants for `node`, by meaning (drift.hpp); `interface` is the one
  // holding the node's address. An error when the live state cannot be read.
  virtual Expected<DriftReport, std::string> drift(ApplyHost& host, const Plan& plan, const Node& node,
                                                   const std::string& interface) const = 0;
};

std::unique_ptr<ApplyBackend> make_apply_backend(FirewallFormat format);
std::unique_ptr<ApplyBackend> make_firewalld_apply_backend(); // firewalld_backend.cpp

// "WHAT (exit N): its stderr (else stdout)", or "WHAT: cannot run it".
std::string command_failure(const std::string& what, const ProcessResult& result);

// The live ruleset (`nft -j list ruleset`), parsed; an error names the
// command and what went wrong.
Expected<NftRuleset, std::string> read_nft_ruleset(ApplyHost& host);
// One table of family inet (`nft -j list table inet NAME`), parsed;
// nullopt when the host has no such table.
Expected<std::optional<NftRuleset>, std::string> read_nft_table(ApplyHost& host, const std::string& name);

// firewalld: the generated script (`firewall --format firewalld`) with
// PORTMATRIX_IFACE set to `interface` after its first line, as apply runs it.
std::string firewalld_ruleset_for(const std::string& script, const std::string& interface);

// `line` added to `text` (a config file) unless a line equal to it is there;
// `without_line` takes every such line out again. Used for the include line
// of /etc/nftables.conf and the like.
std::string with_line(const std::string& text, const std::string& line);
std::string without_line(const std::string& text, const std::string& line);

// iptables: the restore script of the saved state (the outputs of
// iptables-save, ip6tables-save and ipset save): portmatrix's chain, INPUT's
// jump and the pm-* sets put back as they were, or taken out where they were
// absent; nothing else touched.
std::string iptables_saved_script(const std::string& v4_save, const std::string& v6_save,
                                  const std::string& ipset_save);
// rules.v4 / rules.v6 (or /etc/iptables/ipsets) with portmatrix's lines
// `ours` (from iptables-save) as a marked block after the filter table's
// chain declarations (the file created, or its filter table added, when
// missing); `without_iptables_rules` takes every line of portmatrix's out
// (its chain, jump and pm-* sets, marked or not: netfilter-persistent's own
// `save` rewrites the files whole) and keeps the rest.
std::string with_iptables_rules(const std::string& text, const std::vector<std::string>& ours);
std::string without_iptables_rules(const std::string& text);

} // namespace portmatrix
