// Load-balancer configuration for the HA control plane: HAProxy in front of
// the masters (and the Apinizer NodePorts on the workers), keepalived moving
// the VIP between load-balancer nodes.
#pragma once

#include <string>

#include "plan/plan.hpp"
#include "util/expected.hpp"

namespace portmatrix {

// haproxy.cfg: one TCP frontend per profile frontend, backends health-checked
// like the kubeadm HA guide (GET /healthz over TLS for the API server, a TCP
// connect for the others). Fails when the inventory has no loadbalancer.vip.
Expected<std::string, std::string> generate_haproxy(const Plan& plan);

// keepalived.conf for one load-balancer node: a VRRP instance holding the VIP
// (unicast to the other load-balancer nodes), priority by the node's position
// among them, and a script that checks the API server through this node.
Expected<std::string, std::string> generate_keepalived(const Plan& plan, const Node& node);

} // namespace portmatrix
