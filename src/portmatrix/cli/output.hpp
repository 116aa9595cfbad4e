// Output helpers shared by the subcommands: diagnostics to stderr, files
// written whole or not at all.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "firewall/firewall.hpp"
#include "model/types.hpp"

namespace portmatrix {

inline constexpr int k_exit_input = 2;

// Prints every diagnostic to stderr, in file order.
void print(Diagnostics diagnostics);

// Writes `text` to `path` whole or not at all (temporary file + rename). A
// symbolic link is followed (the file it names is replaced, the link stays);
// a path that is not a regular file (a device, FIFO, socket or directory) is
// refused. Prints the reason and returns false on failure.
bool write_file(const std::filesystem::path& path, const std::string& text);

// Gives `path` the file `existing` as a second name (a hard link, placed by a
// rename, so an old file of that name is replaced whole). False, printing
// nothing, when the filesystem refuses: the caller writes a copy instead.
bool link_file(const std::filesystem::path& existing, const std::filesystem::path& path);

// Writes `generator`'s ruleset of every node of `plan` into `dir` (which must
// exist), named by file_name(): each group of ruleset_groups() rendered and
// written once and linked to its other nodes' names (copied where a link is
// refused). Returns how many rulesets it wrote; prints the reason and returns
// nullopt on failure.
std::optional<std::size_t> write_rulesets(const FirewallGenerator& generator, const Plan& plan,
                                          const std::filesystem::path& dir);

// Creates `path` (and parents); prints the reason and returns false on failure.
bool make_directory(const std::string& path);

// Creates `out_dir` and writes each (name, text) into it. Returns an exit status.
int write_outputs(const std::vector<std::pair<std::string, std::string>>& files, const std::string& out_dir);

} // namespace portmatrix
