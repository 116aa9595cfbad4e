// The diagnosis of a failing segment, decided from the evidence alone: each
// word of the vocabulary from what the probe got and the captures saw, and
// the rule that a diagnosis never rests on a capture that lost packets (it is
// `filtered` then, the detail naming the capture), while what an answer
// proves by itself (a refusal, admin-prohibited, EPERM, another identity)
// does not depend on any capture.
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
  evidence.arrivals = {arrived, true, 0};
  evidence.departures = {departed, departed != nullptr, 0};
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

TEST(Diagnosis, ArrivedAtACaptureThatLostPacketsCannotTell)
{
  auto evidence = evidence_of(Protocol::udp, &k_arrived);
  evidence.arrivals.lost = 1234;
  auto failure = diagnose(segment_of(ProbeState::filtered), evidence);
  EXPECT_EQ(failure.diagnosis, "filtered");
  EXPECT_EQ(failure.detail, "the capture on master2 lost 1,234 packets; cannot tell where it was dropped (1 of 1 "
                            "ports' probes reached master2's interface, never its socket)");
}

TEST(Diagnosis, NeverArrivedIsLostInTheNetwork)
{
  auto failure = diagnose(segment_of(ProbeState::filtered), evidence_of(Protocol::udp, &k_not_seen));
  EXPECT_EQ(failure.diagnosis, "lost-in-network");
  EXPECT_EQ(failure.detail, "never reached master2's interface");
}

TEST(Diagnosis, NotSeenByACaptureThatLostPacketsCannotTell)
{
  auto evidence = evidence_of(Protocol::udp, &k_not_seen);
  evidence.arrivals.lost = 1;
  auto failure = diagnose(segment_of(ProbeState::filtered), evidence);
  EXPECT_EQ(failure.diagnosis, "filtered");
  EXPECT_EQ(failure.detail, "the capture on master2 lost 1 packet; cannot tell where it was dropped (none of the "
                            "probes were seen reaching master2)");
}

TEST(Diagnosis, SynsThatNeverLeftAreTheSourcesFirewall)
{
  auto failure = diagnose(segment_of(ProbeState::filtered, {10250, 10250}),
                          evidence_of(Protocol::tcp, &k_not_seen, &k_not_seen));
  EXPECT_EQ(failure.diagnosis, "blocked-by-source-firewall");
  EXPECT_EQ(failure.detail, "worker1's SYNs never left its interface: its own output rules dropped them");

  // It rests on the source's capture alone: the destination's losses do not touch it.
  auto evidence = evidence_of(Protocol::tcp, &k_not_seen, &k_not_seen);
  evidence.arrivals.lost = 50;
  EXPECT_EQ(diagnose(segment_of(ProbeState::filtered, {10250, 10250}), evidence).diagnosis,
            "blocked-by-source-firewall");
}

TEST(Diagnosis, SynsNotSeenLeavingByACaptureThatLostPacketsCannotTell)
{
  auto evidence = evidence_of(Protocol::tcp, &k_not_seen, &k_not_seen);
  evidence.departures.lost = 2'500'000;
  auto failure = diagnose(segment_of(ProbeState::filtered, {10250, 10250}), evidence);
  EXPECT_EQ(failure.diagnosis, "filtered");
  EXPECT_EQ(failure.detail, "the capture on worker1 lost 2,500,000 packets; cannot tell where it was dropped (none "
                            "of worker1's SYNs were seen leaving it)");
}

// The same judgement of a VIP flow's SYNs (vip_rounds.cpp), named for where
// they went; silent when some left or the source did not watch.
TEST(Diagnosis, DeparturesAloneJudgeAVipFlowsSynsTheSameWay)
{
  FlowFailure vip{{443, 443}, "filtered", "filtered", "the VIP did not answer"};
  CaptureWitness none_left{&k_not_seen, true, 0};
  auto blocked = diagnose_departures(none_left, "worker3", " to the VIP", vip);
  ASSERT_TRUE(blocked);
  EXPECT_EQ(blocked->diagnosis, "blocked-by-source-firewall");
  EXPECT_EQ(blocked->detail, "worker3's SYNs to the VIP never left its interface: its own output rules dropped them");

  none_left.lost = 3;
  auto unknown = diagnose_departures(none_left, "worker3", " to the VIP", vip);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->diagnosis, "filtered");
  EXPECT_EQ(unknown->detail, "the capture on worker3 lost 3 packets; cannot tell where it was dropped (none of "
                             "worker3's SYNs to the VIP were seen leaving it)");

  const ObservedAnswer left{1, 1, 0};
  EXPECT_FALSE(diagnose_departures({&left, true, 0}, "worker3", " to the VIP", vip));
  EXPECT_FALSE(diagnose_departures({&k_not_seen, false, 0}, "worker3", " to the VIP", vip)) << "not watched";
  EXPECT_FALSE(diagnose_departures({}, "worker3", " to the VIP", vip)) << "not asked";
}

