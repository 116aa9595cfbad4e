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
  EXPECT_FALSE(find(Change::changed, Role::master, Role::master, "etcd"));
  // The guide's 51820-51821 is two ports: 51820 (IPv4) always, 51821 (IPv6)
  // only under flannel_ipv6 (issue 17 point 4).
  const auto* ipv4 = find(Change::changed, Role::worker, Role::master, "flannel-wireguard");
  ASSERT_TRUE(ipv4);
  EXPECT_EQ(ipv4->fields, (std::vector<std::string>{"port", "purpose"}));
  const auto* ipv6 = find(Change::added, Role::worker, Role::master, "flannel-wireguard-ipv6");
  ASSERT_TRUE(ipv6);
  EXPECT_EQ(to_string(ipv6->after.when), "flannel_backend=wireguard, flannel_ipv6=true");
  EXPECT_TRUE(std::any_of(diff.egress.begin(), diff.egress.end(),
                          [](const EgressChange& c) { return c.host.host == "ghcr.io" && !c.host.reason.empty(); }));
}

// Least privilege (issue 17): what the guide opens to the workers and no
// worker uses is removed or made conditional, each with its source.
TEST(Diff, ApinizerClosesTheControlPlaneToWorkersWithSources)
{
  auto doc = load_profile("apinizer-doc");
  auto corrected = load_profile("apinizer");
  ASSERT_TRUE(doc && corrected);
  auto diff = diff_profiles(*doc, *corrected);
  auto find = [&](Change change, Role from, Role to, std::string_view port, Expect expect) -> const RequirementChange* {
    for (const auto& c : diff.requirements) {
      const auto& r = c.change == Change::removed ? c.before : c.after;
      if (c.change == change && r.from == from && r.to == to && r.port == port && r.expect == expect) return &c;
    }
    return nullptr;
  };
  // The removal's own reason is the diff's, not the guide's "guide: ..." line.
  const auto* etcd = find(Change::removed, Role::worker, Role::master, "etcd", Expect::allow);
  ASSERT_TRUE(etcd);
  EXPECT_NE(etcd->reason.find("kube-apiserver, etcd"), std::string::npos) << etcd->reason;
  EXPECT_TRUE(find(Change::added, Role::worker, Role::master, "etcd", Expect::deny));
  for (auto port : {"kube-scheduler", "kube-controller-manager"}) {
    const auto* allow = find(Change::changed, Role::worker, Role::master, port, Expect::allow);
    ASSERT_TRUE(allow) << port;
    EXPECT_EQ(allow->fields, (std::vector<std::string>{"when"}));
    EXPECT_NE(allow->reason.find("127.0.0.1"), std::string::npos);
    EXPECT_TRUE(find(Change::changed, Role::master, Role::master, port, Expect::allow)) << port;
    EXPECT_TRUE(find(Change::added, Role::worker, Role::master, port, Expect::deny)) << port;
  }
  const auto* kubelet = find(Change::changed, Role::worker, Role::master, "kubelet", Expect::allow);
  ASSERT_TRUE(kubelet);
  EXPECT_NE(kubelet->reason.find("metrics-server"), std::string::npos);
  EXPECT_TRUE(find(Change::added, Role::admin, Role::vip, "kube-apiserver", Expect::allow));
  EXPECT_TRUE(find(Change::added, Role::admin, Role::master, "kube-apiserver", Expect::allow));
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
