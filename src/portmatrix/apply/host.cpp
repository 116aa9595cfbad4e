// The system ApplyHost: programs through util/process, files written to a
// temporary and renamed, the rollback started as its own session.
#include "apply/host.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace portmatrix {
namespace {

class SystemApplyHost : public ApplyHost
{
public:
  ProcessResult run(const std::vector<std::string>& argv, const std::string& input) override
  {
    return run_process(argv, input, Streams::separate);
  }

  std::optional<std::string> read(const std::filesystem::path& path) override
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    return std::move(text).str();
  }

  bool write(const std::filesystem::path& path, const std::string& text, unsigned mode) override
  {
    std::error_code error;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), error);
    auto temporary = path;
    temporary += ".portmatrix-new." + std::to_string(::getpid()); // writers on one filesystem never share it
    int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return false;
    std::size_t done = 0;
    while (done < text.size()) {
      auto n = ::write(fd, text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += std::size_t(n);
    }
    bool ok = done == text.size() && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
    ok = ::close(fd) == 0 && ok;
    if (ok && ::rename(temporary.c_str(), path.c_str()) == 0) return true;
    ::unlink(temporary.c_str());
    return false;
  }

  bool remove(const std::filesystem::path& path) override
  {
    std::error_code error;
    std::filesystem::remove(path, error);
    return !error;
  }

  bool exists(const std::filesystem::path& path) override
  {
    std::error_code error;
    return std::filesystem::exists(path, error);
  }

  bool have_program(const std::string& name) override { return portmatrix::have_program(name); }

  int spawn_detached(const std::vector<std::string>& argv, const std::filesystem::path& log) override
  {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid != 0) return pid < 0 ? -1 : pid; // its parent (init, once we exit) reaps it
    ::setsid();
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || out < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGHUP, SIGINT, SIGTERM, SIGPIPE}) ::signal(s, SIG_DFL);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }

  bool running(int pid, const std::string& marker) override
  {
    if (pid <= 0) return false;
    auto cmdline = read("/proc/" + std::to_string(pid) + "/cmdline");
    if (!cmdline) return false;
    for (auto& c : *cmdline) c = c == '\0' ? ' ' : c;
    auto stat = read("/proc/" + std::to_string(pid) + "/stat");
    if (stat && stat->find(") Z ") != std::string::npos) return false;
    return cmdline->find(marker) != std::string::npos;
  }

  void stop_group(int pid) override
  {
    if (pid > 0) ::kill(-pid, SIGTERM);
  }

  bool systemd_here() override
  {
    std::error_code error;
    if (!std::filesystem::is_directory("/run/systemd/system", error)) return false;
    if (!have_program("systemd-run")) return false;
    for (const char* ns : {"net", "mnt"}) {
      auto mine = std::filesystem::read_symlink(std::string("/proc/self/ns/") + ns, error);
      if (error) return false;
      auto init = std::filesystem::read_symlink(std::string("/proc/1/ns/") + ns, error);
      if (error || mine != init) return false;
    }
    return true;
  }

  bool locked(const std::filesystem::path& lock, const std::function<void()>& work) override
  {
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    if (::flock(fd, LOCK_EX) != 0) {
      ::close(fd);
      return false;
    }
    work();
    ::close(fd); // releases the lock
    return true;
  }
};

} // namespace

std::unique_ptr<ApplyHost>
make_system_apply_host()
{
  return std::make_unique<SystemApplyHost>();
}

} // namespace portmatrix
