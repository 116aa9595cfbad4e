// One node's part of an SSH fan-out, step by step: connect (the master),
// install (run directory, the binary by content hash, the inventory), run
// portmatrix there or start its agent, and tear everything down again.
// A step that fails records why, in ssh's own words, and every later step
// but teardown() does nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "remote/runner.hpp"
#include "remote/ssh_command.hpp"

namespace portmatrix {

// What every node of one run shares.
struct RemoteRun
{
  std::string id;            // random hex, names the run's files on the nodes
  std::string binary;        // the local portmatrix to upload (named in --dry-run)
  std::string binary_content; // its bytes, written on the nodes through ssh's standard input
  std::string binary_sha256; // its content hash (64 hex)
  std::string inventory;     // the local inventory file (named in --dry-run)
  std::string inventory_text; // its content, written on the nodes through ssh's standard input
  bool keep_binary = false;  // keep the binary in ~/.cache/portmatrix/ of the ssh user
  // The master lives this long after its last session: long enough for a
  // node that waits its turn (--parallel), short after a workstation died.
  std::chrono::seconds persist{120};
};

class NodeSession
{
public:
  // `runner` must outlive the session.
  NodeSession(Runner& runner, SshCommands commands, const RemoteRun& run);
  ~NodeSession(); // teardown()

  // Opens the node's connection.
  bool connect();
  // Creates the run directory /tmp/portmatrix-<run>-<node> with the
  // inventory in it, and uploads the binary unless ~/.cache/portmatrix/
  // holds it (by its hash).
  bool install();
  // Runs the uploaded portmatrix with `args` in the run directory (through
  // sudo when the target says so). Its stdout in `output`; false (and the
  // failure recorded) when it could not run or exited other than 0 or 1.
  // `secret` (the token, for check --coordinator) goes on its standard input;
  // its stderr goes to `errors` when given.
  bool run_portmatrix(const std::vector<std::string>& args, std::string& output, int& status,
                      const std::string& secret = {}, std::string* errors = nullptr);
  // Logs in again over a new connection of its own (not the master's) and
  // runs `true`: whether the node still admits a new ssh login. False (the
  // reason in `why`, the session not marked failed) when it does not.
  bool new_connection(std::string& why);
  // Starts `portmatrix agent` with `args` (the token on its standard input)
  // and waits up to `timeout` for its ready line.
  bool start_agent(const std::vector<std::string>& args, const std::string& token, std::chrono::milliseconds timeout);
  // Stops the agent (if started), removes the run directory (and a partial
  // upload), closes the connection. Safe to call again and from another
  // thread: it waits for a step in progress, no step runs after it, and a
  // second call waits for the first and does nothing.
  void teardown();

  bool failed() const { return !m_failure.empty(); }
  const std::string& failure() const { return m_failure; }
  const std::string& node() const { return m_commands.target().node; }
  std::string run_directory() const;
  // Every command run so far, as a shell would read it, in order (the
  // token is never in them: "< token on standard input" says where it went).
  std::vector<std::string> commands() const;
  // The agent's output so far (its log).
  std::string agent_output() const;

private:
  // Runs and logs a command; `input_is` says in the log what `input` is.
  ProcessResult exec(const std::vector<std::string>& argv, Streams streams = Streams::merged,
                     const std::string& input = {}, std::string_view input_is = {});
  void fail(std::string_view step, const ProcessResult& result);
  std::string binary_name() const;

  Runner& m_runner;
  SshCommands m_commands;
  const RemoteRun& m_run;
  std::string m_failure;
  std::string m_binary_path; // where the binary is on the node, once installed
  std::string m_partial;     // an upload's temporary name, while it may exist
  bool m_connected = false;
  bool m_directory = false;
  std::unique_ptr<Background> m_agent;
  mutable std::mutex m_log_mutex;
  std::vector<std::string> m_log;
  std::mutex m_teardown_mutex;
  std::mutex m_step_mutex; // held by each step while it runs
  std::atomic<bool> m_stopping{false};
  bool m_torn_down = false;
};

// Runs `work(i)` for i in [0, count) on at most `parallel` threads at once.
void for_each_bounded(std::size_t count, int parallel, const std::function<void(std::size_t)>& work);

} // namespace portmatrix
