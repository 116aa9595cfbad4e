// Resolving the egress list. A wildcard stays as written for the allowlist (a
// proxy can match it) and is replaced by its `serves` hosts for the check
// (only a concrete name can be resolved and connected to).
#include "plan/egress.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace portmatrix {

std::vector<EgressHost>
resolve_egress(const Matrix& matrix, const Inventory* inventory)
{
  std::vector<EgressHost> hosts;
  for (const auto& host : matrix.profile.egress) {
    bool needed = std::all_of(host.when.begin(), host.when.end(), [&](const Condition& when) {
      auto it = matrix.options.find(when.option);
      return it != matrix.options.end() && it->second == when.value;
    });
    if (!needed) continue;
    hosts.push_back(host);
  }
  if (!inventory) return hosts;
  auto find = [&](const std::string& name) {
    return std::find_if(hosts.begin(), hosts.end(), [&](const EgressHost& h) { return h.host == name; });
  };
  for (const auto& remove : inventory->egress.remove) {
    if (auto it = find(remove.value); it != hosts.end()) hosts.erase(it);
  }
  for (const auto& replace : inventory->egress.replace) {
    auto it = find(replace.value.host);
    if (it == hosts.end()) continue; // its condition does not hold
    auto original = *it;
    it = hosts.erase(it);
    for (const auto& name : replace.value.with) {
      EgressHost host = original;
      host.host = name;
      host.serves.clear();
      host.when.clear();
      host.origin = "inventory";
      host.reason = fmt::format("replaces {} ({}:{})", original.host, replace.at.file, replace.at.line);
      host.defined_at = fmt::format("{}:{}:{}", replace.at.file, replace.at.line, replace.at.column);
      it = std::next(hosts.insert(it, std::move(host)));
    }
  }
  for (const auto& add : inventory->egress.add) hosts.push_back(add.value);
  return hosts;
}

std::vector<EgressTarget>
egress_targets(const std::vector<EgressHost>& hosts, std::vector<std::string>* unchecked)
{
  std::vector<EgressTarget> targets;
  std::set<std::pair<std::string, std::uint16_t>> seen;
  for (const auto& entry : hosts) {
    auto concrete = entry.concrete_hosts();
    if (concrete.empty() && unchecked) unchecked->push_back(entry.host);
    for (const auto& name : concrete) {
      for (const auto& port : entry.ports) {
        if (!seen.insert({name, port.port}).second) continue;
        targets.push_back({name, port, entry.host, entry.purpose});
      }
    }
  }
  return targets;
}

std::vector<std::string>
egress_allowlist(const std::vector<EgressHost>& hosts)
{
  std::set<std::string> wildcards;
  for (const auto& entry : hosts) {
    if (entry.wildcard()) wildcards.insert(entry.host.substr(1)); // ".docker.io"
  }
  auto covered = [&](const std::string& name) {
    return std::any_of(wildcards.begin(), wildcards.end(), [&](const std::string& suffix) { return name.ends_with(suffix); });
  };
  std::set<std::string> domains;
  for (const auto& entry : hosts) {
    if (entry.wildcard()) {
      domains.insert(entry.host);
    } else if (!covered(entry.host)) {
      domains.insert(entry.host);
    }
  }
  return {domains.begin(), domains.end()};
}

} // namespace portmatrix
