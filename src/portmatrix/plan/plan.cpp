// Expansion of requirements over an inventory. Per-node ingress depends only
// on the node's roles, so it is computed per role and never walks the other
// nodes: the rules a node gets do not grow with the cluster, only the
// address sets do.
#include "plan/plan.hpp"

#include <algorithm>
#include <set>
#include <tuple>

#include <fmt/format.h>

namespace portmatrix {

bool
Matrix::active(const Requirement& requirement) const
{
  if (!requirement.when) return true;
  auto it = options.find(requirement.when->option);
  return it != options.end() && it->second == requirement.when->value;
}

PortRange
Matrix::vip_range(const Requirement& requirement, const Inventory* inventory) const
{
  if (inventory && inventory->loadbalancer && inventory->loadbalancer->port) {
    for (const auto& frontend : profile.frontends) {
      if (frontend.health == HealthCheck::apiserver && frontend.port == requirement.port) {
        auto port = *inventory->loadbalancer->port;
        return {port, port};
      }
    }
  }
  return requirement.range;
}

Matrix
resolve(Profile profile, const Inventory* inventory)
{
  Matrix matrix;
  std::map<std::string, PortRange> moved;
  for (const auto& option : profile.options) {
    std::string value = option.default_value;
    if (inventory) {
      if (auto it = inventory->options.find(option.name); it != inventory->options.end()) value = it->second.value;
    }
    matrix.options[option.name] = value;
    if (!option.sets_port.empty()) {
      if (auto parsed = parse_port_range(value); parsed.range) moved[option.sets_port] = *parsed.range;
    }
  }
  if (inventory) {
    for (const auto& [name, range] : inventory->port_overrides) moved[name] = range.value;
  }
  for (auto& port : profile.ports) {
    if (auto it = moved.find(port.name); it != moved.end()) port.range = it->second;
  }
  for (auto& requirement : profile.requirements) {
    if (auto it = moved.find(requirement.port); it != moved.end()) requirement.range = it->second;
  }
  matrix.profile = std::move(profile);
  return matrix;
}

std::vector<PortRange>
merge_ranges(std::vector<PortRange> ranges)
{
  std::sort(ranges.begin(), ranges.end());
  std::vector<PortRange> merged;
  for (const auto& range : ranges) {
    if (!merged.empty() && std::uint32_t(range.min) <= std::uint32_t(merged.back().max) + 1) {
      merged.back().max = std::max(merged.back().max, range.max);
    } else {
      merged.push_back(range);
    }
  }
  return merged;
}

Plan
make_plan(Profile profile, Inventory inventory)
{
  Plan plan;
  plan.matrix = resolve(std::move(profile), &inventory);
  for (auto role : node_roles()) plan.role_sources[role];
  for (const auto& node : inventory.nodes) {
    for (auto role : node.roles) {
      auto& set = plan.role_sources[role];
      (node.ipv6 ? set.v6 : set.v4).push_back(node.address);
    }
  }
  for (const auto& cidr : inventory.client_cidrs) {
    bool ipv6 = false;
    parse_cidr(cidr, ipv6);
    auto& set = plan.role_sources[Role::client];
    (ipv6 ? set.v6 : set.v4).push_back(cidr);
  }
  for (const auto& cidr : inventory.admin_cidrs) {
    bool ipv6 = false;
    parse_cidr(cidr, ipv6);
    (ipv6 ? plan.admin_sources.v6 : plan.admin_sources.v4).push_back(cidr);
  }
  plan.inventory = std::move(inventory);
  return plan;
}

std::vector<Flow>
Plan::flows() const
{
  std::vector<std::vector<std::size_t>> by_role(std::size_t(Role::vip) + 1);
  for (std::size_t i = 0; i < inventory.nodes.size(); ++i) {
    for (auto role : inventory.nodes[i].roles) by_role[std::size_t(role)].push_back(i);
  }
  // `any` is "from anywhere": the client nodes of the inventory stand for the outside.
  by_role[std::size_t(Role::any)] = by_role[std::size_t(Role::client)];

  std::vector<Flow> flows;
  std::set<std::tuple<std::size_t, std::size_t, Protocol, PortRange>> seen;
  const std::size_t vip_index = inventory.nodes.size();
  for (const auto& requirement : matrix.profile.requirements) {
    if (!matrix.active(requirement)) continue;
    Flow flow;
    flow.protocol = requirement.protocol;
    flow.port = requirement.port;
    flow.purpose = requirement.purpose;
    flow.expect = requirement.expect;
    flow.from_role = requirement.from;
    flow.to_role = requirement.to;
    for (auto from : by_role[std::size_t(requirement.from)]) {
      flow.from = from;
      if (requirement.to == Role::vip) {
        if (!inventory.loadbalancer) continue;
        flow.to.reset();
        flow.range = matrix.vip_range(requirement, &inventory);
        if (seen.emplace(from, vip_index, flow.protocol, flow.range).second) flows.push_back(flow);
        continue;
      }
      flow.range = requirement.range;
      for (auto to : by_role[std::size_t(requirement.to)]) {
        if (to == from) continue;
        flow.to = to;
        if (seen.emplace(from, to, flow.protocol, flow.range).second) flows.push_back(flow);
      }
    }
  }
  return flows;
}

std::vector<IngressRule>
Plan::ingress(const Node& node, VipPorts vip) const
{
  std::map<std::pair<Role, Protocol>, IngressRule> grouped;
  bool serves_vip = vip == VipPorts::include && inventory.loadbalancer && node.has(Role::loadbalancer);
  for (const auto& requirement : matrix.profile.requirements) {
    if (requirement.expect != Expect::allow || !matrix.active(requirement)) continue;
    PortRange range;
    if (requirement.to == Role::vip && serves_vip) {
      range = matrix.vip_range(requirement, &inventory);
    } else if (requirement.to != Role::vip && node.has(requirement.to)) {
      range = requirement.range;
    } else {
      continue;
    }
    auto& rule = grouped[{requirement.from, requirement.protocol}];
    rule.source = requirement.from;
    rule.protocol = requirement.protocol;
    rule.ports.push_back(range);
    if (std::find(rule.names.begin(), rule.names.end(), requirement.port) == rule.names.end()) {
      rule.names.push_back(requirement.port);
    }
  }
  std::vector<IngressRule> rules;
  for (auto& [key, rule] : grouped) {
    rule.ports = merge_ranges(std::move(rule.ports));
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::string
Plan::describe_roles(const Node& node) const
{
  std::string text;
  for (auto role : node.roles) text += fmt::format("{}{}", text.empty() ? "" : ", ", to_string(role));
  return text;
}

std::string
Plan::flow_target(const Flow& flow) const
{
  return flow.to ? inventory.nodes[*flow.to].name : "vip";
}

std::string
Plan::flow_address(const Flow& flow) const
{
  if (flow.to) return inventory.nodes[*flow.to].address;
  return inventory.loadbalancer ? inventory.loadbalancer->vip : "";
}

} // namespace portmatrix
