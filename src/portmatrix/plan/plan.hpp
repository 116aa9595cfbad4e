// Profile x inventory -> what each node must receive and which concrete flows
// exist. Pure: no I/O, no syscalls; everything downstream (firewall, lb,
// reports, check) reads a Plan.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/inventory.hpp"
#include "model/profile.hpp"

namespace portmatrix {

// The profile with the inventory's options and port overrides applied.
struct Matrix
{
  Profile profile;                           // ports and requirement ranges moved by overrides
  std::map<std::string, std::string> options; // every option of the profile, effective value

  bool active(const Requirement& requirement) const;
  // The port range that traffic to the VIP uses for this named port.
  PortRange vip_range(const Requirement& requirement, const Inventory* inventory) const;
};

// Applies `inventory`'s options and overrides (defaults when null). The
// inventory must have passed check_against(profile).
Matrix resolve(Profile profile, const Inventory* inventory);

// A requirement expanded over the inventory: one source node, one
// destination node (or the VIP), one protocol, one port range.
struct Flow
{
  std::size_t from = 0;           // index into Inventory::nodes
  std::optional<std::size_t> to;  // index into Inventory::nodes; nullopt: the VIP
  Protocol protocol = Protocol::tcp;
  PortRange range;
  std::string port; // the named port
  std::string purpose;
  Expect expect = Expect::allow;
  Role from_role = Role::any; // the requirement's roles, for grouping by direction
  Role to_role = Role::any;
};

// Sources a firewall admits, by family: one entry per role, plus admin.
struct SourceSet
{
  std::vector<std::string> v4;
  std::vector<std::string> v6;
};

// One accept rule of a node's ingress: traffic of `protocol` to `ports` from
// `source` (Role::any: from anywhere).
struct IngressRule
{
  Role source = Role::any;
  Protocol protocol = Protocol::tcp;
  std::vector<PortRange> ports; // sorted, merged (no overlap, no adjacency)
  std::vector<std::string> names; // named ports, for comments
};

struct Plan
{
  Matrix matrix;
  Inventory inventory;
  std::map<Role, SourceSet> role_sources; // every node role, possibly empty
  SourceSet admin_sources;                // admin_cidrs

  // All flows of active requirements, deduplicated, in requirement order.
  std::vector<Flow> flows() const;
  // What `node` must accept inbound, grouped by (source role, protocol).
  // VipPorts::exclude leaves out what a load-balancer node receives for the
  // VIP: those ports belong to the load balancer software, not to the node.
  enum class VipPorts { include, exclude };
  std::vector<IngressRule> ingress(const Node& node, VipPorts vip = VipPorts::include) const;
  // The node's roles, comma separated, for headers and tables.
  std::string describe_roles(const Node& node) const;
  std::string flow_target(const Flow& flow) const; // node name or "vip"
  std::string flow_address(const Flow& flow) const;
};

Plan make_plan(Profile profile, Inventory inventory);

// Sorts and merges overlapping or adjacent ranges.
std::vector<PortRange> merge_ranges(std::vector<PortRange> ranges);

} // namespace portmatrix
