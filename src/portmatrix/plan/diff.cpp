#include "plan/diff.hpp"

#include <algorithm>
#include <map>

namespace portmatrix {

std::string_view
to_string(Change change)
{
  switch (change) {
  case Change::added: return "added";
  case Change::removed: return "removed";
  case Change::changed: return "changed";
  }
  return "?";
}

namespace {

std::string
describe(const std::vector<Condition>& when)
{
  return to_string(when);
}

std::vector<std::string>
changed_fields(const Requirement& a, const Requirement& b)
{
  std::vector<std::string> fields;
  if (a.range != b.range) fields.emplace_back("port");
  if (a.optional != b.optional) fields.emplace_back("optional");
  if (describe(a.when) != describe(b.when)) fields.emplace_back("when");
  if (a.expect != b.expect) fields.emplace_back("expect");
  if (a.purpose != b.purpose) fields.emplace_back("purpose");
  return fields;
}

std::vector<std::string>
changed_fields(const EgressHost& a, const EgressHost& b)
{
  std::vector<std::string> fields;
  if (a.serves != b.serves) fields.emplace_back("serves");
  if (a.ports != b.ports) fields.emplace_back("ports");
  if (describe(a.when) != describe(b.when)) fields.emplace_back("when");
  if (a.purpose != b.purpose) fields.emplace_back("purpose");
  return fields;
}

} // namespace

ProfileDiff
diff_profiles(const Profile& a, const Profile& b)
{
  ProfileDiff diff;
  diff.from = a.name;
  diff.to = b.name;

  for (const auto& port : b.ports) {
    const auto* old = a.find_port(port.name);
    if (!old) diff.ports.push_back({Change::added, {}, port});
    else if (old->range != port.range || old->protocols != port.protocols) diff.ports.push_back({Change::changed, *old, port});
  }
  for (const auto& port : a.ports) {
    if (!b.find_port(port.name)) diff.ports.push_back({Change::removed, port, {}});
  }

  std::map<std::string, const Requirement*> before;
  for (const auto& requirement : a.requirements) before[requirement.key()] = &requirement;
  std::map<std::string, const Requirement*> after;
  for (const auto& requirement : b.requirements) {
    after[requirement.key()] = &requirement;
    auto it = before.find(requirement.key());
    if (it == before.end()) {
      diff.requirements.push_back({Change::added, {}, requirement, {}, requirement.reason});
    } else if (auto fields = changed_fields(*it->second, requirement); !fields.empty()) {
      diff.requirements.push_back({Change::changed, *it->second, requirement, std::move(fields), requirement.reason});
    }
  }
  std::map<std::string, const Requirement*> removals;
  for (const auto& removal : b.removals) removals[removal.key()] = &removal;
  for (const auto& requirement : a.requirements) {
    if (after.count(requirement.key())) continue;
    auto removal = removals.find(requirement.key());
    auto reason = removal != removals.end() && !removal->second->reason.empty() ? removal->second->reason
                                                                                 : requirement.reason;
    diff.requirements.push_back({Change::removed, requirement, {}, {}, std::move(reason)});
  }

  auto find_host = [](const Profile& p, const std::string& host) -> const EgressHost* {
    auto it = std::find_if(p.egress.begin(), p.egress.end(), [&](const EgressHost& h) { return h.host == host; });
    return it == p.egress.end() ? nullptr : &*it;
  };
  for (const auto& host : b.egress) {
    const auto* old = find_host(a, host.host);
    if (!old) {
      diff.egress.push_back({Change::added, host, {}, {}});
    } else if (auto fields = changed_fields(*old, host); !fields.empty()) {
      diff.egress.push_back({Change::changed, host, *old, std::move(fields)});
    }
  }
  for (const auto& host : a.egress) {
    if (!find_host(b, host.host)) diff.egress.push_back({Change::removed, host, {}, {}});
  }
  return diff;
}

} // namespace portmatrix
