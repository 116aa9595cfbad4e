// Kernel checks on fixture trees (fixtures/host-ok, fixtures/host-bad).
#include <gtest/gtest.h>

#include "preflight/kernel.hpp"

namespace portmatrix {
namespace {

std::string
fixture_root(const std::string& name)
{
  return std::string(PORTMATRIX_TEST_DATA) + "/unit/preflight/fixtures/" + name;
}

const KernelCheck&
find(const std::vector<KernelCheck>& checks, const std::string& name)
{
  for (const auto& c : checks) {
    if (c.name == name) return c;
  }
  throw std::runtime_error("no check " + name);
}

TEST(Kernel, AReadyNodePassesEveryCheck)
{
  auto checks = check_kernel({fixture_root("host-ok"), "vxlan", "eth0"});
  ASSERT_EQ(checks.size(), 6u);
  for (const auto& c : checks) EXPECT_EQ(c.status, CheckStatus::pass) << c.name << ": " << c.detail;
  EXPECT_EQ(find(checks, "mtu").detail, "eth0 MTU 1500: pod MTU 1450 after 50 bytes of vxlan");
}

TEST(Kernel, EachMissingPrerequisiteFailsNamingIt)
{
  auto checks = check_kernel({fixture_root("host-bad"), "vxlan", "eth0"});
  EXPECT_EQ(find(checks, "module br_netfilter").status, CheckStatus::fail);
  EXPECT_EQ(find(checks, "module vxlan").status, CheckStatus::fail);
  const auto& forward = find(checks, "net.ipv4.ip_forward");
  EXPECT_EQ(forward.status, CheckStatus::fail);
  EXPECT_NE(forward.detail.find("is 0, must be 1"), std::string::npos);
  const auto& bridge = find(checks, "net.bridge.bridge-nf-call-iptables");
  EXPECT_EQ(bridge.status, CheckStatus::fail);
  EXPECT_NE(bridge.detail.find("br_netfilter is not loaded"), std::string::npos);
  const auto& swap = find(checks, "swap");
  EXPECT_EQ(swap.status, CheckStatus::fail);
  EXPECT_NE(swap.detail.find("/swap.img"), std::string::npos);
  const auto& mtu = find(checks, "mtu");
  EXPECT_EQ(mtu.status, CheckStatus::fail);
  EXPECT_NE(mtu.detail.find("leaves pods 1250"), std::string::npos) << mtu.detail;
}

TEST(Kernel, BackendDecidesModuleAndOverhead)
{
  auto wireguard = check_kernel({fixture_root("host-ok"), "wireguard", "eth0"});
  EXPECT_EQ(find(wireguard, "module wireguard").status, CheckStatus::fail);
  EXPECT_NE(find(wireguard, "mtu").detail.find("pod MTU 1420"), std::string::npos);
  auto host_gw = check_kernel({fixture_root("host-ok"), "host-gw", ""});
  EXPECT_EQ(find(host_gw, "module vxlan").status, CheckStatus::skip);
  EXPECT_EQ(find(host_gw, "mtu").status, CheckStatus::skip);
}

} // namespace
} // namespace portmatrix
