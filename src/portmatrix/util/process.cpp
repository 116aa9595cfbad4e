// fork + execvp with pipes; the child resets signal handling and masks so
// that a caller blocking signals (the agent) does not pass that on.
#include "util/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace portmatrix {

namespace {

std::vector<char*>
c_argv(const std::vector<std::string>& argv)
{
  std::vector<char*> out;
  for (const auto& arg : argv) out.push_back(const_cast<char*>(arg.c_str()));
  out.push_back(nullptr);
  return out;
}

void
reset_signals()
{
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGPIPE, SIG_DFL);
}

int
decode_status(int status)
{
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

} // namespace

ProcessResult
run_process(const std::vector<std::string>& argv, const std::string& input, Streams streams)
{
  ProcessResult result;
  if (argv.empty()) return result;
  int in[2];
  int out[2];
  int err[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0) return result;
  if (::pipe2(out, O_CLOEXEC) != 0 || (streams == Streams::separate && ::pipe2(err, O_CLOEXEC) != 0)) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
      if (fd >= 0) ::close(fd);
    }
    return result;
  }
  auto args = c_argv(argv);
  pid_t pid = ::fork();
  if (pid == 0) {
    reset_signals();
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(streams == Streams::separate ? err[1] : out[1], 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  if (err[1] >= 0) ::close(err[1]);
  if (pid < 0) {
    ::close(in[1]);
    ::close(out[0]);
    if (err[0] >= 0) ::close(err[0]);
    return result;
  }
  std::size_t written = 0;
  ::signal(SIGPIPE, SIG_IGN);
  while (written < input.size()) {
    auto n = ::write(in[1], input.data() + written, input.size() - written);
    if (n <= 0 && errno != EINTR) break;
    if (n > 0) written += std::size_t(n);
  }
  ::close(in[1]);
  // Both pipes drained together: a child filling one while we wait on the other would block.
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.output, &result.errors};
  int open_count = err[0] >= 0 ? 2 : 1;
  char buffer[4096];
  while (open_count > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      auto n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, std::size_t(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  for (auto& fd : fds) {
    if (fd.fd >= 0) ::close(fd.fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = decode_status(status);
  return result;
}

pid_t
spawn_process(const std::vector<std::string>& argv, const std::string& log_path)
{
  if (argv.empty()) return -1;
  auto args = c_argv(argv);
  auto path = log_path.empty() ? std::string("/dev/null") : log_path;
  pid_t pid = ::fork();
  if (pid == 0) {
    reset_signals();
    int log = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    if (null >= 0) ::dup2(null, 0);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

void
stop_process(pid_t pid, int grace_ms)
{
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno == ECHILD)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, const std::string& input)
{
  int in[2];
  int out[2];
  if (argv.empty() || ::pipe2(in, O_CLOEXEC) != 0) {
    m_output = "cannot start: no program or no pipe";
    m_ended = true;
    return;
  }
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    m_output = "cannot start: no pipe";
    m_ended = true;
    return;
  }
  auto args = c_argv(argv);
  m_pid = ::fork();
  if (m_pid == 0) {
    reset_signals();
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::execvp(args[0], args.data());
    std::string why = std::string("cannot run ") + args[0] + ": " + std::strerror(errno) + "\n";
    auto ignored = ::write(2, why.data(), why.size());
    (void)ignored;
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  if (m_pid < 0) {
    ::close(in[1]);
    ::close(out[0]);
    m_output = "cannot start: fork failed";
    m_ended = true;
    return;
  }
  ::signal(SIGPIPE, SIG_IGN);
  std::size_t written = 0;
  while (written < input.size()) {
    auto n = ::write(in[1], input.data() + written, input.size() - written);
    if (n <= 0 && errno != EINTR) break;
    if (n > 0) written += std::size_t(n);
  }
  ::close(in[1]);
  m_reader = std::thread([this, fd = out[0]] { read_output(fd); });
}

BackgroundProcess::~BackgroundProcess()
{
  finish(std::chrono::milliseconds(0));
}

void
BackgroundProcess::read_output(int fd)
{
  char buffer[4096];
  for (;;) {
    auto n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard lock(m_mutex);
    if (n <= 0) {
      m_ended = true;
      m_changed.notify_all();
      break;
    }
    m_output.append(buffer, std::size_t(n));
    // A long-running program's log is kept to its last 1 MiB.
    if (m_output.size() > (2u << 20)) m_output.erase(0, m_output.size() - (1u << 20));
    m_changed.notify_all();
  }
  ::close(fd);
}

bool
BackgroundProcess::wait_for(std::string_view text, std::chrono::milliseconds timeout)
{
  std::unique_lock lock(m_mutex);
  m_changed.wait_for(lock, timeout, [&] { return m_ended || m_output.find(text) != std::string::npos; });
  return m_output.find(text) != std::string::npos;
}

bool
BackgroundProcess::running()
{
  std::lock_guard lock(m_mutex);
  return !m_ended;
}

std::string
BackgroundProcess::output()
{
  std::lock_guard lock(m_mutex);
  return m_output;
}

int
BackgroundProcess::finish(std::chrono::milliseconds timeout)
{
  if (m_pid > 0 && !m_reaped) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    pid_t done = 0;
    while ((done = ::waitpid(m_pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (done == m_pid) {
      m_status = decode_status(status);
    } else {
      ::kill(m_pid, SIGTERM);
      auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while ((done = ::waitpid(m_pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < grace) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (done == 0) {
        ::kill(m_pid, SIGKILL);
        done = ::waitpid(m_pid, &status, 0);
      }
      m_status = done == m_pid ? decode_status(status) : -1;
    }
    m_reaped = true;
  }
  if (m_reader.joinable()) m_reader.join();
  return m_status;
}

bool
have_program(const std::string& name)
{
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    auto end = dirs.find(':', start);
    auto dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

} // namespace portmatrix
