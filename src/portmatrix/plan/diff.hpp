// Differences between two profiles: requirements, named ports and egress hosts
// added, removed or changed. Pure data; report/ renders it.
#pragma once

#include <string>
#include <vector>

#include "model/profile.hpp"

namespace portmatrix {

enum class Change { added, removed, changed };
std::string_view to_string(Change change);

struct RequirementChange
{
  Change change = Change::added;
  Requirement before; // set for removed and changed
  Requirement after;  // set for added and changed
  std::vector<std::string> fields; // for changed: which fields differ
  // Why: the reason of `after` (added, changed), or of the removal that took
  // it away (`remove: true` in `b`), else `before`'s own reason.
  std::string reason;
};

struct PortChange
{
  Change change = Change::added;
  NamedPort before;
  NamedPort after;
};

struct EgressChange
{
  Change change = Change::added;
  EgressHost host;                 // as it is after (before, for removed)
  EgressHost before;               // set for changed
  std::vector<std::string> fields; // for changed: which fields differ
};

struct ProfileDiff
{
  std::string from;
  std::string to;
  std::vector<PortChange> ports;
  std::vector<RequirementChange> requirements;
  std::vector<EgressChange> egress;

  bool empty() const { return ports.empty() && requirements.empty() && egress.empty(); }
};

// What changes going from `a` to `b`. A requirement's reason and origin are
// explanations, not part of what is compared.
ProfileDiff diff_profiles(const Profile& a, const Profile& b);

} // namespace portmatrix