TEST(Diagnosis, SynsThatLeftAndNeverArrivedAreLostInTheNetwork)
{
  const ObservedAnswer left{4, 2, 0};
  auto segment = segment_of(ProbeState::filtered, {30000, 30001});
  auto failure = diagnose(segment, evidence_of(Protocol::tcp, &k_not_seen, &left));
  EXPECT_EQ(failure.diagnosis, "lost-in-network");
  EXPECT_EQ(failure.detail, "2 of 2 ports' SYNs left worker1, none reached master2's interface");

  // The source's losses do not matter once SYNs were seen leaving; the
  // destination's do: "none arrived" is then unproven.
  auto source_lost = evidence_of(Protocol::tcp, &k_not_seen, &left);
  source_lost.departures.lost = 10;
  EXPECT_EQ(diagnose(segment, source_lost).diagnosis, "lost-in-network");
  auto destination_lost = evidence_of(Protocol::tcp, &k_not_seen, &left);
  destination_lost.arrivals.lost = 10;
  EXPECT_EQ(diagnose(segment, destination_lost).diagnosis, "filtered");
}

TEST(Diagnosis, UnreachableFromTheDestinationIsItsFirewallUnlessItsCaptureLostPackets)
{
  auto failure = diagnose(segment_of(ProbeState::unreachable), evidence_of(Protocol::udp, &k_arrived));
  EXPECT_EQ(failure.diagnosis, "rejected-by-destination-firewall");
  EXPECT_EQ(failure.state, "unreachable");

  auto evidence = evidence_of(Protocol::udp, &k_arrived);
  evidence.arrivals.lost = 7;
  failure = diagnose(segment_of(ProbeState::unreachable), evidence);
  EXPECT_EQ(failure.diagnosis, "filtered");
  EXPECT_NE(failure.detail.find("the capture on master2 lost 7 packets"), std::string::npos) << failure.detail;
}

TEST(Diagnosis, WithoutACaptureNobodyCanTell)
{
  auto evidence = evidence_of(Protocol::udp, &k_not_seen);
  evidence.arrivals.watched = false;
  auto failure = diagnose(segment_of(ProbeState::filtered), evidence);
  EXPECT_EQ(failure.diagnosis, "filtered");
  EXPECT_EQ(failure.detail, "no answer; the destination cannot capture, so where it was lost is unknown");

}

// Silence, and the destination's agent could not be asked what arrived (it
// was stopped or frozen): the flow is untested (agent-unreachable, a skip),
// not filtered (issue 16, finding 8).
TEST(Diagnosis, SilenceFromAnAgentThatCannotBeAskedIsUntested)
{
  auto failure = diagnose(segment_of(ProbeState::filtered), evidence_of(Protocol::udp, nullptr));
  EXPECT_EQ(failure.diagnosis, "agent-unreachable");
  EXPECT_EQ(failure.detail, "no answer, and master2's agent could not be asked what it saw (stopped or frozen?)");
}

// Losses on both captures, as under overload: what an answer proves stands.
SegmentEvidence
overloaded(Protocol protocol, const ObservedAnswer* arrived)
{
  auto evidence = evidence_of(protocol, arrived, &k_not_seen);
  evidence.arrivals.lost = 1000;
  evidence.departures.lost = 1000;
  return evidence;
}

