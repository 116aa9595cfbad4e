// "Did you mean": CLI11 says only that an argument was not expected; this
// names the command or flag a mistyped word most likely stands for.
#pragma once

#include <optional>
#include <string>

namespace CLI {
class App;
class ParseError;
} // namespace CLI

namespace portmatrix {

// After `app.parse` threw `error`: for an unknown command or flag (also when
// it made a required one missing: `check --inventroy x`), the message
// to print instead of CLI11's ("portmatrix ports: unknown flag --fromat; did
// you mean --format?"), ending in a newline; nullopt for any other error
// (CLI11's own message serves).
std::optional<std::string> mistyped_argument(CLI::App& app, const CLI::ParseError& error);

} // namespace portmatrix
