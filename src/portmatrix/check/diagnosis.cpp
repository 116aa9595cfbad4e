// Where a failing probe was stopped, from the evidence the check gathered.
//
// An answer says it directly: a refusal (no listener, or a reset while our
// listener is up: a firewall's reject), ICMP administratively prohibited,
// EPERM from the source's own stack, another identity. Silence says nothing
// by itself, so the captures speak: the destination's says whether the
// probes reached its interface (then its host dropped them), the source's
// whether its SYNs left (if not, its own output rules dropped them; connect()
// never says so). Both only prove something when they saw every packet: a
// capture that falls behind loses packets, and a lost packet reads as "not
// seen". So whatever would rest on a capture that lost packets during the
// check is `filtered`, "cannot tell where", with the capture and its losses
// named in the detail.
//
// A protocol without ports (IP-in-IP) is proven by the agents' raw sockets:
// where the source's agent could not open one, or the destination's has
// none, nothing was proven either way: `not-probed`, and the flow is a skip
// whose detail says "cannot prove" and why.
#include "check/diagnosis.hpp"

#include <cerrno>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "util/thousands.hpp"

namespace portmatrix {
namespace {

FlowFailure
cannot_tell(FlowFailure failure, const std::string& node, std::uint64_t lost, const std::string& why)
{
  failure.diagnosis = "filtered";
  failure.detail = fmt::format("the capture on {} lost {} packet{}; cannot tell where it was dropped ({})", node,
                               with_thousands(lost), lost == 1 ? "" : "s", why);
  return failure;
}

// No answer, or ICMP unreachable that did not come from the destination:
// where the probes were lost, as far as the captures can tell.
FlowFailure
diagnose_silence(const Segment& segment, const SegmentEvidence& evidence, FlowFailure failure)
{
  const auto* seen = evidence.arrivals.answer;
  const auto* left = evidence.departures.answer;
  bool left_watched = left && evidence.departures.watched;
  if (seen && seen->packets > 0) {
    // Arrived, unanswered: the host dropped it. With a capture that could
    // not keep up, the host was too busy to tell its firewall from its load.
    auto reached = has_ports(evidence.protocol)
                     ? fmt::format("{} of {} ports' probes reached {}'s interface, never its socket", seen->ports_seen,
                                   segment.range.size(), evidence.destination)
                     : fmt::format("the {} probes reached {}'s interface, never its agent's raw socket",
                                   to_string(evidence.protocol), evidence.destination);
    if (evidence.arrivals.lost > 0) {
      return cannot_tell(failure, evidence.destination, evidence.arrivals.lost, reached);
    }
    failure.diagnosis = "dropped-by-destination-firewall";
    failure.detail = reached;
    return failure;
  }
  if (auto judged = diagnose_departures(evidence.departures, evidence.source, "", failure)) return *judged;
  if (seen && evidence.arrivals.watched) {
    if (evidence.arrivals.lost > 0) {
      return cannot_tell(failure, evidence.destination, evidence.arrivals.lost,
                         fmt::format("none of the probes were seen reaching {}", evidence.destination));
    }
    failure.diagnosis = "lost-in-network";
    if (evidence.protocol == Protocol::udp) {
      failure.detail = fmt::format("never reached {}'s interface", evidence.destination);
    } else if (left_watched) {
      failure.detail = fmt::format("{} of {} ports' SYNs left {}, none reached {}'s interface", left->ports_seen,
                                   segment.range.size(), evidence.source, evidence.destination);
    } else {
      failure.detail = fmt::format("never reached {}'s interface (dropped in the network, or by {}'s own output "
                                   "rules: {} could not say what left)",
                                   evidence.destination, evidence.source, evidence.source);
    }
    return failure;
  }
  if (seen) {
    failure.diagnosis = "filtered";
    failure.detail = "no answer; the destination cannot capture, so where it was lost is unknown";
    return failure;
  }
  // Silence from a destination whose agent cannot be asked what arrived
  // (stopped, frozen, killed): the flow is untested, as the agents section
  // says, not filtered by a firewall nobody saw.
  failure.diagnosis = "agent-unreachable";
  failure.detail = fmt::format("no answer, and {}'s agent could not be asked what it saw (stopped or frozen?)",
                               evidence.destination);
  return failure;
}

} // namespace

std::optional<FlowFailure>
diagnose_departures(const CaptureWitness& departures, const std::string& source, std::string_view to,
                    FlowFailure failure)
{
  if (!departures.answer || !departures.watched || departures.answer->ports_seen > 0) return std::nullopt;
  // connect() never reports a SYN that the source's own output rules
  // dropped; the source's capture saw none of them leave.
  if (departures.lost > 0) {
    return cannot_tell(std::move(failure), source, departures.lost,
                       fmt::format("none of {}'s SYNs{} were seen leaving it", source, to));
  }
  failure.diagnosis = "blocked-by-source-firewall";
  failure.detail = fmt::format("{}'s SYNs{} never left its interface: its own output rules dropped them", source, to);
  return failure;
}

namespace {

// Outcomes that a late answer explains: silence, or a connection whose
// identity line never came.
bool
late_answer_possible(const Segment& segment)
{
  return segment.state == ProbeState::filtered
         || (segment.state == ProbeState::open && !segment.authentic && segment.responder.empty());
}

std::uint32_t
ports_answered(const SegmentEvidence& evidence)
{
  return evidence.arrivals.answer ? evidence.arrivals.answer->ports_answered : 0;
}

} // namespace

bool
reached_destination(const Segment& segment, const SegmentEvidence& evidence)
{
  return late_answer_possible(segment) && ports_answered(evidence) > 0
         && ports_answered(evidence) >= segment.range.size();
}

std::string
state_name(ProbeState state)
{
  switch (state) {
  case ProbeState::blocked_locally: return "blocked";
  case ProbeState::admin_prohibited: return "admin-prohibited";
  default: return std::string(to_string(state));
  }
}

namespace {

// A raw-protocol segment nothing could prove (see the top of the file), or nullopt.
std::optional<FlowFailure>
not_probed(const Segment& segment, const SegmentEvidence& evidence, FlowFailure failure)
{
  if (has_ports(evidence.protocol)) return std::nullopt;
  auto protocol = fmt::format("IP protocol {} ({})", ip_protocol_number(evidence.protocol), to_string(evidence.protocol));
  const auto* seen = evidence.arrivals.answer;
  if (segment.state == ProbeState::error && segment.error == EAFNOSUPPORT) {
    failure.detail = fmt::format("cannot prove {}: its probe is IPv4 in IPv4 only", protocol);
  } else if (segment.state == ProbeState::error && (segment.error == EPERM || segment.error == EACCES)) {
    failure.detail = fmt::format("cannot prove {}: {}'s agent cannot open a raw socket for it ({}; it needs "
                                 "CAP_NET_RAW)",
                                 protocol, evidence.source, std::strerror(segment.error));
  } else if (seen && seen->ports_listening == 0 && segment.state != ProbeState::open
             && segment.state != ProbeState::blocked_locally) {
    failure.detail = fmt::format("cannot prove {}: {}'s agent has no raw socket for it to answer on (it needs "
                                 "CAP_NET_RAW; its log says why); the probe got: {}",
                                 protocol, evidence.destination, state_name(segment.state));
  } else {
    return std::nullopt;
  }
  failure.diagnosis = "not-probed";
  return failure;
}

} // namespace

FlowFailure
diagnose_segment(const Segment& segment, const SegmentEvidence& evidence, bool& service)
{
  const auto& expected = evidence.destination;
  const auto* seen = evidence.arrivals.answer;
  FlowFailure failure{segment.range, state_name(segment.state), {}, {}};
  if (reached_destination(segment, evidence)) return failure;
  if (auto unproven = not_probed(segment, evidence, failure)) return *unproven;
  if (late_answer_possible(segment) && ports_answered(evidence) > 0) {
    // The agent answered some, too late: an overloaded node, whose silence
    // on the others says nothing of its firewall.
    failure.diagnosis = "filtered";
    failure.detail = fmt::format("{}'s agent answered {} of {} ports' probes, too late for the prober (an overloaded "
                                 "node answers late); cannot tell where the others were lost",
                                 evidence.destination, ports_answered(evidence), segment.range.size());
    return failure;
  }
  // Without the destination's word (its agent died or did not answer), the
  // diagnosis rests on the probe alone: say so.
  auto unconfirmed = [&](FlowFailure& f) {
    if (!seen) f.detail += fmt::format(" ({}'s agent could not be asked what it saw)", expected);
  };
  switch (segment.state) {
  case ProbeState::open:
    if (segment.authentic && segment.responder == expected) return failure;
    if (segment.authentic) {
      failure.diagnosis = "wrong-responder";
      failure.detail = fmt::format("the agent on {} answered instead of {}", segment.responder, expected);
    } else if (!segment.responder.empty()) {
      // An identity line that no nonce of ours signs: another cluster's
      // agent (another token), whatever the destination says it saw.
      failure.diagnosis = "wrong-responder";
      failure.detail = fmt::format("an identity that our token does not sign answered (it names {})", segment.responder);
    } else if (evidence.held_by_service) {
      service = true;
      return failure; // a real service owns the port and answered: reachable
    } else if (!seen) {
      // The destination's kernel took the connection on our listener's
      // backlog, but its agent sent no identity and could not be asked what
      // it answered: a stopped or frozen agent, not another responder.
      failure.diagnosis = "agent-unreachable";
      failure.detail = fmt::format("{}, but {}'s agent sent no identity and could not be asked what it "
                                   "answered (stopped or frozen?)",
                                   evidence.protocol == Protocol::tcp ? "connected" : "answered", expected);
    } else {
      // (The destination is not asked about ports that answered: its
      // capture cannot tell who answered.)
      failure.diagnosis = "wrong-responder";
      failure.detail = "something answered, but not our agent";
    }
    return failure;
  case ProbeState::blocked_locally:
    failure.diagnosis = "blocked-by-source-firewall";
    failure.detail = fmt::format("{} refused to send ({})", evidence.source, std::strerror(segment.error));
    return failure;
  case ProbeState::admin_prohibited:
    failure.diagnosis = "rejected-by-destination-firewall";
    failure.detail = "ICMP administratively prohibited";
    return failure;
  case ProbeState::refused:
    if (seen && seen->ports_listening > 0) {
      failure.diagnosis = "rejected-by-destination-firewall";
      failure.detail = "refused while our listener is up";
    } else if (!seen && !evidence.held_by_service) {
      // Nothing listens because the agent is gone (stopped, killed): that
      // blames no flow, it leaves it untested.
      failure.diagnosis = "agent-unreachable";
      failure.detail = fmt::format("refused, and {}'s agent could not be asked what listens there (stopped?)", expected);
    } else {
      failure.diagnosis = "no-listener";
      failure.detail = evidence.held_by_service ? "refused; the port is held by another process"
                                                : "refused and nothing of ours listens there";
      unconfirmed(failure);
    }
    return failure;
  case ProbeState::unreachable:
    if (seen && seen->packets > 0 && evidence.arrivals.lost == 0) {
      failure.diagnosis = "rejected-by-destination-firewall";
      failure.detail = "the probe reached the destination, which answered unreachable";
      return failure;
    }
    [[fallthrough]];
  case ProbeState::filtered:
    return diagnose_silence(segment, evidence, failure);
  case ProbeState::error:
    failure.diagnosis = "error";
    failure.detail = std::strerror(segment.error);
    return failure;
  case ProbeState::unprobed:
    failure.diagnosis = "agent-unreachable";
    failure.detail = fmt::format("{}'s agent had not probed these ports when the check's deadline came",
                                 evidence.source);
    return failure;
  }
  return failure;
}

std::vector<FlowFailure>
diagnose_denied(const std::vector<Segment>& segments)
{
  std::vector<FlowFailure> failures;
  for (const auto& segment : segments) {
    if (segment.state != ProbeState::open) continue;
    failures.push_back({segment.range, "open", "unexpectedly-open",
                        segment.responder.empty() ? "reachable" : "answered by " + segment.responder});
  }
  return failures;
}

} // namespace portmatrix
