#include <gtest/gtest.h>

#include <algorithm>

#include "demo.hpp"
#include "plan/untested.hpp"

namespace portmatrix {
namespace {

using testing::plan_for;

const Untested*
find(const std::vector<Untested>& untested, UntestedCause cause)
{
  auto it = std::find_if(untested.begin(), untested.end(), [&](const Untested& u) { return u.cause == cause; });
  return it == untested.end() ? nullptr : &*it;
}

} // namespace

// Issue 17: an inventory without a client node leaves the expect-deny and
// `any -> worker` requirements with no flow; without a loadbalancer section,
// the VIP's. Both are said, with what to add.
TEST(Untested, NoClientNoLoadBalancerNoAdmin)
{
  auto plan = plan_for(R"(nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: w1, address: 10.0.0.3, roles: [worker]}
  - {name: db1, address: 10.0.0.4, roles: [mongodb]}
)");
  auto untested = untested_requirements(plan);
  const auto* client = find(untested, UntestedCause::no_client_node);
  ASSERT_TRUE(client);
  EXPECT_NE(client->message.find("add a host outside the cluster"), std::string::npos) << client->message;
  EXPECT_NE(client->message.find("expect-deny"), std::string::npos) << client->message;
  auto names = [](const Untested& u) {
    std::vector<std::string> out;
    for (const auto& item : u.requirements) out.push_back(item.direction);
    return out;
  };
  auto listed = names(*client);
  EXPECT_NE(std::find(listed.begin(), listed.end(), "client → master 2379-2380/tcp (etcd)"), listed.end());
  EXPECT_NE(std::find(listed.begin(), listed.end(), "any → worker 32080/tcp (apinizer-manager)"), listed.end());
  // No elasticsearch node: its deny does not apply here, so it is not "untested".
  EXPECT_EQ(std::count_if(listed.begin(), listed.end(),
                          [](const std::string& d) { return d.find("elasticsearch") != std::string::npos; }),
            0);
  ASSERT_TRUE(find(untested, UntestedCause::no_loadbalancer));
  ASSERT_TRUE(find(untested, UntestedCause::no_admin_node));
  EXPECT_NE(find(untested, UntestedCause::no_admin_node)->message.find("admin_cidrs is empty"), std::string::npos);
  EXPECT_FALSE(find(untested, UntestedCause::not_probed)); // no load balancers: no vrrp pair
  EXPECT_FALSE(find(untested, UntestedCause::no_cloud_lb_node)); // the option is off
}

TEST(Untested, VrrpIsNeverProbedAndCloudLbNeedsANode)
{
  auto plan = plan_for(R"(options: {cloud_load_balancer: "true"}
loadbalancer: {vip: 10.0.0.100}
admin_cidrs: [10.0.0.0/24]
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: w1, address: 10.0.0.3, roles: [worker]}
  - {name: lb1, address: 10.0.0.5, roles: [loadbalancer]}
  - {name: lb2, address: 10.0.0.6, roles: [loadbalancer]}
  - {name: c1, address: 10.0.0.9, roles: [client, admin]}
)");
  auto untested = untested_requirements(plan);
  EXPECT_FALSE(find(untested, UntestedCause::no_client_node));
  EXPECT_FALSE(find(untested, UntestedCause::no_admin_node));
  EXPECT_FALSE(find(untested, UntestedCause::no_loadbalancer));
  const auto* vrrp = find(untested, UntestedCause::not_probed);
  ASSERT_TRUE(vrrp);
  ASSERT_EQ(vrrp->requirements.size(), 1u);
  EXPECT_EQ(vrrp->requirements[0].direction, "loadbalancer → loadbalancer -/vrrp (vrrp)");
  const auto* cloud = find(untested, UntestedCause::no_cloud_lb_node);
  ASSERT_TRUE(cloud);
  EXPECT_NE(cloud->message.find("cloud_lb_cidrs is empty"), std::string::npos);
  EXPECT_EQ(untested_count(untested), vrrp->requirements.size() + cloud->requirements.size());
}

TEST(Untested, TheDemoInventoryLeavesOnlyWhatItHasNoNodeFor)
{
  auto untested = untested_requirements(testing::demo_plan());
  for (const auto& entry : untested) {
    EXPECT_NE(entry.cause, UntestedCause::no_client_node) << entry.message;
    EXPECT_NE(entry.cause, UntestedCause::no_loadbalancer) << entry.message;
  }
}

} // namespace portmatrix
