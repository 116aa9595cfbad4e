// Output helpers shared by the subcommands: diagnostics to stderr, files
// written whole or not at all.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "model/types.hpp"

namespace portmatrix {

inline constexpr int k_exit_input = 2;

// Prints every diagnostic to stderr, in file order.
void print(Diagnostics diagnostics);

// Writes `text` to `path` whole or not at all (temporary file + rename).
// Prints the reason and returns false on failure.
bool write_file(const std::filesystem::path& path, const std::string& text);

// Creates `path` (and parents); prints the reason and returns false on failure.
bool make_directory(const std::string& path);

// Creates `out_dir` and writes each (name, text) into it. Returns an exit status.
int write_outputs(const std::vector<std::pair<std::string, std::string>>& files, const std::string& out_dir);

} // namespace portmatrix
