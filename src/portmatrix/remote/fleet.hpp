// Every node's NodeSession for one run: a private control directory for
// the connections, connect and install on at most --parallel nodes at once,
// and teardown of all of them, whatever happened before.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/inventory.hpp"
#include "remote/node_session.hpp"
#include "remote/runner.hpp"

namespace portmatrix {

// A directory only we can use (mode 700), made by mkdtemp under /tmp (short:
// a socket's path has at most 107 bytes), removed with what is in it.
class ControlDirectory
{
public:
  ControlDirectory();
  ~ControlDirectory();
  ControlDirectory(const ControlDirectory&) = delete;
  ControlDirectory& operator=(const ControlDirectory&) = delete;
  // Empty when it could not be made (error() says why).
  const std::string& path() const { return m_path; }
  const std::string& error() const { return m_error; }

private:
  std::string m_path;
  std::string m_error;
};

class Fleet
{
public:
  using Progress = std::function<void(const std::string&)>;

  // One session per node of `inventory`, in its order. `runner`,
  // `inventory` and `run` must outlive the fleet.
  Fleet(Runner& runner, const Inventory& inventory, const RemoteRun& run, const std::string& control_directory,
        int parallel, Progress progress);
  ~Fleet(); // teardown()

  // Connects to every node, then installs on every connected one (a failed
  // node keeps its reason).
  void connect();
  void install();
  // Runs `work` for every node that has not failed, --parallel at once.
  void each(const std::function<void(NodeSession&)>& work);
  // Tears every node down, in parallel. Safe from another thread (a signal's)
  // and to call again.
  void teardown();

  std::vector<std::unique_ptr<NodeSession>>& sessions() { return m_sessions; }
  // node -> why it failed, for the nodes that did.
  std::map<std::string, std::string> failures() const;
  void progress(const std::string& message) const;

private:
  std::vector<std::unique_ptr<NodeSession>> m_sessions;
  int m_parallel;
  Progress m_progress;
};

// A fresh id for a run: 8 random hex digits.
std::string new_run_id();

} // namespace portmatrix
