// Man pages and shell completions, generated from the CLI11 definitions
// that --help prints, so neither can drift from it. `portmatrix __docs --out
// DIR` writes them at build time (CMake), `cmake --install` installs them.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
} // namespace CLI

namespace portmatrix {

// What a value of an option or positional is, for completion.
enum class ValueKind { none, file, directory, profile, node, choice };

struct OptionDoc
{
  std::vector<std::string> names; // "--format", "-h"; a positional: its name ("PROFILE_A")
  std::string value;              // "TEXT", "INT"; empty for a flag
  std::string description;
  std::string default_value;
  bool required = false;
  bool positional = false;
  ValueKind kind = ValueKind::none;
  std::vector<std::string> choices; // kind == choice: read from the description ("table, json or html")
};

struct CommandDoc
{
  std::string name; // "check"; the program itself: "portmatrix"
  std::string description;
  std::string footer;
  std::vector<OptionDoc> options; // hidden ones (group "") left out
};

// The program and each visible subcommand, in definition order (the program first).
std::vector<CommandDoc> describe_commands(const CLI::App& app);

// man/man1/portmatrix.1, man/man1/portmatrix-COMMAND.1 for each command,
// completions/portmatrix.bash, completions/_portmatrix (zsh),
// completions/portmatrix.fish: file names relative to the output directory
// and their text. `version` goes into the pages' headers.
std::vector<std::pair<std::string, std::string>> docs_files(const std::vector<CommandDoc>& commands,
                                                            const std::string& version);

// `__complete profiles` / `__complete nodes --inventory FILE`: the words a
// completion offers, one per line (nodes: nothing when the file does not load).
std::string completion_words(const std::string& what, const std::string& inventory_path);

} // namespace portmatrix
