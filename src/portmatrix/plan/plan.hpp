// Profile x inventory -> what each node must receive and which concrete flows
// exist. Pure: no I/O, no syscalls; everything downstream (firewall, lb,
// reports, check) reads a Plan.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/inventory.hpp"
#include "model/profile.hpp"
#include "plan/address_set.hpp"

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

// One active requirement of the plan, expanded over the inventory as a group:
// which nodes send, which receive (or the VIP), and how many node pairs it
// stands for once self-pairs and pairs an earlier requirement already gave
// are left out. The groups' `flows` add up to the number of flows().
struct FlowGroup
{
  const Requirement* requirement = nullptr; // into Plan::matrix.profile.requirements
  PortRange range;                          // the flows' range (the VIP port's for `vip`)
  std::vector<std::size_t> from;            // nodes with at least one flow of the group, in inventory order
  std::vector<std::size_t> to;              // likewise; empty when the target is the VIP
  bool vip = false;                         // the target is the VIP
  std::size_t flows = 0;                    // node pairs (source -> VIP for `vip`)
};

// Sources a firewall admits, by family: one per role (admin's is
// Plan::admin_sources, which SSH uses too). Each is an
// exact cover (merge_address_ranges) of the nodes' addresses and CIDRs:
// sorted, duplicates and overlaps merged, consecutive addresses one range.
struct SourceSet
{
  std::vector<AddressRange> v4;
  std::vector<AddressRange> v6;
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
  SourceSet admin_sources;                // admin_cidrs and the admin nodes (role `admin`'s set)

  // All flows of active requirements, deduplicated, in requirement order.
  // O(flows) memory: for_each_flow when the inventory is large.
  std::vector<Flow> flows() const;
  // Calls `visit` with each flow of flows(), in the same order, one at a
  // time (the reference is valid during the call only); memory O(nodes). A
  // pair of a requirement is left out when an earlier active requirement with
  // the same protocol, range and kind of target (node or VIP) covers the
  // source's and the destination's roles.
  void for_each_flow(const std::function<void(const Flow&)>& visit) const;
  // One group per active requirement, in requirement order; O(nodes) time
  // and memory per requirement, whatever the number of pairs.
  std::vector<FlowGroup> flow_groups() const;
  // What `node` must accept inbound, grouped by (source role, protocol).
  // VipPorts::exclude leaves out what a load-balancer node receives for the
  // VIP: those ports belong to the load balancer software, not to the node.
  enum class VipPorts { include, exclude };
  std::vector<IngressRule> ingress(const Node& node, VipPorts vip = VipPorts::include) const;
  // What active expect-deny requirements say `node` must not accept, grouped
  // like ingress(). The agent listens there too: a probe that then gets no
  // answer was stopped by a firewall, which is what a deny's pass rests on.
  std::vector<IngressRule> denied(const Node& node) const;
  // The node's roles, comma separated, for headers and tables.
  std::string describe_roles(const Node& node) const;
  std::string flow_target(const Flow& flow) const; // node name or "vip"
  std::string flow_address(const Flow& flow) const;
};

Plan make_plan(Profile profile, Inventory inventory);

// The inventory's nodes grouped by the set of their roles, which is all their
// ruleset depends on (Plan::ingress): groups in order of their first node,
// each in inventory order. `firewall --all` renders a group once and links it
// to every name; check --coverage sample probes every port between one pair
// of nodes per pair of groups (plan/coverage.hpp).
std::vector<std::vector<const Node*>> ruleset_groups(const Inventory& inventory);
// The same grouping as an index: the group of each node, in inventory order.
std::vector<std::size_t> ruleset_group_of(const Inventory& inventory);

// Sorts and merges overlapping or adjacent ranges.
std::vector<PortRange> merge_ranges(std::vector<PortRange> ranges);

} // namespace portmatrix
