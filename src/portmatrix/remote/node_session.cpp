// The steps of one node. Everything sent to the node is an argv quoted by
// SshCommands; the few shell scripts (sh -c) take their values as quoted
// words too. The run directory is created with mkdir (not -p) so that a
// directory left by someone else is never used.
#include "remote/node_session.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

#include <fmt/format.h>

namespace portmatrix {

NodeSession::NodeSession(Runner& runner, SshCommands commands, const RemoteRun& run)
  : m_runner(runner), m_commands(std::move(commands)), m_run(run)
{
}

NodeSession::~NodeSession()
{
  teardown();
}

std::string
NodeSession::run_directory() const
{
  return fmt::format("/tmp/portmatrix-{}-{}", m_run.id, node());
}

std::string
NodeSession::binary_name() const
{
  return "portmatrix-" + m_run.binary_sha256.substr(0, 16);
}

std::vector<std::string>
NodeSession::commands() const
{
  std::lock_guard lock(m_log_mutex);
  return m_log;
}

std::string
NodeSession::agent_output() const
{
  return m_agent ? m_agent->output() : std::string();
}

ProcessResult
NodeSession::exec(const std::vector<std::string>& argv, Streams streams, const std::string& input,
                  std::string_view input_is)
{
  {
    std::lock_guard lock(m_log_mutex);
    m_log.push_back(shell_join(argv) + (input_is.empty() ? "" : " < " + std::string(input_is)));
  }
  return m_runner.run(argv, input, streams);
}

void
NodeSession::fail(std::string_view step, const ProcessResult& result)
{
  if (m_failure.empty()) m_failure = failure_reason(step, result.output + result.errors, result.status);
}

bool
NodeSession::connect()
{
  std::lock_guard step(m_step_mutex);
  if (failed() || m_stopping) return false;
  auto result = exec(m_commands.open_master(m_run.persist));
  if (result.status != 0) {
    fail("connect", result);
    return false;
  }
  m_connected = true;
  return true;
}

bool
NodeSession::install()
{
  std::lock_guard step(m_step_mutex);
  if (failed() || !m_connected || m_stopping) return false;
  auto dir = run_directory();
  auto cache = "\"$HOME\"/.cache/portmatrix";
  // Writes the inventory (from standard input: no round trip of its own),
  // prints the home directory (the cache's absolute path for sudo,
  // whose HOME may be root's) and whether the cache holds this binary.
  auto script = fmt::format("umask 077 && mkdir -m 700 {0} && cat > {0}/inventory.yaml && {1}printf '%s\\n' \"$HOME\" && "
                            "if test -x {2}/{3}; then echo cached; else echo absent; fi",
                            shell_quote(dir), m_run.keep_binary ? fmt::format("mkdir -p {} && ", cache) : "", cache,
                            binary_name());
  auto prepared = exec(m_commands.run({"sh", "-c", script}), Streams::merged, m_run.inventory_text,
                       m_run.inventory + " on standard input");
  auto lines = prepared.output;
  while (!lines.empty() && lines.back() == '\n') lines.pop_back();
  auto last = lines.rfind('\n');
  if (prepared.status != 0 || last == std::string::npos) {
    fail("prepare", prepared);
    return false;
  }
  m_directory = true;
  auto state = lines.substr(last + 1);
  auto home_start = lines.rfind('\n', last - 1);
  auto home = lines.substr(home_start == std::string::npos ? 0 : home_start + 1,
                           last - (home_start == std::string::npos ? 0 : home_start + 1));
  auto cached = home + "/.cache/portmatrix/" + binary_name();
  if (state == "cached") {
    m_binary_path = cached;
  } else {
    m_binary_path = m_run.keep_binary ? cached : dir + "/" + binary_name();
    m_partial = fmt::format("{}.part-{}-{}", m_binary_path, m_run.id, node()); // nodes may share a home (tests)
    // Streamed on ssh's standard input (no SFTP or scp needed on the node,
    // and a full disk is told in cat's own words), checked for its size
    // (a connection lost midway ends the stream early, not in error) and
    // renamed into place only whole.
    auto script = "cat > \"$0\" && test \"$(wc -c < \"$0\")\" -eq \"$2\" && chmod 700 \"$0\" && mv -f \"$0\" \"$1\"";
    auto uploaded = exec(m_commands.run({"sh", "-c", script, m_partial, m_binary_path,
                                         std::to_string(m_run.binary_content.size())}),
                         Streams::merged, m_run.binary_content, m_run.binary + " on standard input");
    if (uploaded.status != 0) {
      fail("upload", uploaded);
      return false;
    }
    m_partial.clear();
  }
  return true;
}

bool
NodeSession::run_portmatrix(const std::vector<std::string>& args, std::string& output, int& status,
                            const std::string& secret, std::string* errors)
{
  std::lock_guard step(m_step_mutex);
  if (failed() || m_binary_path.empty() || m_stopping) return false;
  std::vector<std::string> remote{m_binary_path};
  remote.insert(remote.end(), args.begin(), args.end());
  auto result = exec(m_commands.run_privileged(remote), Streams::separate, secret.empty() ? "" : secret + "\n",
                     secret.empty() ? "" : "token on standard input");
  output = result.output;
  status = result.status;
  if (errors) *errors = result.errors;
  // 0 and 1 are a report (passed, failed); anything else is the node's failure.
  if (status != 0 && status != 1) {
    fail("run", result);
    return false;
  }
  return true;
}

bool
NodeSession::new_connection(std::string& why)
{
  std::lock_guard step(m_step_mutex);
  if (m_stopping) {
    why = "stopping";
    return false;
  }
  auto result = exec(m_commands.run_new_connection({"true"}));
  if (result.status == 0) return true;
  why = failure_reason("new connection", result.output, result.status);
  return false;
}

bool
NodeSession::start_agent(const std::vector<std::string>& args, const std::string& token,
                         std::chrono::milliseconds timeout)
{
  std::lock_guard step(m_step_mutex);
  if (failed() || m_binary_path.empty() || m_stopping) return false;
  // The shell starts the agent (its standard input, the token, passed on
  // explicitly: a background job's would be /dev/null), writes its pid for
  // the stop, waits for it and removes the run directory: an agent that
  // ends by itself (--exit-after, after the workstation died) leaves no file.
  std::vector<std::string> remote{"sh", "-c",
                                  "exec 3<&0; \"$@\" <&3 & echo $! > \"$0/agent.pid\"; exec 3<&-; wait $!; s=$?; "
                                  "rm -rf -- \"$0\"; exit $s",
                                  run_directory(), m_binary_path, "agent"};
  remote.insert(remote.end(), args.begin(), args.end());
  auto argv = m_commands.run_privileged(remote);
  {
    std::lock_guard lock(m_log_mutex);
    m_log.push_back(shell_join(argv) + " < token on standard input");
  }
  m_agent = m_runner.start(argv, token + "\n");
  if (m_agent->wait_for(fmt::format("portmatrix agent {}: ready", node()), timeout)) return true;
  ProcessResult result;
  result.status = m_agent->finish(std::chrono::milliseconds(0));
  result.output = m_agent->output();
  if (result.output.empty()) result.output = fmt::format("no ready line in {} ms", timeout.count());
  fail("agent", result);
  return false;
}

void
NodeSession::teardown()
{
  // A step still running (on a fan-out thread, when a signal tears down)
  // finishes first, and no step starts after: nothing is created on the
  // node once its files are removed.
  m_stopping = true;
  std::lock_guard lock(m_teardown_mutex);
  std::lock_guard step(m_step_mutex);
  if (m_torn_down) return;
  m_torn_down = true;
  if (m_directory || !m_partial.empty()) {
    // One round trip: stop the agent (its pid file, if it got that far),
    // then remove the run directory and a partial upload.
    std::vector<std::string> remove{"sh", "-c",
                                    "test ! -f \"$0/agent.pid\" || kill -TERM \"$(cat \"$0/agent.pid\")\" 2>/dev/null; "
                                    "rm -rf -- \"$0\" \"$@\"",
                                    run_directory()};
    if (!m_partial.empty()) remove.push_back(m_partial);
    auto removed = exec(m_agent ? m_commands.run_privileged(remove) : m_commands.run(remove));
    // sudo that refused (a password asked) started no agent either: the
    // files are the ssh user's own, removed without it.
    if (removed.status != 0 && m_agent && m_commands.target().sudo) exec(m_commands.run(remove));
  }
  // Its session ends with the agent.
  if (m_agent) m_agent->finish(std::chrono::seconds(10));
  if (m_connected) exec(m_commands.close_master());
}

void
for_each_bounded(std::size_t count, int parallel, const std::function<void(std::size_t)>& work)
{
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next++) < count;) work(i);
  };
  std::vector<std::thread> threads;
  auto wanted = std::min<std::size_t>(count, std::size_t(std::max(parallel, 1)));
  for (std::size_t t = 1; t < wanted; ++t) threads.emplace_back(worker);
  worker();
  for (auto& thread : threads) thread.join();
}

} // namespace portmatrix
