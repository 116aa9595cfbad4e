// The seam between `firewall apply` and the node it runs on: every program
// it runs (nft, iptables-save, flock, systemd-run...), every file it reads or
// writes and the rollback it leaves behind go through an ApplyHost, so the
// steps are tested with a fake host and run for real with the system one.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/process.hpp"

namespace portmatrix {

class ApplyHost
{
public:
  virtual ~ApplyHost() = default;
  // Runs argv to completion, `input` on its standard input; stdout in
  // `output`, stderr in `errors`.
  virtual ProcessResult run(const std::vector<std::string>& argv, const std::string& input = {}) = 0;
  // The whole file, or nullopt when it cannot be read (absent).
  virtual std::optional<std::string> read(const std::filesystem::path& path) = 0;
  // Writes the file whole or not at all (a temporary renamed over it), with
  // `mode`, creating its directory. False when it could not.
  virtual bool write(const std::filesystem::path& path, const std::string& text, unsigned mode = 0644) = 0;
  // Removes a file (absent is fine). False when it exists and stays.
  virtual bool remove(const std::filesystem::path& path) = 0;
  virtual bool exists(const std::filesystem::path& path) = 0;
  virtual bool have_program(const std::string& name) = 0;
  // Starts argv detached from us (its own session, standard streams to
  // `log`, no other fd), so it outlives this process and its ssh session.
  // Its pid (the leader of its process group), or -1.
  virtual int spawn_detached(const std::vector<std::string>& argv, const std::filesystem::path& log) = 0;
  // True when `pid` runs and its command line holds `marker`.
  virtual bool running(int pid, const std::string& marker) = 0;
  // Ends the process group `pid` leads (SIGTERM).
  virtual void stop_group(int pid) = 0;
  // True when systemd manages this host and we share its network and mount
  // namespaces (a transient unit would act on this firewall, not another's).
  virtual bool systemd_here() = 0;
  // Runs `work` holding an exclusive flock(2) on `lock` (created), the lock
  // the rollback script takes with flock(1). False when it cannot be taken.
  virtual bool locked(const std::filesystem::path& lock, const std::function<void()>& work) = 0;
};

std::unique_ptr<ApplyHost> make_system_apply_host();

} // namespace portmatrix
