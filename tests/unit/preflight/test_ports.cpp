// /proc/net parsing and the ports check on a fixture /proc (fixtures/host-ok/proc):
// kube-apiserver (pid 4242) listens on 0.0.0.0:6443, python3 (pid 4243) holds
// UDP [::]:30101, an invisible process holds UDP 8472, 127.0.0.1:9090 listens.
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "host/sockets.hpp"
#include "preflight/preflight.hpp"

namespace portmatrix {
namespace {

std::string
fixture_proc()
{
  return std::string(PORTMATRIX_TEST_DATA) + "/unit/preflight/fixtures/host-ok/proc";
}

TEST(Sockets, ParsesAddressesPortsStatesAndInodes)
{
  auto sockets = read_sockets(fixture_proc());
  ASSERT_EQ(sockets.size(), 5u); // the time-wait row (inode 0) and the garbage line are skipped
  EXPECT_EQ(sockets[0].local_address, "0.0.0.0");
  EXPECT_EQ(sockets[0].port, 6443);
  EXPECT_TRUE(sockets[0].listening);
  EXPECT_EQ(sockets[0].inode, 41234u);
  EXPECT_EQ(sockets[1].local_address, "127.0.0.1");
  EXPECT_EQ(sockets[2].local_address, "10.0.0.21");
  EXPECT_EQ(sockets[2].port, 54321);
  EXPECT_FALSE(sockets[2].listening); // an established connection
  EXPECT_EQ(sockets[3].protocol, Protocol::udp);
  EXPECT_EQ(sockets[3].local_address, "::");
  EXPECT_EQ(sockets[4].local_address, "::ffff:10.0.0.21");
  EXPECT_EQ(sockets[4].port, 8472);
}

TEST(Sockets, OwnersComeFromFdLinks)
{
  auto owners = find_port_owners({{Protocol::tcp, 6443}, {Protocol::udp, 30101}, {Protocol::udp, 8472}, {Protocol::tcp, 1}},
                                 fixture_proc());
  ASSERT_TRUE(owners[0]);
  EXPECT_EQ(owners[0]->pid, 4242);
  EXPECT_EQ(owners[0]->name, "kube-apiserver");
  EXPECT_EQ(owners[0]->command, "kube-apiserver --secure-port=6443");
  ASSERT_TRUE(owners[1]);
  EXPECT_EQ(owners[1]->command, "python3 -c import socket");
  EXPECT_FALSE(owners[2]); // held, but no visible process
  EXPECT_FALSE(owners[3]);
}

TEST(PortsCheck, InstallModeFailsOnEveryTakenPortAndNamesTheOwner)
{
  auto plan = testing::golden_plan();
  const auto& worker = *plan.inventory.find("worker1");
  auto checks = check_ports(plan, worker, read_sockets(fixture_proc()), PreflightMode::install, fixture_proc());
  const PortsCheck* nodeports = nullptr;
  const PortsCheck* vxlan = nullptr;
  for (const auto& c : checks) {
    if (c.protocol == Protocol::udp && c.range == PortRange{30000, 32767}) nodeports = &c;
    if (c.protocol == Protocol::udp && c.range == PortRange{8472, 8472}) vxlan = &c;
    if (c.protocol == Protocol::tcp) {
      EXPECT_EQ(c.status, CheckStatus::pass) << to_string(c.range); // 6443 is not a worker port
    }
  }
  ASSERT_TRUE(nodeports && vxlan);
  EXPECT_EQ(nodeports->status, CheckStatus::fail);
  ASSERT_EQ(nodeports->held.size(), 1u);
  EXPECT_EQ(nodeports->held[0].port, 30101);
  ASSERT_TRUE(nodeports->held[0].owner);
  EXPECT_EQ(nodeports->held[0].owner->pid, 4243);
  EXPECT_EQ(vxlan->status, CheckStatus::fail);
  EXPECT_FALSE(vxlan->held[0].owner);

  auto running = check_ports(plan, worker, read_sockets(fixture_proc()), PreflightMode::running, fixture_proc());
  for (const auto& c : running) EXPECT_NE(c.status, CheckStatus::fail) << to_string(c.range);
}

TEST(PortsCheck, AMasterSeesTheApiServer)
{
  auto plan = testing::golden_plan();
  auto checks = check_ports(plan, *plan.inventory.find("master1"), read_sockets(fixture_proc()), PreflightMode::install,
                            fixture_proc());
  bool found = false;
  for (const auto& c : checks) {
    for (const auto& held : c.held) {
      if (held.port == 6443) {
        found = true;
        EXPECT_EQ(c.status, CheckStatus::fail);
        EXPECT_EQ(held.owner->name, "kube-apiserver");
        EXPECT_NE(c.names.find("kube-apiserver"), std::string::npos) << c.names;
      }
      EXPECT_NE(held.port, 9090); // not a required port
    }
  }
  EXPECT_TRUE(found);
}

} // namespace
} // namespace portmatrix