TEST(Diagnosis, PortsLeftUnprobedAtTheDeadlineAreUntestedNotDropped)
{
  // Nothing was asked of the captures: whatever they hold says nothing.
  auto failure = diagnose(segment_of(ProbeState::unprobed, {30000, 32767}), evidence_of(Protocol::udp, nullptr));
  EXPECT_EQ(failure.diagnosis, "agent-unreachable");
  EXPECT_EQ(failure.state, "unprobed");
  EXPECT_EQ(failure.detail, "worker1's agent had not probed these ports when the check's deadline came");
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

  // Open without an identity line, and the destination's agent says it did
  // not answer: something else did.
  auto silent = diagnose(segment_of(ProbeState::open), evidence_of(Protocol::tcp, &k_listening));
  EXPECT_EQ(silent.diagnosis, "wrong-responder");
  EXPECT_EQ(silent.detail, "something answered, but not our agent");

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

// The destination's agent says it answered the source's probe on every port
// of the segment, although the prober heard nothing in time (or got a
// connection without its identity line): an overloaded node answering late.
// Its word over the authenticated control channel proves the flow; the
// captures (which saw the probes arrive) would otherwise have blamed its
// firewall, or another responder.
TEST(Diagnosis, AnAnswerTheDestinationSentTooLateProvesTheSegment)
{
  const ObservedAnswer answered{3, 1, 1, 1};
  EXPECT_EQ(diagnose(segment_of(ProbeState::filtered), evidence_of(Protocol::udp, &k_arrived)).diagnosis,
            "dropped-by-destination-firewall")
    << "without the agent's word, as before";
  auto late = evidence_of(Protocol::udp, &answered);
  EXPECT_TRUE(reached_destination(segment_of(ProbeState::filtered), late));
  EXPECT_EQ(diagnose(segment_of(ProbeState::filtered), late).diagnosis, "");

  auto connected = segment_of(ProbeState::open, {6443, 6443});
  auto tcp_late = evidence_of(Protocol::tcp, &answered);
  EXPECT_TRUE(reached_destination(connected, tcp_late));
  EXPECT_EQ(diagnose(connected, tcp_late).diagnosis, "");

  // Another agent's identity, a refusal, an ICMP answer: the answer the
  // prober did get is the evidence, and the destination's word changes nothing.
  auto other = segment_of(ProbeState::open, {6443, 6443});
  other.authentic = true;
  other.responder = "master3";
  EXPECT_FALSE(reached_destination(other, tcp_late));
  EXPECT_EQ(diagnose(other, tcp_late).diagnosis, "wrong-responder");
  EXPECT_EQ(diagnose(segment_of(ProbeState::refused), tcp_late).diagnosis, "rejected-by-destination-firewall");
  EXPECT_EQ(diagnose(segment_of(ProbeState::admin_prohibited), late).diagnosis, "rejected-by-destination-firewall");
  auto blocked = segment_of(ProbeState::blocked_locally);
  blocked.error = EPERM;
  EXPECT_EQ(diagnose(blocked, late).diagnosis, "blocked-by-source-firewall");
}

TEST(Diagnosis, SomePortsAnsweredTooLateAreFilteredNotTheFirewall)
{
  const ObservedAnswer some{40, 10, 16, 4}; // 4 of the 16 ports answered late, 10 seen arriving
  auto range = segment_of(ProbeState::filtered, {30000, 30015});
  auto evidence = evidence_of(Protocol::udp, &some);
  EXPECT_FALSE(reached_destination(range, evidence));
  auto failure = diagnose(range, evidence);
  EXPECT_EQ(failure.diagnosis, "filtered");
  EXPECT_EQ(failure.state, "filtered");
  EXPECT_EQ(failure.detail, "master2's agent answered 4 of 16 ports' probes, too late for the prober (an overloaded "
                            "node answers late); cannot tell where the others were lost");
  EXPECT_EQ(diagnose(range, evidence_of(Protocol::udp, &k_arrived)).diagnosis, "dropped-by-destination-firewall");
}

// A stopped (SIGSTOP) destination agent: its listeners' backlog still
// completes the handshake, but no identity comes and the agent cannot be
// asked what it answered. That is no other responder: the segment is
// agent-unreachable (and the flow a skip), as the agents section says.
TEST(Diagnosis, AConnectionToAFrozenAgentIsNotAnotherResponder)
{
  auto frozen = diagnose(segment_of(ProbeState::open, {6443, 6443}), evidence_of(Protocol::tcp, nullptr));
  EXPECT_EQ(frozen.diagnosis, "agent-unreachable");
  EXPECT_EQ(frozen.detail, "connected, but master2's agent sent no identity and could not be asked what it answered "
                           "(stopped or frozen?)");
}

// An identity line that our token does not sign is another responder
// (another cluster's agent), even where the destination cannot be asked:
// before, a UDP one read as a frozen agent that "connected".
TEST(Diagnosis, AnIdentityOurTokenDoesNotSignIsAnotherResponder)
{
  auto foreign = segment_of(ProbeState::open, {8472, 8472});
  foreign.responder = "master2";
  for (const auto* seen : {&k_listening, static_cast<const ObservedAnswer*>(nullptr)}) {
    auto failure = diagnose(foreign, evidence_of(Protocol::udp, seen));
    EXPECT_EQ(failure.diagnosis, "wrong-responder");
    EXPECT_EQ(failure.detail, "an identity that our token does not sign answered (it names master2)");
  }
}

// A flow the matrix denies: only the segments that opened fail, each
// unexpectedly-open and naming who answered; refusals and silence pass.
// IP-in-IP (no ports: one segment 0-0) is diagnosed like UDP where the
// agents' raw sockets can prove it, and is `not-probed` ("cannot prove")
// where one of them has none: never pass, never blamed on a firewall.
TEST(Diagnosis, IpInIpIsDiagnosedLikeUdpWhereTheRawSocketsCanProveIt)
{
  const ObservedAnswer arrived_listening{2, 1, 1};
  const ObservedAnswer not_seen_listening{0, 0, 1};
  auto failure = diagnose(segment_of(ProbeState::filtered, {0, 0}), evidence_of(Protocol::ipip, &arrived_listening));
  EXPECT_EQ(failure.diagnosis, "dropped-by-destination-firewall");
  EXPECT_EQ(failure.detail, "the ipip probes reached master2's interface, never its agent's raw socket");
  failure = diagnose(segment_of(ProbeState::filtered, {0, 0}), evidence_of(Protocol::ipip, &not_seen_listening));
  EXPECT_EQ(failure.diagnosis, "lost-in-network");
  auto blocked = segment_of(ProbeState::blocked_locally, {0, 0});
  blocked.error = EPERM;
  EXPECT_EQ(diagnose(blocked, evidence_of(Protocol::ipip, nullptr)).diagnosis, "blocked-by-source-firewall");
}

TEST(Diagnosis, IpInIpWithoutARawSocketAtEitherEndCannotBeProven)
{
  auto no_socket = segment_of(ProbeState::error, {0, 0});
  no_socket.error = EPERM;
  auto failure = diagnose(no_socket, evidence_of(Protocol::ipip, nullptr));
  EXPECT_EQ(failure.diagnosis, "not-probed");
  EXPECT_EQ(failure.detail, "cannot prove IP protocol 4 (ipip): worker1's agent cannot open a raw socket for it "
                            "(Operation not permitted; it needs CAP_NET_RAW)");

  // The destination's agent answered the observed round: it holds no raw
  // socket, so the kernel's protocol unreachable (refused) or silence says
  // nothing of the flow.
  for (auto state : {ProbeState::refused, ProbeState::filtered}) {
    failure = diagnose(segment_of(state, {0, 0}), evidence_of(Protocol::ipip, &k_arrived));
    EXPECT_EQ(failure.diagnosis, "not-probed") << to_string(state);
    EXPECT_NE(failure.detail.find("cannot prove IP protocol 4 (ipip): master2's agent has no raw socket"),
              std::string::npos)
      << failure.detail;
  }

  auto ipv6 = segment_of(ProbeState::error, {0, 0});
  ipv6.error = EAFNOSUPPORT;
  failure = diagnose(ipv6, evidence_of(Protocol::ipip, nullptr));
  EXPECT_EQ(failure.diagnosis, "not-probed");
  EXPECT_EQ(failure.detail, "cannot prove IP protocol 4 (ipip): its probe is IPv4 in IPv4 only");

  // UDP keeps its words: nothing of ours listening there is no-listener.
  EXPECT_EQ(diagnose(segment_of(ProbeState::refused), evidence_of(Protocol::udp, &k_arrived)).diagnosis,
            "no-listener");
}

TEST(Diagnosis, ADeniedFlowThatOpensIsUnexpectedlyOpen)
{
  auto open_by = [](PortRange range, std::string responder) {
    auto segment = segment_of(ProbeState::open, range);
    segment.responder = std::move(responder);
    segment.authentic = !segment.responder.empty();
    return segment;
  };
  std::vector<Segment> segments{open_by({2379, 2380}, "master1"), segment_of(ProbeState::refused, {10250, 10250}),
                                segment_of(ProbeState::filtered, {10257, 10257}), open_by({10259, 10259}, ""),
                                segment_of(ProbeState::unprobed, {10260, 10260})};
  auto failures = diagnose_denied(segments);
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].ports, (PortRange{2379, 2380}));
  EXPECT_EQ(failures[0].state, "open");
  EXPECT_EQ(failures[0].diagnosis, "unexpectedly-open");
  EXPECT_EQ(failures[0].detail, "answered by master1");
  EXPECT_EQ(failures[1].ports, (PortRange{10259, 10259}));
  EXPECT_EQ(failures[1].diagnosis, "unexpectedly-open");
  EXPECT_EQ(failures[1].detail, "reachable");
}

TEST(Diagnosis, ADeniedFlowThatStaysClosedHasNoFailure)
{
  EXPECT_TRUE(diagnose_denied({segment_of(ProbeState::refused), segment_of(ProbeState::filtered)}).empty());
}

} // namespace
} // namespace portmatrix
