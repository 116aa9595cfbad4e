// An overlay port's shaped probe beside its plain one (check/overlay.hpp):
// which flows get one, and `encapsulation-dropped` when the plain probe
// passed and the shaped one was not answered by the destination's agent.
#include <gtest/gtest.h>

#include "check/overlay.hpp"

namespace portmatrix {
namespace {

Flow
overlay_flow()
{
  Flow flow;
  flow.from = 0;
  flow.to = 1;
  flow.protocol = Protocol::udp;
  flow.range = {8472, 8472};
  flow.port = "flannel-vxlan";
  return flow;
}

NamedPort
vxlan_port()
{
  NamedPort port;
  port.name = "flannel-vxlan";
  port.range = {8472, 8472};
  port.protocols = {Protocol::udp};
  port.encapsulation = Encapsulation::vxlan;
  port.vni = 1;
  return port;
}

Segment
answered_by(const std::string& node, ProbeState state = ProbeState::open)
{
  Segment segment;
  segment.range = {8472, 8472};
  segment.state = state;
  if (!node.empty()) {
    segment.responder = node;
    segment.authentic = true;
  }
  return segment;
}

FlowResult
passed()
{
  FlowResult result;
  result.flow = overlay_flow();
  result.from = "worker1";
  result.to = "master2";
  result.verdict = Verdict::pass;
  result.diagnosis = "ok";
  return result;
}

TEST(Overlay, OnlyAnOverlaysAllowFlowToANodeGetsAShapedProbe)
{
  auto flow = overlay_flow();
  auto port = vxlan_port();
  ProbeTarget plain{Protocol::udp, "10.0.0.12", flow.range, 1};
  auto shaped = shaped_target(flow, &port, plain);
  ASSERT_TRUE(shaped);
  EXPECT_EQ(shaped->encapsulation, Encapsulation::vxlan);
  EXPECT_EQ(shaped->vni, 1u);
  EXPECT_EQ(shaped->address, "10.0.0.12");
  EXPECT_FALSE(shaped_target(flow, nullptr, plain));
  auto deny = flow;
  deny.expect = Expect::deny;
  EXPECT_FALSE(shaped_target(deny, &port, plain));
  auto vip = flow;
  vip.to.reset();
  EXPECT_FALSE(shaped_target(vip, &port, plain));
  auto plain_port = port;
  plain_port.encapsulation = Encapsulation::none;
  EXPECT_FALSE(shaped_target(flow, &plain_port, plain));
}

TEST(Overlay, ADroppedShapeWherePlainUdpPassedIsEncapsulationDropped)
{
  auto port = vxlan_port();
  auto shaped = *shaped_target(overlay_flow(), &port, {Protocol::udp, "10.0.0.12", {8472, 8472}, 1});
  auto failures = diagnose_shaped(passed(), shaped, {answered_by("", ProbeState::filtered)});
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].diagnosis, "encapsulation-dropped");
  EXPECT_EQ(failures[0].state, "filtered");
  // Both results in the detail.
  EXPECT_NE(failures[0].detail.find("plain UDP to 8472 passed (master2's agent answered)"), std::string::npos)
    << failures[0].detail;
  EXPECT_NE(failures[0].detail.find("VXLAN's shape (flags 0x08, VNI 1"), std::string::npos) << failures[0].detail;
  EXPECT_NE(failures[0].detail.find("no answer from master2's agent (filtered)"), std::string::npos)
    << failures[0].detail;
}

TEST(Overlay, AShapeAnsweredByTheDestinationOrNotProbedChangesNothing)
{
  auto port = vxlan_port();
  auto shaped = *shaped_target(overlay_flow(), &port, {Protocol::udp, "10.0.0.12", {8472, 8472}, 1});
  EXPECT_TRUE(diagnose_shaped(passed(), shaped, {answered_by("master2")}).empty());
  EXPECT_TRUE(diagnose_shaped(passed(), shaped, {answered_by("", ProbeState::unprobed)}).empty());
  // Another node's agent answering the shape is no proof for master2.
  EXPECT_EQ(diagnose_shaped(passed(), shaped, {answered_by("master3")}).size(), 1u);
  // A plain probe that failed keeps its own diagnosis.
  auto failed = passed();
  failed.verdict = Verdict::fail;
  EXPECT_TRUE(diagnose_shaped(failed, shaped, {answered_by("", ProbeState::filtered)}).empty());
}

