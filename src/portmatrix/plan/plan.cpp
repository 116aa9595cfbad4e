// Expansion of requirements over an inventory. Per-node ingress depends only
// on the node's roles, so it is computed per role and never walks the other
// nodes: the rules a node gets do not grow with the cluster, only the
// address sets do.
#include "plan/plan.hpp"

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

namespace portmatrix {

bool
Matrix::active(const Requirement& requirement) const
{
  return std::all_of(requirement.when.begin(), requirement.when.end(), [&](const Condition& when) {
    auto it = options.find(when.option);
    return it != options.end() && it->second == when.value;
  });
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
    std::string value = inventory ? option_value(*inventory, option) : option.default_value;
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

std::vector<std::size_t>
ruleset_group_of(const Inventory& inventory)
{
  std::vector<std::size_t> group_of;
  group_of.reserve(inventory.nodes.size());
  std::map<std::vector<Role>, std::size_t> index; // sorted roles -> group
  for (const auto& node : inventory.nodes) {
    auto roles = node.roles;
    std::sort(roles.begin(), roles.end());
    roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
    auto [at, added] = index.try_emplace(std::move(roles), index.size());
    group_of.push_back(at->second);
  }
  return group_of;
}

std::vector<std::vector<const Node*>>
ruleset_groups(const Inventory& inventory)
{
  std::vector<std::vector<const Node*>> groups;
  auto group_of = ruleset_group_of(inventory);
  for (std::size_t i = 0; i < group_of.size(); ++i) {
    if (group_of[i] == groups.size()) groups.emplace_back();
    groups[group_of[i]].push_back(&inventory.nodes[i]);
  }
  return groups;
}

Plan
make_plan(Profile profile, Inventory inventory)
{
  Plan plan;
  plan.matrix = resolve(std::move(profile), &inventory);
  // Entries are validated by load_inventory, so each parses; they are split
  // by the family they parse as, then merged into exact covers.
  auto add = [](SourceSet& set, std::string_view text) {
    if (auto range = parse_address_range(text)) (range->family == AddressFamily::v6 ? set.v6 : set.v4).push_back(*range);
  };
  // The admin role's set is admin_sources (the firewalls' "admin" set).
  auto sources = [&](Role role) -> SourceSet& { return role == Role::admin ? plan.admin_sources : plan.role_sources[role]; };
  for (auto role : node_roles()) sources(role);
  for (const auto& node : inventory.nodes) {
    for (auto role : node.roles) add(sources(role), node.address);
  }
  for (const auto& cidr : inventory.client_cidrs) add(plan.role_sources[Role::client], cidr);
  for (const auto& cidr : inventory.cloud_lb_cidrs) add(plan.role_sources[Role::cloud_lb], cidr);
  for (const auto& cidr : inventory.admin_cidrs) add(plan.admin_sources, cidr);
  auto merge = [](SourceSet& set) {
    set.v4 = merge_address_ranges(std::move(set.v4));
    set.v6 = merge_address_ranges(std::move(set.v6));
  };
  merge(plan.admin_sources);
  for (auto& [role, set] : plan.role_sources) merge(set);
  plan.inventory = std::move(inventory);
  return plan;
}

namespace {

// The expansion of the active requirements over the inventory, kept O(nodes):
// nodes are grouped into classes by their set of roles (a bitmask; `any` is
// carried by client nodes, which stand for the outside), and for each
// requirement a table says which (source class, destination class) pairs an
// earlier requirement with the same protocol, range and kind of target
// already gave. Whether a pair is a duplicate depends on the roles only, so
// this is exactly the old "set of (from, to, protocol, range) seen".
class Expansion
{
public:
  struct Step
  {
    const Requirement* requirement = nullptr;
    PortRange range;
    bool vip = false;
    // classes x classes (a node target) or classes (the VIP): already given.
    std::vector<bool> covered;
  };

  explicit Expansion(const Plan& plan);

  std::size_t classes() const { return m_masks.size(); }
  bool in_role(std::size_t klass, Role role) const { return (m_masks[klass] & bit(role)) != 0; }
  std::size_t class_of(std::size_t node) const { return m_node_class[node]; }
  std::size_t class_size(std::size_t klass) const { return m_class_size[klass]; }
  const std::vector<std::size_t>& nodes(Role role) const { return m_by_role[std::size_t(role)]; }
  const std::vector<Step>& steps() const { return m_steps; }
  bool covered(const Step& step, std::size_t from_class, std::size_t to_class) const
  {
    return step.vip ? step.covered[from_class] : step.covered[from_class * classes() + to_class];
  }

private:
  static std::uint32_t bit(Role role) { return std::uint32_t(1) << std::size_t(role); }

  std::vector<std::vector<std::size_t>> m_by_role;
  std::vector<std::uint32_t> m_masks; // per class
  std::vector<std::size_t> m_class_size;
  std::vector<std::size_t> m_node_class;
  std::vector<Step> m_steps; // active requirements, in order
};

Expansion::Expansion(const Plan& plan)
{
  const auto& inventory = plan.inventory;
  const auto& matrix = plan.matrix;
  m_by_role.resize(std::size_t(Role::vip) + 1);
  std::map<std::uint32_t, std::size_t> class_of_mask;
  for (std::size_t i = 0; i < inventory.nodes.size(); ++i) {
    std::uint32_t mask = 0;
    for (auto role : inventory.nodes[i].roles) {
      m_by_role[std::size_t(role)].push_back(i);
      mask |= bit(role);
    }
    if (mask & bit(Role::client)) mask |= bit(Role::any);
    auto [it, fresh] = class_of_mask.emplace(mask, m_masks.size());
    if (fresh) {
      m_masks.push_back(mask);
      m_class_size.push_back(0);
    }
    ++m_class_size[it->second];
    m_node_class.push_back(it->second);
  }
  m_by_role[std::size_t(Role::any)] = m_by_role[std::size_t(Role::client)];

  const std::size_t n = classes();
  for (const auto& requirement : matrix.profile.requirements) {
    if (!matrix.active(requirement)) continue;
    Step step;
    step.requirement = &requirement;
    step.vip = requirement.to == Role::vip;
    step.range = step.vip ? matrix.vip_range(requirement, &inventory) : requirement.range;
    step.covered.assign(step.vip ? n : n * n, false);
    for (const auto& earlier : m_steps) {
      const auto& r = *earlier.requirement;
      if (earlier.vip != step.vip || r.protocol != requirement.protocol || earlier.range != step.range) continue;
      for (std::size_t a = 0; a < n; ++a) {
        if (!in_role(a, r.from)) continue;
        if (step.vip) {
          step.covered[a] = true;
          continue;
        }
        for (std::size_t b = 0; b < n; ++b) {
          if (in_role(b, r.to)) step.covered[a * n + b] = true;
        }
      }
    }
    m_steps.push_back(std::move(step));
  }
}

} // namespace

void
Plan::for_each_flow(const std::function<void(const Flow&)>& visit) const
{
  Expansion expansion(*this);
  Flow flow;
  for (const auto& step : expansion.steps()) {
    const auto& requirement = *step.requirement;
    if (step.vip && !inventory.loadbalancer) continue;
    flow.protocol = requirement.protocol;
    flow.port = requirement.port;
    flow.purpose = requirement.purpose;
    flow.expect = requirement.expect;
    flow.from_role = requirement.from;
    flow.to_role = requirement.to;
    flow.range = step.range;
    for (auto from : expansion.nodes(requirement.from)) {
      flow.from = from;
      const auto from_class = expansion.class_of(from);
      if (step.vip) {
        flow.to.reset();
        if (!expansion.covered(step, from_class, 0)) visit(flow);
        continue;
      }
      for (auto to : expansion.nodes(requirement.to)) {
        if (to == from || expansion.covered(step, from_class, expansion.class_of(to))) continue;
        flow.to = to;
        visit(flow);
      }
    }
  }
}

std::vector<Flow>
Plan::flows() const
{
  std::vector<Flow> flows;
  for_each_flow([&](const Flow& flow) { flows.push_back(flow); });
  return flows;
}

std::vector<FlowGroup>
Plan::flow_groups() const
{
  Expansion expansion(*this);
  const std::size_t n = expansion.classes();
  std::vector<FlowGroup> groups;
  for (const auto& step : expansion.steps()) {
    const auto& requirement = *step.requirement;
    FlowGroup group;
    group.requirement = &requirement;
    group.range = step.range;
    group.vip = step.vip;
    // Which classes send (receive) at least one pair, and how many pairs:
    // counted per pair of classes, never per pair of nodes.
    std::vector<bool> sends(n, false);
    std::vector<bool> receives(n, false);
    for (std::size_t a = 0; a < n; ++a) {
      if (!expansion.in_role(a, requirement.from)) continue;
      if (step.vip) {
        if (inventory.loadbalancer && !expansion.covered(step, a, 0)) {
          sends[a] = true;
          group.flows += expansion.class_size(a);
        }
        continue;
      }
      for (std::size_t b = 0; b < n; ++b) {
        if (!expansion.in_role(b, requirement.to) || expansion.covered(step, a, b)) continue;
        auto pairs = expansion.class_size(a) * expansion.class_size(b);
        if (a == b) pairs -= expansion.class_size(a); // never to itself
        if (pairs == 0) continue;
        sends[a] = receives[b] = true;
        group.flows += pairs;
      }
    }
    for (auto node : expansion.nodes(requirement.from)) {
      if (sends[expansion.class_of(node)]) group.from.push_back(node);
    }
    if (!step.vip) {
      for (auto node : expansion.nodes(requirement.to)) {
        if (receives[expansion.class_of(node)]) group.to.push_back(node);
      }
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

namespace {

// Rules by (source role, protocol): ports merged, named ports in first-seen order.
class RuleGrouping
{
public:
  void add(const Requirement& requirement, const PortRange& range)
  {
    auto& rule = m_grouped[{requirement.from, requirement.protocol}];
    rule.source = requirement.from;
    rule.protocol = requirement.protocol;
    rule.ports.push_back(range);
    if (std::find(rule.names.begin(), rule.names.end(), requirement.port) == rule.names.end()) {
      rule.names.push_back(requirement.port);
    }
  }

  std::vector<IngressRule> take()
  {
    std::vector<IngressRule> rules;
    for (auto& [key, rule] : m_grouped) {
      rule.ports = merge_ranges(std::move(rule.ports));
      rules.push_back(std::move(rule));
    }
    m_grouped.clear();
    return rules;
  }

private:
  std::map<std::pair<Role, Protocol>, IngressRule> m_grouped;
};

} // namespace

std::vector<IngressRule>
Plan::ingress(const Node& node, VipPorts vip) const
{
  RuleGrouping grouped;
  bool serves_vip = vip == VipPorts::include && inventory.loadbalancer && node.has(Role::loadbalancer);
  for (const auto& requirement : matrix.profile.requirements) {
    if (requirement.expect != Expect::allow || !matrix.active(requirement)) continue;
    if (requirement.to == Role::vip && serves_vip) {
      grouped.add(requirement, matrix.vip_range(requirement, &inventory));
    } else if (requirement.to != Role::vip && node.has(requirement.to)) {
      grouped.add(requirement, requirement.range);
    }
  }
  return grouped.take();
}

std::vector<IngressRule>
Plan::denied(const Node& node) const
{
  RuleGrouping grouped;
  for (const auto& requirement : matrix.profile.requirements) {
    if (requirement.expect == Expect::deny && matrix.active(requirement) && requirement.to != Role::vip &&
        node.has(requirement.to)) {
      grouped.add(requirement, requirement.range);
    }
  }
  return grouped.take();
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
