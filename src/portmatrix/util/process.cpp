// fork + execvp with pipes; the child resets signal handling and masks so
// that a caller blocking signals (the agent) does not pass that on.
#include "util/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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
run_process(const std::vector<std::string>& argv, const std::string& input)
{
  ProcessResult result;
  if (argv.empty()) return result;
  int in[2];
  int out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return result;
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return result;
  }
  auto args = c_argv(argv);
  pid_t pid = ::fork();
  if (pid == 0) {
    reset_signals();
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  if (pid < 0) {
    ::close(in[1]);
    ::close(out[0]);
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
  char buffer[4096];
  for (;;) {
    auto n = ::read(out[0], buffer, sizeof(buffer));
    if (n > 0) result.output.append(buffer, std::size_t(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(out[0]);
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
