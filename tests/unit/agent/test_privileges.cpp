// The agent's confinement (finding 9), in a forked child so the test process
// keeps its own privileges: after confine() the child has only CAP_NET_RAW
// and CAP_NET_BIND_SERVICE, no_new_privs and seccomp mode 2, still does
// what the agent does (a socket, a thread, a file read), and a forbidden
// call (execve) stops it with k_seccomp_exit and a message naming the call.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "agent/privileges.hpp"
#include "../skip.hpp"

namespace portmatrix {
namespace {

std::string
status_field(const std::string& status, const std::string& name)
{
  std::istringstream lines(status);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + ":", 0) == 0) return line.substr(line.find_first_not_of(" \t", name.size() + 1));
  }
  return "";
}

struct ChildResult
{
  int status = 0;
  std::string output; // what the child wrote to stdout and stderr
};

// Runs `body` in a forked child whose stdout and stderr go to a pipe.
ChildResult
in_child(void (*body)())
{
  int pipe_fds[2];
  EXPECT_EQ(::pipe(pipe_fds), 0);
  auto child = ::fork();
  if (child == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::close(pipe_fds[0]);
    body();
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  ChildResult result;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) result.output.append(buffer, std::size_t(n));
  ::close(pipe_fds[0]);
  ::waitpid(child, &result.status, 0);
  return result;
}

void
confine_or_exit()
{
  auto error = confine();
  if (!error.empty()) {
    std::printf("confine: %s\n", error.c_str());
    std::fflush(stdout);
    ::_exit(2);
  }
}

TEST(Confine, KeepsTwoCapabilitiesSetsNoNewPrivsAndSeccomp)
{
  if (::geteuid() != 0) {
    if (std::getenv("CI")) FAIL() << "needs root (CI runs the tests as root)";
    PORTMATRIX_SKIP() << "needs root to see the capabilities reduced";
  }
  auto result = in_child([] {
    confine_or_exit();
    // What the agent still does: sockets, threads, reading files.
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) ::_exit(3);
    ::close(fd);
    std::thread([] {}).join();
    std::ifstream in("/proc/self/status");
    std::stringstream text;
    text << in.rdbuf();
    std::fputs(text.str().c_str(), stdout);
    std::fflush(stdout);
    ::_exit(0);
  });
  ASSERT_TRUE(WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0) << result.output;
  EXPECT_EQ(status_field(result.output, "CapEff"), "0000000000002400") << result.output;
  EXPECT_EQ(status_field(result.output, "CapPrm"), "0000000000002400");
  EXPECT_EQ(status_field(result.output, "CapInh"), "0000000000000000");
  EXPECT_EQ(status_field(result.output, "CapBnd"), "0000000000002400");
  EXPECT_EQ(status_field(result.output, "NoNewPrivs"), "1");
  EXPECT_EQ(status_field(result.output, "Seccomp"), "2");
}

TEST(Confine, AForbiddenCallStopsTheProcessWithAMessage)
{
  auto result = in_child([] {
    confine_or_exit();
    char path[] = "/bin/true";
    char* argv[] = {path, nullptr};
    ::execve(path, argv, environ);
    std::printf("execve returned\n");
    std::fflush(stdout);
    ::_exit(1);
  });
  ASSERT_TRUE(WIFEXITED(result.status)) << result.output;
  EXPECT_EQ(WEXITSTATUS(result.status), k_seccomp_exit) << result.output;
  EXPECT_NE(result.output.find("system call " + std::to_string(SYS_execve) + " is not allowed"), std::string::npos)
    << result.output;
}

} // namespace
} // namespace portmatrix
