// Running other programs (ip, nft, haproxy, ourselves in a namespace) without
// a shell: argv in, exit status and output out. Knows nothing of portmatrix.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace portmatrix {

struct ProcessResult
{
  int status = -1; // exit status, or 128 + signal, or -1 when it could not start
  std::string output; // stdout and stderr together (Streams::separate: stdout only)
  std::string errors; // Streams::separate: stderr
};

enum class Streams { merged, separate };

// Runs argv[0] (searched in PATH) to completion, feeding `input` on stdin.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = {},
                          Streams streams = Streams::merged);

// Starts argv in the background with stdout and stderr going to `log_path`
// (appended; /dev/null when empty). Returns the pid, or -1.
pid_t spawn_process(const std::vector<std::string>& argv, const std::string& log_path = {});

// Sends SIGTERM, waits up to `grace_ms`, then SIGKILL; reaps the child.
void stop_process(pid_t pid, int grace_ms = 2000);

// A program running in the background with `input` written to its stdin
// (then closed) and its stdout and stderr read as they come, so a caller can
// wait for a text it prints while it goes on running (its output is read
// all the time, so it never blocks on a full pipe). The destructor stops it
// as stop_process() does.
class BackgroundProcess
{
public:
  // Starts argv; running() is false (and output() says why) when it could not.
  BackgroundProcess(const std::vector<std::string>& argv, const std::string& input);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  // Waits until its output holds `text`, it ends, or `timeout` passes.
  // True when the text came.
  bool wait_for(std::string_view text, std::chrono::milliseconds timeout);
  // Waits up to `timeout` for it to end by itself, then stops it as
  // stop_process() does. Returns its exit status (see ProcessResult).
  int finish(std::chrono::milliseconds timeout);
  bool running();
  std::string output(); // what it printed so far (the last 1 to 2 MiB of it)

private:
  void read_output(int fd);

  pid_t m_pid = -1;
  std::thread m_reader;
  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::string m_output;
  bool m_ended = false; // its output reached EOF
  int m_status = -1;
  bool m_reaped = false;
};

// True when the program is found in PATH.
bool have_program(const std::string& name);

} // namespace portmatrix
