// The order `firewall apply --ssh` puts rules on nodes: one canary node
// first, alone, then the rest one ruleset group at a time (nodes with the
// same roles get the same rules, so a group shares its fate). Pure.
#pragma once

#include <string>
#include <vector>

#include "model/inventory.hpp"

namespace portmatrix {

struct Wave
{
  std::string name; // "canary master1", "group master", ...
  std::vector<const Node*> nodes;
};

// `selected` (inventory nodes, any order) as waves: the first selected node
// in inventory order is the canary; the others follow by ruleset group,
// groups in order of their first node, each group's nodes in inventory order.
std::vector<Wave> rollout_waves(const Inventory& inventory, const std::vector<const Node*>& selected);

} // namespace portmatrix
