// keepalived generator. VRRP runs unicast between the load-balancer nodes
// (works where multicast does not, and matches the firewall's vrrp rule from
// load-balancer peers). The first load-balancer node of the inventory starts
// as MASTER with the highest priority; the check script lowers a node's
// priority when the API is not reachable through it.
#include <fmt/format.h>

#include "lb/lb.hpp"

namespace portmatrix {
namespace {

// FNV-1a: a VRRP id that is stable for a cluster name across builds and hosts.
int
router_id_for(std::string_view cluster)
{
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : cluster) hash = (hash ^ c) * 16777619u;
  return int(hash % 255) + 1;
}

} // namespace

Expected<std::string, std::string>
generate_keepalived(const Plan& plan, const Node& node)
{
  const auto& inventory = plan.inventory;
  if (!inventory.loadbalancer) return unexpected(std::string("the inventory has no loadbalancer: {vip: ...}"));
  if (!node.has(Role::loadbalancer)) {
    return unexpected(fmt::format("node {} does not have the loadbalancer role", node.name));
  }
  std::vector<const Node*> peers;
  int position = 0;
  for (const auto& other : inventory.nodes) {
    if (!other.has(Role::loadbalancer)) continue;
    if (&other == &node) position = int(peers.size());
    peers.push_back(&other);
  }
  const auto& lb = *inventory.loadbalancer;
  // One VRRP instance speaks one address family: its peers and its VIP
  // (keepalived refuses the file otherwise).
  for (const auto* peer : peers) {
    if (peer->ipv6 != node.ipv6) {
      return unexpected(fmt::format("load balancers {} ({}) and {} ({}) are of different address families: one "
                                    "VRRP instance cannot join them; give them addresses of one family",
                                    node.name, node.address, peer->name, peer->address));
    }
  }
  if (lb.ipv6 != node.ipv6) {
    return unexpected(fmt::format("the VIP {} and load balancer {} ({}) are of different address families: "
                                  "keepalived cannot hold the VIP there",
                                  lb.vip, node.name, node.address));
  }
  int router_id = lb.router_id ? lb.router_id : router_id_for(inventory.cluster);
  auto interface = node.interface.empty() ? lb.interface : node.interface;
  PortRange api{6443, 6443};
  for (const auto& frontend : plan.matrix.profile.frontends) {
    if (frontend.health != HealthCheck::apiserver) continue;
    for (const auto& requirement : plan.matrix.profile.requirements) {
      if (requirement.to == Role::vip && requirement.port == frontend.port) {
        api = plan.matrix.vip_range(requirement, &inventory);
      }
    }
  }
  std::string out = fmt::format("# portmatrix: keepalived.conf for load-balancer node {} of cluster {} (VIP {}).\n",
                                node.name,
                                inventory.cluster,
                                lb.vip);
  out += "# Generated: edit the inventory, not this file. Check with: keepalived --config-test -f FILE\n\n";
  out += fmt::format("global_defs {{\n    router_id {}\n    enable_script_security\n    script_user root\n}}\n\n",
                     node.name);
  out += fmt::format("vrrp_script check_apiserver {{\n"
                     "    script \"/usr/bin/curl --silent --fail --insecure --max-time 2 --output /dev/null "
                     "https://{}:{}/healthz\"\n"
                     "    interval 3\n"
                     "    timeout 3\n"
                     "    fall 3\n"
                     "    rise 2\n"
                     "    weight -20\n"
                     "}}\n\n",
                     node.ipv6 ? "[::1]" : "127.0.0.1",
                     api.min);
  out += fmt::format("vrrp_instance portmatrix_{} {{\n", router_id);
  out += fmt::format("    state {}\n", position == 0 ? "MASTER" : "BACKUP");
  out += fmt::format("    interface {}\n", interface);
  out += fmt::format("    virtual_router_id {}\n", router_id);
  out += fmt::format("    priority {}\n", 150 - 10 * std::min(position, 10));
  out += "    advert_int 1\n";
  if (peers.size() > 1) {
    out += fmt::format("    unicast_src_ip {}\n    unicast_peer {{\n", node.address);
    for (const auto* peer : peers) {
      if (peer != &node) out += fmt::format("        {}\n", peer->address);
    }
    out += "    }\n";
  }
  out += fmt::format("    virtual_ipaddress {{\n        {}\n    }}\n", lb.vip);
  out += "    track_script {\n        check_apiserver\n    }\n}\n";
  return out;
}

} // namespace portmatrix
