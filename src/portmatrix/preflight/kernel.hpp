// Kernel prerequisites of the cluster network on this node: modules
// (br_netfilter; vxlan or wireguard for Flannel's backend), sysctls
// (ip_forward, bridge-nf-call-iptables), swap, and the MTU left for pods
// after the overlay's encapsulation. Everything is read under a root
// directory ("/" on a node; a fixture tree in tests).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace portmatrix {

enum class CheckStatus { pass, fail, warn, info, skip };
std::string_view to_string(CheckStatus status);

struct KernelCheck
{
  std::string name;   // "module br_netfilter", "net.ipv4.ip_forward", "swap", "mtu"
  CheckStatus status = CheckStatus::pass;
  std::string detail;
};

struct KernelContext
{
  std::filesystem::path root = "/";
  std::string flannel_backend = "vxlan"; // vxlan, wireguard, host-gw
  std::string interface;                 // holding the node's address; empty: not on this host
};

// The smallest interface MTU the overlay accepts: the IPv6 minimum (1280)
// left for pods after encapsulation.
inline constexpr int k_min_pod_mtu = 1280;

std::vector<KernelCheck> check_kernel(const KernelContext& context);

// Bytes Flannel's backend adds to each packet (vxlan 50, wireguard 80, host-gw 0).
int overlay_overhead(const std::string& flannel_backend);

} // namespace portmatrix
