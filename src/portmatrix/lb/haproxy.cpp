// HAProxy generator. The API frontend's health check follows the kubeadm HA
// guide (docs/ha-considerations): `option httpchk` with `http-check connect
// ssl`, GET /healthz, expect 200, `verify none` (the apiserver's certificate
// is the cluster CA's, which HAProxy does not hold).
#include <fmt/format.h>

#include "lb/lb.hpp"

namespace portmatrix {

namespace {

const Requirement*
frontend_requirement(const Plan& plan, const Frontend& frontend)
{
  for (const auto& requirement : plan.matrix.profile.requirements) {
    if (requirement.to == Role::vip && requirement.port == frontend.port) return &requirement;
  }
  return nullptr;
}

} // namespace

Expected<std::string, std::string>
generate_haproxy(const Plan& plan)
{
  const auto& inventory = plan.inventory;
  if (!inventory.loadbalancer) return unexpected(std::string("the inventory has no loadbalancer: {vip: ...}"));
  std::string out = fmt::format("# portmatrix: haproxy.cfg for cluster {} (VIP {}), profile {} {}.\n",
                                inventory.cluster,
                                inventory.loadbalancer->vip,
                                plan.matrix.profile.name,
                                plan.matrix.profile.version);
  out += "# Generated: edit the inventory or profile, not this file. Check with: haproxy -c -f FILE\n\n";
  out += "global\n"
         "    log /dev/log local0\n\n"
         "defaults\n"
         "    mode tcp\n"
         "    log global\n"
         "    option tcplog\n"
         "    option dontlognull\n"
         "    retries 1\n"
         "    timeout connect 5s\n"
         "    timeout client 300s\n"
         "    timeout server 300s\n"
         "    timeout check 3s\n";
  for (const auto& frontend : plan.matrix.profile.frontends) {
    const auto* port = plan.matrix.profile.find_port(frontend.port);
    const auto* requirement = frontend_requirement(plan, frontend);
    if (!port || (requirement && !plan.matrix.active(*requirement))) continue;
    auto listen = requirement ? plan.matrix.vip_range(*requirement, &inventory) : port->range;
    // An IPv6 VIP needs the dual-stack wildcard; an IPv4 one the IPv4 wildcard.
    out += fmt::format("\nfrontend {}\n    bind {}:{}{}\n    default_backend {}\n",
                       frontend.name,
                       inventory.loadbalancer->ipv6 ? "::" : "",
                       to_string(listen, "-"),
                       inventory.loadbalancer->ipv6 ? " v4v6" : "",
                       frontend.name);
    out += fmt::format("\nbackend {}\n    balance roundrobin\n", frontend.name);
    if (frontend.health == HealthCheck::apiserver) {
      out += "    option httpchk\n"
             "    http-check connect ssl\n"
             "    http-check send meth GET uri /healthz\n"
             "    http-check expect status 200\n"
             "    default-server check check-ssl verify none inter 2s downinter 5s rise 2 fall 3\n";
    } else {
      out += "    default-server check inter 2s downinter 5s rise 2 fall 3\n";
    }
    int backends = 0;
    for (const auto& node : inventory.nodes) {
      if (!node.has(frontend.backend)) continue;
      auto address = node.ipv6 ? fmt::format("[{}]", node.address) : node.address;
      // A single-port frontend maps to the same port on the backend; a range keeps the client's port.
      auto target = port->range.single() ? fmt::format("{}:{}", address, port->range.min) : address;
      out += fmt::format("    server {} {}\n", node.name, target);
      ++backends;
    }
    if (backends == 0) {
      return unexpected(fmt::format("frontend {} has no backend: no node has the role {}",
                                    frontend.name,
                                    to_string(frontend.backend)));
    }
  }
  return out;
}

} // namespace portmatrix
