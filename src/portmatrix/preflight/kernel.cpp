// Kernel checks read plain files: /proc/modules and /sys/module/NAME (a
// built-in module has the directory but no /proc/modules line),
// /proc/sys/... for sysctls (net.* are per network namespace), /proc/swaps,
// /sys/class/net/IF/mtu.
#include "preflight/kernel.hpp"

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>

namespace portmatrix {
namespace {

namespace fs = std::filesystem;

std::optional<std::string>
read_file(const fs::path& path)
{
  std::ifstream file(path);
  if (!file) return std::nullopt;
  std::stringstream text;
  text << file.rdbuf();
  auto content = text.str();
  while (!content.empty() && (content.back() == '\n' || content.back() == ' ')) content.pop_back();
  return content;
}

fs::path
under(const fs::path& root, std::string_view absolute)
{
  return root / fs::path(absolute).relative_path();
}

bool
module_present(const fs::path& root, const std::string& name)
{
  if (auto modules = read_file(under(root, "/proc/modules"))) {
    std::istringstream lines(*modules);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with(name + " ")) return true;
    }
  }
  std::error_code error;
  return fs::is_directory(under(root, "/sys/module") / name, error);
}

KernelCheck
module_check(const fs::path& root, const std::string& name, const std::string& why)
{
  std::string label = "module " + name;
  if (module_present(root, name)) return {label, CheckStatus::pass, "loaded or built in"};
  return {label, CheckStatus::fail, fmt::format("not loaded ({}); load it: modprobe {}, and list it in /etc/modules-load.d/", why, name)};
}

KernelCheck
sysctl_check(const fs::path& root, const std::string& name, const std::string& missing)
{
  std::string relative = name; // net.ipv4.ip_forward -> /proc/sys/net/ipv4/ip_forward
  std::replace(relative.begin(), relative.end(), '.', '/');
  auto value = read_file(under(root, "/proc/sys") / relative);
  if (!value) return {name, CheckStatus::fail, missing};
  if (*value == "1") return {name, CheckStatus::pass, "1"};
  return {name, CheckStatus::fail, fmt::format("is {}, must be 1 (sysctl -w {}=1, and persist it in /etc/sysctl.d/)", *value, name)};
}

} // namespace

std::string_view
to_string(CheckStatus status)
{
  switch (status) {
  case CheckStatus::pass: return "pass";
  case CheckStatus::fail: return "fail";
  case CheckStatus::warn: return "warn";
  case CheckStatus::info: return "info";
  case CheckStatus::skip: return "skip";
  }
  return "?";
}

int
overlay_overhead(const std::string& flannel_backend)
{
  if (flannel_backend == "wireguard") return 80;
  if (flannel_backend == "host-gw") return 0;
  return 50;
}

std::vector<KernelCheck>
check_kernel(const KernelContext& context)
{
  const auto& root = context.root;
  std::vector<KernelCheck> checks;
  checks.push_back(module_check(root, "br_netfilter", "bridged pod traffic bypasses iptables without it"));
  if (context.flannel_backend == "wireguard") {
    checks.push_back(module_check(root, "wireguard", "Flannel's wireguard backend"));
  } else if (context.flannel_backend == "vxlan") {
    checks.push_back(module_check(root, "vxlan", "Flannel's vxlan backend"));
  } else {
    checks.push_back({"module vxlan", CheckStatus::skip, "flannel_backend is " + context.flannel_backend});
  }
  checks.push_back(sysctl_check(root, "net.ipv4.ip_forward", "cannot read /proc/sys/net/ipv4/ip_forward"));
  checks.push_back(sysctl_check(root, "net.bridge.bridge-nf-call-iptables",
                                "missing: br_netfilter is not loaded (modprobe br_netfilter)"));

  auto swaps = read_file(under(root, "/proc/swaps"));
  if (!swaps) {
    checks.push_back({"swap", CheckStatus::warn, "cannot read /proc/swaps"});
  } else {
    std::istringstream lines(*swaps);
    std::string line, active;
    std::getline(lines, line); // header
    while (std::getline(lines, line)) {
      if (auto end = line.find_first_of(" \t"); end != 0 && !line.empty()) active += (active.empty() ? "" : ", ") + line.substr(0, end);
    }
    if (active.empty()) checks.push_back({"swap", CheckStatus::pass, "off"});
    else checks.push_back({"swap", CheckStatus::fail, "on (" + active + "): the kubelet refuses to start; swapoff -a and remove it from /etc/fstab"});
  }

  if (context.interface.empty()) {
    checks.push_back({"mtu", CheckStatus::skip, "no interface holds the node's address"});
  } else {
    auto text = read_file(under(root, "/sys/class/net") / context.interface / "mtu");
    int mtu = 0;
    if (text) std::istringstream(*text) >> mtu;
    int overhead = overlay_overhead(context.flannel_backend);
    if (mtu <= 0) {
      checks.push_back({"mtu", CheckStatus::warn, "cannot read the MTU of " + context.interface});
    } else if (mtu - overhead < k_min_pod_mtu) {
      checks.push_back({"mtu", CheckStatus::fail, fmt::format("{} MTU {} leaves pods {} after {} bytes of {} (minimum {})", context.interface, mtu,
                                                              mtu - overhead, overhead, context.flannel_backend, k_min_pod_mtu)});
    } else {
      checks.push_back({"mtu", CheckStatus::pass, fmt::format("{} MTU {}: pod MTU {} after {} bytes of {}", context.interface, mtu,
                                                              mtu - overhead, overhead, context.flannel_backend)});
    }
  }
  return checks;
}

} // namespace portmatrix
