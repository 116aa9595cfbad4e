// Built with iproute2 commands (no libnl): veth pairs are created inside the
// switch namespace with their peer moved straight into the node's namespace,
// so nothing ever appears in the caller's own namespace.
#include "sim/netns_cluster.hpp"

#include <fcntl.h>
#include <sched.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "net/fd.hpp"

#include "util/process.hpp"

namespace portmatrix {

NetnsCluster::NetnsCluster(const Plan& plan, std::string prefix) : m_plan(plan), m_prefix(std::move(prefix)) {}

NetnsCluster::~NetnsCluster()
{
  teardown();
}

bool
NetnsCluster::ip(const std::vector<std::string>& args, std::string& error)
{
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = run_process(argv);
  if (result.status == 0) return true;
  std::string command;
  for (const auto& arg : argv) command += (command.empty() ? "" : " ") + arg;
  error = fmt::format("'{}' failed: {}", command, result.output);
  return false;
}

bool
NetnsCluster::create(std::string& error)
{
  auto sw = m_prefix + "-sw";
  if (!ip({"netns", "add", sw}, error)) return false;
  m_namespaces.push_back(sw);
  if (!ip({"-n", sw, "link", "add", "br0", "type", "bridge"}, error) ||
      !ip({"-n", sw, "link", "set", "br0", "up"}, error)) {
    return false;
  }
  // A plain switch: with br_netfilter in the kernel, a new namespace's
  // bridges hand every frame to its (empty) iptables hooks
  // (net.bridge.bridge-nf-call-*, 1 by default), which no switch between
  // real hosts does. Best effort: without br_netfilter there is nothing to turn off.
  run_process({"ip", "netns", "exec", sw, "sh", "-c",
               "for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ ! -e \"$f\" ] || echo 0 >\"$f\"; done"});
  int index = 0;
  for (const auto& node : m_plan.inventory.nodes) {
    auto ns = namespace_of(node.name);
    if (!ip({"netns", "add", ns}, error)) return false;
    m_namespaces.push_back(ns);
    auto port = fmt::format("p{}", index++);
    auto prefix = node.ipv6 ? "/64" : "/24";
    if (!ip({"-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns}, error) ||
        !ip({"-n", sw, "link", "set", port, "master", "br0", "up"}, error) ||
        !ip({"-n", ns, "addr", "add", node.address + prefix, "dev", "eth0"}, error) ||
        !ip({"-n", ns, "link", "set", "eth0", "up"}, error) || !ip({"-n", ns, "link", "set", "lo", "up"}, error)) {
      return false;
    }
    if (node.has(Role::loadbalancer) && m_plan.inventory.loadbalancer) {
      const auto& lb = *m_plan.inventory.loadbalancer;
      if (!ip({"-n", ns, "addr", "add", lb.vip + (lb.ipv6 ? "/64" : "/24"), "dev", "eth0"}, error)) return false;
    }
  }
  return true;
}

bool
NetnsCluster::run_in(const std::string& node, const std::vector<std::string>& argv, std::string& output,
                     const std::string& input)
{
  std::vector<std::string> full{"ip", "netns", "exec", namespace_of(node)};
  full.insert(full.end(), argv.begin(), argv.end());
  auto result = run_process(full, input);
  output = result.output;
  return result.status == 0;
}

pid_t
NetnsCluster::spawn_in(const std::string& node, const std::vector<std::string>& argv, const std::string& log_path)
{
  std::vector<std::string> full{"ip", "netns", "exec", namespace_of(node)};
  full.insert(full.end(), argv.begin(), argv.end());
  auto pid = spawn_process(full, log_path);
  if (pid > 0) m_children.push_back(pid);
  return pid;
}

bool
NetnsCluster::run_inside(const std::string& node, const std::function<void()>& body, std::string& error)
{
  Fd own(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  auto path = "/run/netns/" + namespace_of(node);
  Fd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!own.valid() || !target.valid() || ::setns(target.get(), CLONE_NEWNET) != 0) {
    error = fmt::format("cannot enter {}: {}", path, std::strerror(errno));
    return false;
  }
  body();
  if (::setns(own.get(), CLONE_NEWNET) != 0) {
    error = fmt::format("cannot return from {} to this process's network namespace: {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

void
NetnsCluster::teardown()
{
  for (auto pid : m_children) stop_process(pid);
  m_children.clear();
  for (auto it = m_namespaces.rbegin(); it != m_namespaces.rend(); ++it) run_process({"ip", "netns", "delete", *it});
  m_namespaces.clear();
}

} // namespace portmatrix
