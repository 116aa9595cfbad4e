// The diagnosis of one segment of a flow to a node (DESIGN.md, "Diagnosis
// vocabulary"): which word fits what the probe got, what the listeners hold
// and what the captures saw. Pure: the coordinator (coordinator.hpp) gathers the
// evidence, this decides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/messages.hpp"
#include "check/check.hpp"

namespace portmatrix {

// What one agent's capture said about a segment's probes.
struct CaptureWitness
{
  const ObservedAnswer* answer = nullptr; // nullptr: the agent was not asked, or did not answer
  bool watched = false;                   // its capture ran (it has CAP_NET_RAW)
  std::uint64_t lost = 0;                 // packets the capture lost during the check: "not seen" proves nothing
};

// Everything the diagnosis of a segment may rest on.
struct SegmentEvidence
{
  Protocol protocol = Protocol::tcp;
  std::string source;           // node names, for the details
  std::string destination;
  CaptureWitness arrivals;      // the destination's: did the probes reach its interface?
  CaptureWitness departures;    // the source's (unanswered TCP only): did its SYNs leave?
  bool held_by_service = false; // a port of the segment is held by another process at the destination
};

// A probe state as the report names it (blocked, admin-prohibited, filtered, ...).
std::string state_name(ProbeState state);

// True when the destination's agent says it answered the source's probe on
// every port of the segment (ObservedAnswer::ports_answered) although the
// prober got no answer, or a connection without the identity line: the
// answer came too late, as an overloaded node's does. The authenticated
// control channel then vouches for what the identity line would have proven
// (the probe reached our agent on the intended node, and its answer left),
// and the segment is fine.
bool reached_destination(const Segment& segment, const SegmentEvidence& evidence);

// The failure of `segment` (one outcome over consecutive ports of an allow
// flow to a node), or one with an empty diagnosis when the segment is fine;
// `service` is set when a real service answered. A diagnosis never rests on
// a capture that lost packets: what would have rested on one is `filtered`,
// and its detail names the capture and its losses. A connection without an
// identity while the destination's agent cannot be asked (stopped, frozen)
// is `agent-unreachable`, not `wrong-responder`: the flow is untested. A
// segment of a protocol without ports (ipip) whose source could not open a
// raw socket, or whose destination's agent has none, is `not-probed`: its
// detail says "cannot prove" and why.
FlowFailure diagnose_segment(const Segment& segment, const SegmentEvidence& evidence, bool& service);

// What the source's capture alone says of SYNs that got no answer, when it
// settles where they were lost: none left (its own output rules dropped
// them: blocked-by-source-firewall), or none was seen leaving by a capture
// that lost packets (filtered: cannot tell). nullopt when some left or the
// source did not watch. `to` is added after "SYNs" in the details (" to the
// VIP"). Direct flows (diagnose_segment) and VIP flows both judge this way.
std::optional<FlowFailure> diagnose_departures(const CaptureWitness& departures, const std::string& source,
                                               std::string_view to, FlowFailure failure);

// The failures of a flow the matrix denies: every probed segment that opened
// is `unexpectedly-open` (a refusal or silence is what a deny flow should
// get); its detail names who answered, when an identity line came.
std::vector<FlowFailure> diagnose_denied(const std::vector<Segment>& segments);

} // namespace portmatrix
