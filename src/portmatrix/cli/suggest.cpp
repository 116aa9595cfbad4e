// The words CLI11 could not place are in app.remaining() (before a
// subcommand: an unknown command, or a flag of the program) or in the parsed
// subcommand's remaining() (its unknown flags); the candidates are the
// commands, or the flags that subcommand (or the program) offers, hidden ones
// left out.
#include "cli/suggest.hpp"

#include <cctype>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "model/types.hpp"
#include "util/edit_distance.hpp"

namespace portmatrix {
namespace {

std::vector<std::string>
flags_of(const CLI::App& app)
{
  std::vector<std::string> flags;
  for (const auto* option : app.get_options()) {
    if (option->get_group().empty()) continue; // hidden
    for (const auto& name : option->get_lnames()) flags.push_back("--" + name);
    for (const auto& name : option->get_snames()) flags.push_back("-" + name);
  }
  return flags;
}

std::string
joined(const std::vector<std::string>& words)
{
  std::string text;
  for (const auto& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

// The first word that looks like a flag (not a negative number), cut at '='.
std::optional<std::string>
first_flag(const std::vector<std::string>& words)
{
  for (const auto& word : words) {
    if (word.size() < 2 || word[0] != '-' || std::isdigit(static_cast<unsigned char>(word[1]))) continue;
    return word.substr(0, word.find('='));
  }
  return std::nullopt;
}

std::string
unknown_flag(std::string_view program, const std::string& flag, const std::vector<std::string>& flags)
{
  auto guess = closest(flag, flags);
  if (guess) return fmt::format("{}: unknown flag {}; did you mean {}?\n", program, printable(flag), *guess);
  return fmt::format("{}: unknown flag {} (flags: {})\n", program, printable(flag), joined(flags));
}

} // namespace

std::optional<std::string>
mistyped_argument(CLI::App& app, const CLI::ParseError& error)
{
  // Extras: a word nothing took. Required: a command, or an option, missing,
  // perhaps because it was mistyped (`check --inventroy x`).
  bool extras = dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr;
  bool required = dynamic_cast<const CLI::RequiredError*>(&error) != nullptr;
  if (!extras && !required) return std::nullopt;
  const std::string program = app.get_name();
  auto parsed = app.get_subcommands();
  if (!parsed.empty()) {
    auto* command = parsed.back();
    if (auto flag = first_flag(command->remaining())) {
      return unknown_flag(program + " " + command->get_name(), *flag, flags_of(*command)) +
             fmt::format("Run `{} {} --help` for its flags.\n", program, command->get_name());
    }
  }
  auto words = app.remaining();
  if (words.empty()) return std::nullopt;
  if (auto flag = first_flag({words.front()})) return unknown_flag(program, *flag, flags_of(app));
  if (!parsed.empty()) return std::nullopt; // a word too many: CLI11 says so
  std::vector<std::string> commands;
  for (const auto* command : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (!command->get_group().empty()) commands.push_back(command->get_name());
  }
  const auto& word = words.front();
  auto guess = closest(word, commands);
  if (guess) return fmt::format("{}: unknown command '{}'; did you mean '{}'?\n", program, printable(word), *guess);
  return fmt::format("{}: unknown command '{}' (commands: {})\n", program, printable(word), joined(commands));
}

} // namespace portmatrix
