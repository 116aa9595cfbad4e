#include <gtest/gtest.h>

#include <algorithm>

#include "plan/diff.hpp"

namespace portmatrix {

TEST(Diff, ApinizerDocToApinizerShowsTheGuidesGapsWithReasons)
{
  auto doc = load_profile("apinizer-doc");
  auto corrected = load_profile("apinizer");
  ASSERT_TRUE(doc && corrected);
  auto diff = diff_profiles(*doc, *corrected);
  auto find = [&](Change change, Role from, Role to, std::string_view port) -> const RequirementChange* {
    for (const auto& c : diff.requirements) {
      const auto& r = c.change == Change::removed ? c.before : c.after;
      if (c.change == change && r.from == from && r.to == to && r.port == port) return &c;
    }
    return nullptr;
  };
  const auto* mesh = find(Change::added, Role::worker, Role::worker, "flannel-vxlan");
  ASSERT_TRUE(mesh);
  EXPECT_NE(mesh->after.reason.find("full mesh"), std::string::npos);
  EXPECT_TRUE(find(Change::added, Role::master, Role::master, "flannel-wireguard"));
  EXPECT_TRUE(find(Change::added, Role::loadbalancer, Role::worker, "kube-proxy-health"));
  const auto* conditional = find(Change::changed, Role::worker, Role::master, "flannel-vxlan");
  ASSERT_TRUE(conditional);
  EXPECT_EQ(conditional->fields, (std::vector<std::string>{"when"}));
  // A requirement whose reason alone differs is not a change.
  EXPECT_FALSE(find(Change::changed, Role::worker, Role::master, "flannel-wireguard"));
  EXPECT_TRUE(std::none_of(diff.requirements.begin(), diff.requirements.end(),
                           [](const RequirementChange& c) { return c.change == Change::removed; }));
  EXPECT_TRUE(std::any_of(diff.egress.begin(), diff.egress.end(),
                          [](const EgressChange& c) { return c.host.host == "ghcr.io" && !c.host.reason.empty(); }));
}

TEST(Diff, SameProfileIsEmptyAndReverseRemoves)
{
  auto doc = load_profile("apinizer-doc");
  auto corrected = load_profile("apinizer");
  ASSERT_TRUE(doc && corrected);
  EXPECT_TRUE(diff_profiles(*doc, *doc).empty());
  auto reverse = diff_profiles(*corrected, *doc);
  EXPECT_TRUE(std::any_of(reverse.requirements.begin(), reverse.requirements.end(),
                          [](const RequirementChange& c) { return c.change == Change::removed; }));
}

} // namespace portmatrix
