// Running other programs (ip, nft, haproxy, ourselves in a namespace) without
// a shell: argv in, exit status and output out. Knows nothing of portmatrix.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

namespace portmatrix {

struct ProcessResult
{
  int status = -1; // exit status, or 128 + signal, or -1 when it could not start
  std::string output; // stdout and stderr together
};

// Runs argv[0] (searched in PATH) to completion, feeding `input` on stdin.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = {});

// Starts argv in the background with stdout and stderr going to `log_path`
// (appended; /dev/null when empty). Returns the pid, or -1.
pid_t spawn_process(const std::vector<std::string>& argv, const std::string& log_path = {});

// Sends SIGTERM, waits up to `grace_ms`, then SIGKILL; reaps the child.
void stop_process(pid_t pid, int grace_ms = 2000);

// True when the program is found in PATH.
bool have_program(const std::string& name);

} // namespace portmatrix
