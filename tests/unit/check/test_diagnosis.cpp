// The diagnosis of a failing segment, decided from the evidence alone: each
// word of the vocabulary from what the probe got and the captures saw.
#include <cerrno>

#include <gtest/gtest.h>

#include "check/diagnosis.hpp"

namespace portmatrix {
namespace {

Segment
segment_of(ProbeState state, PortRange range = {8472, 8472})
{
  Segment segment;
  segment.range = range;
  segment.state = state;
  return segment;
}

// worker1 -> master2, both captures running, nothing lost.
SegmentEvidence
evidence_of(Protocol protocol, const ObservedAnswer* arrived, const ObservedAnswer* departed = nullptr)
{
  SegmentEvidence evidence;
  evidence.protocol = protocol;
  evidence.source = "worker1";
  evidence.destination = "master2";
  evidence.arrivals = {arrived, true};
  evidence.departures = {departed, departed != nullptr};
  return evidence;
}

FlowFailure
diagnose(const Segment& segment, const SegmentEvidence& evidence)
{
  bool service = false;
  return diagnose_segment(segment, evidence, service);
}

const ObservedAnswer k_arrived{3, 1, 0};
const ObservedAnswer k_not_seen{0, 0, 0};
const ObservedAnswer k_listening{0, 0, 1};

TEST(Diagnosis, ArrivedButUnansweredIsTheDestinationsFirewall)
{
  auto failure = diagnose(segment_of(ProbeState::filtered), evidence_of(Protocol::udp, &k_arrived));
  EXPECT_EQ(failure.diagnosis, "dropped-by-destination-firewall");
  EXPECT_EQ(failure.state, "filtered");
  EXPECT_EQ(failure.detail, "1 of 1 ports' probes reached master2's interface, never its socket");
}

TEST(Diagnosis, NeverArrivedIsLostInTheNetwork)
{
  auto failure = diagnose(segment_of(ProbeState::filtered), evidence_of(Protocol::udp, &k_not_seen));
  EXPECT_EQ(failure.diagnosis, "lost-in-network");
  EXPECT_EQ(failure.detail, "never reached master2's interface");
}

TEST(Diagnosis, SynsThatNeverLeftAreTheSourcesFirewall)
{
  auto failure = diagnose(segment_of(ProbeState::filtered, {10250, 10250}),
                          evidence_of(Protocol::tcp, &k_not_seen, &k_not_seen));
  EXPECT_EQ(failure.diagnosis, "blocked-by-source-firewall");
  EXPECT_EQ(failure.detail, "worker1's SYNs never left its interface: its own output rules dropped them");
}

TEST(Diagnosis, SynsThatLeftAndNeverArrivedAreLostInTheNetwork)
{
  const ObservedAnswer left{4, 2, 0};
  auto segment = segment_of(ProbeState::filtered, {30000, 30001});
  auto failure = diagnose(segment, evidence_of(Protocol::tcp, &k_not_seen, &left));
  EXPECT_EQ(failure.diagnosis, "lost-in-network");
  EXPECT_EQ(failure.detail, "2 of 2 ports' SYNs left worker1, none reached master2's interface");
}

TEST(Diagnosis, UnreachableFromTheDestinationIsItsFirewall)
{
  auto failure = diagnose(segment_of(ProbeState::unreachable), evidence_of(Protocol::udp, &k_arrived));
  EXPECT_EQ(failure.diagnosis, "rejected-by-destination-firewall");
  EXPECT_EQ(failure.state, "unreachable");
}

TEST(Diagnosis, WithoutACaptureNobodyCanTell)
{
  auto evidence = evidence_of(Protocol::udp, &k_not_seen);
  evidence.arrivals.watched = false;
  auto failure = diagnose(segment_of(ProbeState::filtered), evidence);
  EXPECT_EQ(failure.diagnosis, "filtered");
  EXPECT_EQ(failure.detail, "no answer; the destination cannot capture, so where it was lost is unknown");

  failure = diagnose(segment_of(ProbeState::filtered), evidence_of(Protocol::udp, nullptr));
  EXPECT_EQ(failure.diagnosis, "filtered");
  EXPECT_EQ(failure.detail, "no answer (master2's agent could not be asked what it saw)");
}

// What an answer proves needs no capture.
SegmentEvidence
overloaded(Protocol protocol, const ObservedAnswer* arrived)
{
  return evidence_of(protocol, arrived, &k_not_seen);
}

TEST(Diagnosis, AnswersDoNotDependOnTheCaptures)
{
  auto refused = diagnose(segment_of(ProbeState::refused), overloaded(Protocol::tcp, &k_listening));
  EXPECT_EQ(refused.diagnosis, "rejected-by-destination-firewall");
  EXPECT_EQ(refused.detail, "refused while our listener is up");

  auto no_listener = diagnose(segment_of(ProbeState::refused), overloaded(Protocol::tcp, &k_not_seen));
  EXPECT_EQ(no_listener.diagnosis, "no-listener");

  auto prohibited = diagnose(segment_of(ProbeState::admin_prohibited), overloaded(Protocol::tcp, &k_not_seen));
  EXPECT_EQ(prohibited.diagnosis, "rejected-by-destination-firewall");
  EXPECT_EQ(prohibited.detail, "ICMP administratively prohibited");

  auto blocked = segment_of(ProbeState::blocked_locally);
  blocked.error = EPERM;
  auto eperm = diagnose(blocked, overloaded(Protocol::udp, &k_not_seen));
  EXPECT_EQ(eperm.diagnosis, "blocked-by-source-firewall");
  EXPECT_EQ(eperm.state, "blocked");
  EXPECT_EQ(eperm.detail, "worker1 refused to send (Operation not permitted)");

  auto other = segment_of(ProbeState::open);
  other.authentic = true;
  other.responder = "master3";
  auto wrong = diagnose(other, overloaded(Protocol::tcp, &k_not_seen));
  EXPECT_EQ(wrong.diagnosis, "wrong-responder");
  EXPECT_EQ(wrong.detail, "the agent on master3 answered instead of master2");

  auto ours = segment_of(ProbeState::open);
  ours.authentic = true;
  ours.responder = "master2";
  EXPECT_EQ(diagnose(ours, overloaded(Protocol::tcp, nullptr)).diagnosis, "") << "fine";

  auto held = overloaded(Protocol::tcp, nullptr);
  held.held_by_service = true;
  bool service = false;
  EXPECT_EQ(diagnose_segment(segment_of(ProbeState::open), held, service).diagnosis, "");
  EXPECT_TRUE(service);
}

} // namespace
} // namespace portmatrix
