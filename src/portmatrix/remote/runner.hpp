// The seam between the fan-out's logic and the operating system: every ssh
// goes through a Runner, so tests drive the logic with a fake one,
// and --dry-run with one that only records.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/process.hpp"

namespace portmatrix {

// A command left running (an agent's ssh session).
class Background
{
public:
  virtual ~Background() = default;
  // True once its output holds `text`; false when it ended or `timeout` passed first.
  virtual bool wait_for(std::string_view text, std::chrono::milliseconds timeout) = 0;
  // Waits up to `timeout` for it to end, then stops it. Its exit status.
  virtual int finish(std::chrono::milliseconds timeout) = 0;
  virtual std::string output() = 0;
};

class Runner
{
public:
  virtual ~Runner() = default;
  // Runs argv to completion, `input` on its standard input.
  virtual ProcessResult run(const std::vector<std::string>& argv, const std::string& input, Streams streams) = 0;
  // Starts argv, `input` on its standard input (then closed).
  virtual std::unique_ptr<Background> start(const std::vector<std::string>& argv, const std::string& input) = 0;
};

// Runs the programs (util/process).
std::unique_ptr<Runner> make_system_runner();

// Runs nothing: every command succeeds at once with `output` (--dry-run),
// and a started one prints `output` and ends.
std::unique_ptr<Runner> make_dry_runner(std::string output);

} // namespace portmatrix
