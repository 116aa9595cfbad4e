// The egress list for a cluster, and what checking or allowing it means.
// Pure: the profile's hosts whose condition holds, with the inventory's
// removals, replacements and additions applied; expanded to (host, port)
// targets for the check and to a domain allowlist for a proxy.
#pragma once

#include <string>
#include <vector>

#include "model/inventory.hpp"
#include "model/profile.hpp"
#include "plan/plan.hpp"

namespace portmatrix {

// The entries that apply: `matrix.options` decides conditions; `inventory`
// (may be null) removes, replaces and adds, in that order. The inventory
// must have passed check_against(profile).
std::vector<EgressHost> resolve_egress(const Matrix& matrix, const Inventory* inventory);

// One thing to check: a concrete host on one port.
struct EgressTarget
{
  std::string host;
  EgressPort port;
  std::string entry; // the list entry it comes from ("*.docker.io", or the host itself)
  std::string purpose;
};

// Every concrete host of every entry on each of its ports, in list order,
// each (host, port) once. A wildcard entry without `serves` yields nothing
// (listed in `unchecked`, when given).
std::vector<EgressTarget> egress_targets(const std::vector<EgressHost>& hosts,
                                         std::vector<std::string>* unchecked = nullptr);

// The domains a proxy must allow: wildcard entries as written ("*.docker.io"),
// other entries' hosts unless a listed wildcard covers them; sorted, unique.
std::vector<std::string> egress_allowlist(const std::vector<EgressHost>& hosts);

} // namespace portmatrix