TEST(Overlay, TheFullSizeProbeIsTheShapedOneAtTheInterfacesMtu)
{
  auto port = vxlan_port();
  auto shaped = *shaped_target(overlay_flow(), &port, {Protocol::udp, "10.0.0.12", {8472, 8472}, 1});
  EXPECT_EQ(shaped_probe_size(shaped, false), 238u); // 20 + 8 + 8 + 14 + 20 + 8 + 160
  auto full = full_size_target(shaped, 1500);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->size, 1500);
  EXPECT_EQ(full->encapsulation, Encapsulation::vxlan);
  EXPECT_FALSE(full_size_target(shaped, 0));   // the MTU is unknown
  EXPECT_FALSE(full_size_target(shaped, 200)); // no larger than the shaped probe
}

TEST(Overlay, TheSearchFindsTheExactPathMtuInAtMostTwelveSteps)
{
  for (std::uint32_t path : {238u, 239u, 576u, 1280u, 1400u, 1499u}) {
    MtuSearch search{238, 1500, 0};
    while (!search.done()) search.record(search.next(), search.next() <= path);
    EXPECT_EQ(search.passed, path);
    EXPECT_LE(search.steps, k_max_mtu_steps);
  }
  MtuSearch lucky{238, 1500, 0}; // the full size lost twice by chance: asked again first, it passes
  EXPECT_EQ(lucky.next(), 1500u);
  lucky.record(lucky.next(), true);
  EXPECT_TRUE(lucky.done());
  EXPECT_TRUE(lucky.lost_by_chance());
  MtuSearch jumbo{238, 9000, 0}; // bounded: it stops after k_max_mtu_steps, below what passed
  while (!jumbo.done()) jumbo.record(jumbo.next(), jumbo.next() <= 8999);
  EXPECT_EQ(jumbo.steps, k_max_mtu_steps);
  EXPECT_LT(jumbo.passed, 8999u);
}

TEST(Overlay, AFullSizeProbeLostAfterTheSmallOnesPassedIsAnMtuBlackhole)
{
  auto port = vxlan_port();
  auto shaped = *shaped_target(overlay_flow(), &port, {Protocol::udp, "10.0.0.12", {8472, 8472}, 1});
  auto full = *full_size_target(shaped, 1500);
  MtuSearch search{1400, 1401, 11};
  auto failure = diagnose_full_size(full, {answered_by("", ProbeState::filtered)}, {"worker1", "master2", 1500, 9000, search});
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->diagnosis, "mtu-blackhole");
  EXPECT_NE(failure->detail.find("full-size probe (1500 bytes, DF set: worker1's interface MTU) got no answer (filtered)"),
            std::string::npos)
    << failure->detail;
  EXPECT_NE(failure->detail.find("Largest size that passed: 1400 bytes; interface MTUs: worker1 1500, master2 9000; "
                                 "vxlan adds 50 bytes; the overlay's own MTU must be at most 1350"),
            std::string::npos)
    << failure->detail;
  EXPECT_FALSE(diagnose_full_size(full, {answered_by("master2")}, {"worker1", "master2", 1500, 1500, {}}));
  EXPECT_FALSE(diagnose_full_size(full, {answered_by("", ProbeState::filtered)},
                                  {"worker1", "master2", 1500, 1500, MtuSearch{1500, 1500, 1}}));
  EXPECT_FALSE(diagnose_full_size(full, {answered_by("", ProbeState::unprobed)}, {"worker1", "master2", 1500, 1500, {}}));
  EXPECT_EQ(backend_overhead(Encapsulation::wireguard), 80u);
}

TEST(Overlay, RoundTripsGiveTheirMedianAndP99ByNearestRank)
{
  std::vector<std::uint32_t> samples;
  for (std::uint32_t i = 100; i >= 1; --i) samples.push_back(i * 10);
  auto summary = summarize_rtts(samples);
  EXPECT_EQ(summary.samples, 100u);
  EXPECT_EQ(summary.median.count(), 500);
  EXPECT_EQ(summary.p99.count(), 990);
  EXPECT_EQ(summarize_rtts({}).samples, 0u);
  EXPECT_EQ(summarize_rtts({7}).p99.count(), 7);
}

} // namespace
} // namespace portmatrix
