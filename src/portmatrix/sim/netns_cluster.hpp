// A simulated cluster on this machine: one network namespace per node of a
// plan, wired to a bridge in a namespace of its own, each node with its
// inventory address (the load-balancer nodes also hold the VIP). Everything
// it creates is named with a unique prefix and removed by teardown() or the
// destructor, including the processes it started. Needs root.
#pragma once

#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "plan/plan.hpp"

namespace portmatrix {

class NetnsCluster
{
public:
  // `prefix` keeps names unique per run (short: interface names are at most 15 bytes).
  NetnsCluster(const Plan& plan, std::string prefix);
  ~NetnsCluster();
  NetnsCluster(const NetnsCluster&) = delete;
  NetnsCluster& operator=(const NetnsCluster&) = delete;

  bool create(std::string& error);
  // The namespace that holds `node`.
  std::string namespace_of(const std::string& node) const { return m_prefix + "-" + node; }
  // Runs argv inside the node's namespace, to completion.
  bool run_in(const std::string& node, const std::vector<std::string>& argv, std::string& output,
              const std::string& input = {});
  // Starts argv inside the node's namespace; the cluster stops it at teardown.
  pid_t spawn_in(const std::string& node, const std::vector<std::string>& argv, const std::string& log_path);
  // Runs `body` on this thread inside the node's network namespace (setns),
  // then returns the thread to its own; false, with `error`, when it cannot
  // enter (body not run) or cannot return (then the process must not go on).
  bool run_inside(const std::string& node, const std::function<void()>& body, std::string& error);
  void teardown();

private:
  bool ip(const std::vector<std::string>& args, std::string& error);

  const Plan& m_plan;
  std::string m_prefix;
  std::vector<std::string> m_namespaces;
  std::vector<pid_t> m_children;
};

} // namespace portmatrix
