// The apply backends. nftables: everything of portmatrix lives in the table
// inet portmatrix, so saving is listing that table, restoring is "create,
// delete, define again" in one `nft -f` (atomic), and persistence is one file
// included from /etc/nftables.conf. iptables: the chain PORTMATRIX-INPUT (v4
// and v6), its jump from INPUT, and the pm-* ipsets; persistence in the
// files of netfilter-persistent (/etc/iptables/rules.v4, rules.v6,
// ipsets).
#include "apply/backend.hpp"

#include <fmt/format.h>

#include <sstream>

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

namespace {

std::string
failure(const std::string& what, const ProcessResult& result)
{
  auto words = result.errors.empty() ? result.output : result.errors;
  while (!words.empty() && (words.back() == '\n' || words.back() == ' ')) words.pop_back();
  if (result.status < 0) return fmt::format("{}: cannot run it", what);
  return fmt::format("{} (exit {}): {}", what, result.status, words.substr(0, 2000));
}

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
    return unexpected(failure("nft list table inet portmatrix", listed));
  }

  std::string check(ApplyHost& host, const std::filesystem::path& file) const override
  {
    auto result = host.run({"nft", "-c", "-f", file.string()});
    return result.status == 0 ? "" : failure("nft -c -f " + file.string(), result);
  }

  std::string apply(ApplyHost& host, const std::filesystem::path& file) const override
  {
    auto result = host.run({"nft", "-f", file.string()});
    return result.status == 0 ? "" : failure("nft -f " + file.string(), result);
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
    if (result.status != 0) errors += failure("nft delete table inet portmatrix", result) + "\n";
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

private:
  // The path as the booted system sees it (root is where files are written).
  static std::string include_line() { return fmt::format("include \"/{}\"", k_nft_file); }
};

} // namespace

std::unique_ptr<ApplyBackend>
make_apply_backend(FirewallFormat format)
{
  switch (format) {
  case FirewallFormat::nftables: return std::make_unique<NftablesBackend>();
  default: return nullptr;
  }
}

} // namespace portmatrix
