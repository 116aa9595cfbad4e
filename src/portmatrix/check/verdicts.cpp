// Each flow's verdict and, when it fails, its diagnosis (diagnosis.cpp
// decides a segment from the evidence gathered in the other rounds).

#include "check/coordinator.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace portmatrix::checking {

// Diagnoses one segment of an allow flow to a node. Empty diagnosis: fine.
FlowFailure
Coordinator::diagnose(std::size_t index, std::size_t s, const Segment& segment, bool& service)
{
  const auto& flow = m_flows[index];
  SegmentEvidence evidence;
  evidence.protocol = flow.protocol;
  evidence.source = m_plan.inventory.nodes[flow.from].name;
  evidence.destination = m_plan.inventory.nodes[*flow.to].name;
  evidence.arrivals =
    witness(m_observation_index, index, s, &ObservedReply::capture, &ObservedReply::capture_lost);
  evidence.departures =
    witness(m_departure_index, index, s, &ObservedReply::departures, &ObservedReply::departures_lost);
  evidence.held_by_service = held_by_service(*flow.to, flow.protocol, segment.range);
  if (reached_destination(segment, evidence)) m_answered_late[*flow.to] += segment.range.size();
  return diagnose_segment(segment, evidence, service);
}

void
Coordinator::evaluate(std::size_t index, FlowResult& result)
{
  const auto* segments = segments_of(index);
  if (!segments) {
    result.verdict = Verdict::skip;
    result.diagnosis = "agent-unreachable";
    const auto& flow = m_flows[index];
    for (auto node : {std::optional(flow.from), flow.to}) {
      if (const auto* why = node ? absent(*node) : nullptr) {
        result.failures.push_back({flow.range, "unprobed", "agent-unreachable",
                                   fmt::format("no agent on {}: {}", m_plan.inventory.nodes[*node].name, *why)});
      }
    }
    return;
  }
  evaluate_probed(index, *segments, result);
  // Ports the source had not probed when the deadline came are untested:
  // listed, and the flow is a skip unless what was probed failed already.
  bool untested = false;
  SegmentEvidence evidence; // no capture was asked about them (nor is there a destination node for the VIP)
  evidence.source = m_plan.inventory.nodes[m_flows[index].from].name;
  for (const auto& segment : *segments) {
    if (segment.state != ProbeState::unprobed) continue;
    untested = true;
    bool service = false;
    result.failures.push_back(diagnose_segment(segment, evidence, service));
  }
  if (untested && result.verdict == Verdict::pass) {
    result.verdict = Verdict::skip;
    result.diagnosis = "agent-unreachable";
    result.answered_by.clear();
  }
}

// The verdict on what was probed (unprobed segments are left out).
void
Coordinator::evaluate_probed(std::size_t index, const std::vector<Segment>& segments, FlowResult& result)
{
  const auto& flow = m_flows[index];
  if (flow.expect == Expect::deny) {
    evaluate_denied(index, segments, result);
    return;
  }
  if (!flow.to) {
    evaluate_vip(index, segments, result);
    return;
  }
  bool service = false;
  for (std::size_t s = 0; s < segments.size(); ++s) {
    if (segments[s].state == ProbeState::unprobed) continue;
    auto failure = diagnose(index, s, segments[s], service);
    if (!failure.diagnosis.empty()) result.failures.push_back(std::move(failure));
  }
  result.verdict = verdict_of(result.failures);
  result.diagnosis = !result.failures.empty() ? result.failures.front().diagnosis : service ? "service" : "ok";
  if (result.diagnosis == "service") result.answered_by = answered_by(*flow.to, flow.protocol, flow.range);
}

// A deny fails when a probe got through; it passes only where the
// destination's agent said the ports were held (its listeners, or a
// service) while the probe did not get through: the firewall stopped it.
// Without that word (agent unreachable, nothing listening) it is a skip
// that says what the probe saw.
void
Coordinator::evaluate_denied(std::size_t index, const std::vector<Segment>& segments, FlowResult& result) const
{
  const auto& flow = m_flows[index];
  result.failures = diagnose_denied(segments);
  if (!result.failures.empty()) {
    result.verdict = Verdict::fail;
    result.diagnosis = "unexpectedly-open";
    return;
  }
  result.verdict = Verdict::pass;
  result.diagnosis = "closed";
  if (!flow.to) return; // the VIP: no agent of ours stands behind it
  const auto& destination = m_plan.inventory.nodes[*flow.to].name;
  for (std::size_t s = 0; s < segments.size(); ++s) {
    const auto& segment = segments[s];
    if (segment.state == ProbeState::unprobed) continue;
    const ObservedAnswer* answer = nullptr;
    if (auto it = m_observation_index.find({index, s}); it != m_observation_index.end()) {
      auto reply = m_observed.find(it->second.first);
      if (reply != m_observed.end() && it->second.second < reply->second.answers.size()) {
        answer = &reply->second.answers[it->second.second];
      }
    }
    auto held = answer ? answer->ports_listening + held_ports(*flow.to, flow.protocol, segment.range) : 0;
    if (answer && held >= segment.range.size()) continue;
    auto seen = state_name(segment.state);
    if (!answer) {
      result.failures.push_back({segment.range, seen, "agent-unreachable",
                                 fmt::format("{}, but {}'s agent could not be asked whether anything listened: "
                                             "no proof that its firewall stops the flow",
                                             seen, destination)});
    } else {
      result.failures.push_back({segment.range, seen, "no-listener",
                                 fmt::format("{}, but only {} of {} ports were held on {}: no proof that its "
                                             "firewall stops the flow",
                                             seen, held, segment.range.size(), destination)});
    }
  }
  if (!result.failures.empty()) {
    result.verdict = Verdict::skip;
    result.diagnosis = result.failures.front().diagnosis;
  }
}

// Ports of `range` held by services on `node`, as its hello said.
std::uint32_t
Coordinator::held_ports(std::size_t node, Protocol protocol, const PortRange& range) const
{
  if (!m_hello[node]) return 0;
  std::set<std::uint16_t> ports;
  for (const auto& owner : m_hello[node]->owners) {
    if (owner.protocol == protocol && range.min <= owner.port && owner.port <= range.max) ports.insert(owner.port);
  }
  return std::uint32_t(ports.size());
}

// Failures that only say a destination's agent could not be asked, or
// that nothing could be proven (not-probed), leave the flow untested: a
// skip, as the agents section says.
Verdict
Coordinator::verdict_of(const std::vector<FlowFailure>& failures)
{
  if (failures.empty()) return Verdict::pass;
  bool untested = std::all_of(failures.begin(), failures.end(), [](const FlowFailure& f) {
    return f.diagnosis == "agent-unreachable" || f.diagnosis == "not-probed";
  });
  return untested ? Verdict::skip : Verdict::fail;
}

bool
Coordinator::agent_reachable(const std::string& name) const
{
  return std::any_of(m_report.agents.begin(), m_report.agents.end(),
                     [&](const AgentStatus& agent) { return agent.node == name && agent.reachable; });
}

} // namespace portmatrix::checking
