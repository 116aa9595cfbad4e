// Requirements a plan cannot exercise, and why: the inventory has no node to
// send their flows from (no client, admin or cloud_lb node), no load balancer
// for VIP flows, or the check has no probe for their protocol (vrrp, esp:
// has_probe). `ports --inventory` and `check` list them, so a clean run never
// hides what it did not test. Pure: reads the plan only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "plan/plan.hpp"

namespace portmatrix {

// Why a group of requirements is untested; one value per cause. Renderers
// print to_string(): the JSON's `code`.
enum class UntestedCause { no_client_node, no_admin_node, no_cloud_lb_node, no_loadbalancer, not_probed };
std::string_view to_string(UntestedCause cause);

struct UntestedRequirement
{
  const Requirement* requirement = nullptr; // into Plan::matrix.profile.requirements
  std::string direction;                    // "client -> master 2379-2380/tcp (etcd)"
};

// One cause and the active requirements it leaves untested, in profile order.
struct Untested
{
  UntestedCause cause = UntestedCause::no_client_node;
  std::string message; // "no client node: 7 expect-deny requirements untested; add ..."
  std::vector<UntestedRequirement> requirements;
};

// Every cause that applies to `plan`, in enum order; empty when every active
// requirement has at least one flow the check sends (or needs none: a role
// the inventory does not have, a pair of one node with itself).
std::vector<Untested> untested_requirements(const Plan& plan);

// Requirements of all entries together.
std::size_t untested_count(const std::vector<Untested>& untested);

} // namespace portmatrix
