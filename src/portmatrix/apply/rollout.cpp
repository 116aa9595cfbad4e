// Rollout order for `firewall apply --ssh` (rollout.hpp).
#include "apply/rollout.hpp"

#include <algorithm>
#include <set>

#include "firewall/firewall.hpp"

namespace portmatrix {

std::vector<Wave>
rollout_waves(const Inventory& inventory, const std::vector<const Node*>& selected)
{
  std::set<const Node*> chosen(selected.begin(), selected.end());
  std::vector<Wave> waves;
  const Node* canary = nullptr;
  for (const auto& node : inventory.nodes) {
    if (chosen.count(&node)) {
      canary = &node;
      break;
    }
  }
  if (!canary) return waves;
  waves.push_back({"canary " + canary->name, {canary}});
  for (const auto& group : ruleset_groups(inventory)) {
    Wave wave;
    for (const auto* node : group) {
      if (node != canary && chosen.count(node)) wave.nodes.push_back(node);
    }
    if (wave.nodes.empty()) continue;
    std::string roles;
    for (auto role : group.front()->roles) roles += (roles.empty() ? "" : "+") + std::string(to_string(role));
    wave.name = "group " + roles;
    waves.push_back(std::move(wave));
  }
  return waves;
}

} // namespace portmatrix
