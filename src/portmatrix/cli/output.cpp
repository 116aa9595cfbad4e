// Output helpers shared by the subcommands.
#include "cli/output.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <optional>
#include <tuple>

#include <fmt/format.h>

namespace portmatrix {

void
print(Diagnostics diagnostics)
{
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
  });
  for (const auto& diagnostic : diagnostics) std::cerr << "portmatrix: " << to_string(diagnostic) << "\n";
}

namespace {

// Where a file written to `path` goes: the file a symbolic link names (the
// link stays), or `path`. nullopt, with the reason printed, when that is
// something other than a regular file: renaming over a device, a FIFO or a
// socket would replace it (as root, `--output /dev/stdout` would replace
// the system's /dev/stdout for everyone).
std::optional<std::filesystem::path>
regular_target(const std::filesystem::path& path)
{
  std::error_code error;
  auto target = path;
  if (std::filesystem::is_symlink(path, error)) {
    target = std::filesystem::weakly_canonical(path, error);
    if (error) {
      std::cerr << fmt::format("portmatrix: cannot write {}: {}\n", path.string(), error.message());
      return std::nullopt;
    }
  }
  auto status = std::filesystem::status(target, error);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    std::cerr << fmt::format("portmatrix: cannot write {}: it is not a regular file (a directory, device, FIFO "
                             "or socket); give the name of a file{}\n",
                             path.string(),
                             std::filesystem::is_character_file(status) ? " (to print a report, leave --output out)"
                                                                        : "");
    return std::nullopt;
  }
  return target;
}

} // namespace

bool
write_file(const std::filesystem::path& requested, const std::string& text)
{
  auto target = regular_target(requested);
  if (!target) return false;
  const auto& path = *target;
  auto temporary = path;
  temporary += fmt::format(".tmp.{}", ::getpid());
  std::error_code error;
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::filesystem::remove(temporary, error);
      std::cerr << "portmatrix: cannot write " << path << "\n";
      return false;
    }
  }
  std::filesystem::rename(temporary, path, error);
  if (error) {
    auto reason = error.message();
    std::filesystem::remove(temporary, error);
    std::cerr << "portmatrix: cannot write " << path << ": " << reason << "\n";
    return false;
  }
  return true;
}

bool
link_file(const std::filesystem::path& existing, const std::filesystem::path& path)
{
  std::error_code error;
  auto status = std::filesystem::symlink_status(path, error);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) return false; // write_file decides
  auto temporary = path;
  temporary += fmt::format(".tmp.{}", ::getpid());
  std::filesystem::remove(temporary, error);
  std::filesystem::create_hard_link(existing, temporary, error);
  if (error) return false;
  std::filesystem::rename(temporary, path, error);
  if (!error) return true;
  std::filesystem::remove(temporary, error);
  return false;
}

std::optional<std::size_t>
write_rulesets(const FirewallGenerator& generator, const Plan& plan, const std::filesystem::path& dir)
{
  const auto groups = ruleset_groups(plan.inventory);
  for (const auto& group : groups) {
    const auto text = generator.render_group(group);
    std::filesystem::path written; // the group's file, once written: the other names link to it
    for (const Node* node : group) {
      auto path = dir / generator.file_name(*node);
      if (!written.empty() && link_file(written, path)) continue;
      if (!write_file(path, text)) return std::nullopt;
      written = path;
    }
  }
  return groups.size();
}

bool
make_directory(const std::string& path)
{
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) std::cerr << fmt::format("portmatrix: cannot create {}: {}\n", path, error.message());
  return !error;
}

int
write_outputs(const std::vector<std::pair<std::string, std::string>>& files, const std::string& out_dir)
{
  if (!make_directory(out_dir)) return k_exit_input;
  for (const auto& [name, text] : files) {
    if (!write_file(std::filesystem::path(out_dir) / name, text)) return k_exit_input;
  }
  std::cerr << fmt::format("portmatrix: wrote {} file(s) to {}\n", files.size(), out_dir);
  return 0;
}

} // namespace portmatrix
