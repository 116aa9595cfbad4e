// Which active requirements a plan gives no flow the check can send, decided
// from the roles the inventory has (not from the flows, which leave out pairs
// an earlier requirement covers: those are tested). A requirement whose
// destination role no node has, or whose source is a cluster role no node
// has, does not apply to this cluster and is not listed; one from outside
// (client, admin, cloud_lb) without a node to send from is untested.
#include "plan/untested.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "model/provable.hpp"

namespace portmatrix {

std::string_view
to_string(UntestedCause cause)
{
  switch (cause) {
  case UntestedCause::no_client_node: return "no-client-node";
  case UntestedCause::no_admin_node: return "no-admin-node";
  case UntestedCause::no_cloud_lb_node: return "no-cloud-lb-node";
  case UntestedCause::no_loadbalancer: return "no-loadbalancer";
  case UntestedCause::not_probed: return "not-probed";
  }
  return "?";
}

namespace {

constexpr std::size_t k_causes = std::size_t(UntestedCause::not_probed) + 1;

bool
has_role(const Inventory& inventory, Role role)
{
  if (role == Role::any) role = Role::client; // flows from anywhere are sent from the client nodes
  for (const auto& node : inventory.nodes) {
    if (node.has(role)) return true;
  }
  return false;
}

std::string
plural(std::size_t n, std::string_view word)
{
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

std::string
message(UntestedCause cause, const std::vector<UntestedRequirement>& requirements, const Inventory& inventory)
{
  std::size_t denies = 0;
  for (const auto& item : requirements) denies += item.requirement->expect == Expect::deny;
  auto what = plural(requirements.size(), "requirement");
  if (denies == requirements.size()) what = plural(denies, "expect-deny requirement");
  else if (denies > 0) what += fmt::format(" ({} expect-deny)", denies);
  switch (cause) {
  case UntestedCause::no_client_node:
    return fmt::format("no client node: {} untested; add a host outside the cluster (the admin workstation) with role "
                       "client",
                       what);
  case UntestedCause::no_admin_node:
    return fmt::format("no admin node: {} from the admin networks untested; add a workstation in admin_cidrs with role "
                       "admin{}",
                       what,
                       inventory.admin_cidrs.empty() ? " (admin_cidrs is empty: the firewalls admit them from no network)"
                                                     : "");
  case UntestedCause::no_cloud_lb_node:
    return fmt::format("no cloud_lb node: {} from the cloud load balancer untested; add a host in cloud_lb_cidrs with "
                       "role cloud_lb{}",
                       what,
                       inventory.cloud_lb_cidrs.empty()
                         ? " (cloud_lb_cidrs is empty: set the provider's health-check ranges, or the firewalls admit "
                           "them from nowhere)"
                         : "");
  case UntestedCause::no_loadbalancer:
    return fmt::format("no loadbalancer section: {} to the VIP untested; add `loadbalancer: {{vip: ...}}` and the "
                       "load-balancer nodes",
                       what);
  case UntestedCause::not_probed: {
    // The protocols without ports these requirements name, each once.
    std::vector<Protocol> protocols;
    for (const auto& item : requirements) {
      if (std::ranges::find(protocols, item.requirement->protocol) == protocols.end()) {
        protocols.push_back(item.requirement->protocol);
      }
    }
    std::string names;
    bool vrrp = false;
    for (auto protocol : protocols) {
      names += fmt::format("{}{} (IP protocol {})", names.empty() ? "" : ", ", to_string(protocol),
                           ip_protocol_number(protocol));
      vrrp = vrrp || protocol == Protocol::vrrp;
    }
    return fmt::format("not probed: check has no probe for {}: {} untested{}", names, what,
                       vrrp ? "; keepalived's state on the load balancers shows whether advertisements arrive" : "");
  }
  }
  return what;
}

} // namespace

std::vector<Untested>
untested_requirements(const Plan& plan)
{
  const auto& inventory = plan.inventory;
  std::array<std::vector<UntestedRequirement>, k_causes> by_cause;
  for (const auto& group : plan.flow_groups()) {
    const auto& r = *group.requirement;
    std::optional<UntestedCause> cause;
    if (r.to == Role::vip && !inventory.loadbalancer) {
      cause = UntestedCause::no_loadbalancer;
    } else if (r.to != Role::vip && !has_role(inventory, r.to)) {
      continue; // no such destination here: the requirement does not apply
    } else if (!has_role(inventory, r.from)) {
      switch (r.from) {
      case Role::any:
      case Role::client: cause = UntestedCause::no_client_node; break;
      case Role::admin: cause = UntestedCause::no_admin_node; break;
      case Role::cloud_lb: cause = UntestedCause::no_cloud_lb_node; break;
      case Role::master:
      case Role::worker:
      case Role::mongodb:
      case Role::elasticsearch:
      case Role::loadbalancer:
      case Role::vip: break; // a cluster role this cluster does not have
      }
    } else if (!has_probe(r.protocol) && group.flows > 0) {
      cause = UntestedCause::not_probed;
    }
    if (!cause) continue;
    by_cause[std::size_t(*cause)].push_back(
      {&r, fmt::format("{} → {} {}/{} ({})", to_string(r.from), to_string(r.to),
                       !has_ports(r.protocol) ? std::string("-") : to_string(group.range), to_string(r.protocol),
                       r.port)});
  }
  std::vector<Untested> out;
  for (std::size_t i = 0; i < k_causes; ++i) {
    if (by_cause[i].empty()) continue;
    auto cause = UntestedCause(i);
    out.push_back({cause, message(cause, by_cause[i], inventory), std::move(by_cause[i])});
  }
  return out;
}

std::size_t
untested_count(const std::vector<Untested>& untested)
{
  std::size_t n = 0;
  for (const auto& entry : untested) n += entry.requirements.size();
  return n;
}

} // namespace portmatrix
