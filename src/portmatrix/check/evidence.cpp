// The observe round: for failing probes, whether the packets reached the
// destination's interface (its capture) and whether its listener was up.

#include "check/coordinator.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace portmatrix::checking {

const std::vector<Segment>*
Coordinator::segments_of(std::size_t flow) const
{
  auto [source, target] = m_probe_index[flow];
  auto it = m_replies.find(source);
  if (source == SIZE_MAX || it == m_replies.end() || target >= it->second.targets.size()) return nullptr;
  return &it->second.targets[target];
}

// A segment of an allow flow to a node that is not a proven answer from
// that node: a failure, or a connection whose identity line did not come
// (its agent may have sent it too late).
bool
Coordinator::needs_observation(const Flow& flow, const Segment& segment) const
{
  if (!flow.to) return false;
  // A deny that held: the destination says whether anything listened, the
  // evidence that its firewall, not an empty port, stopped the probe.
  if (flow.expect == Expect::deny) return segment.state != ProbeState::open && segment.state != ProbeState::unprobed;
  if (segment.state == ProbeState::open) return !segment.authentic && segment.responder.empty();
  return segment.state != ProbeState::blocked_locally && segment.state != ProbeState::unprobed;
}

// A VIP flow's backends that no connection of its source reached: each one's
// agent is asked whether it answered the load balancers' connections to
// the port since hello. A busy backend answers the load balancer later than
// the prober waits (100 simulated nodes on two cores do), and that silence
// is no fault of the path. (The load balancer connects from its node's
// address: the backend cannot tell which source a connection came from,
// nor need it. The source reached the VIP, and the VIP the backend.)
void
Coordinator::ask_missed_backends(std::size_t index, const std::vector<Segment>& segments,
                                 const BalancerFlows& balancer_flows, const Ask& ask)
{
  const auto& flow = m_flows[index];
  if (flow.to || flow.expect != Expect::allow || flow.protocol != Protocol::tcp) return;
  const auto& nodes = m_plan.inventory.nodes;
  auto missing = missing_backends(flow, segments);
  for (auto backend : portmatrix::vip_backends(m_plan, flow)) {
    bool missed = std::find(missing.begin(), missing.end(), nodes[backend].name) != missing.end();
    if (!missed || !m_report.agents[backend].reachable || !m_hello[backend]) continue;
    bool ipv6 = nodes[backend].address.find(':') != std::string::npos;
    for (std::size_t balancer = 0; balancer < nodes.size(); ++balancer) {
      const auto& address = nodes[balancer].address;
      if (!nodes[balancer].has(Role::loadbalancer) || (address.find(':') != std::string::npos) != ipv6) continue;
      // The load balancer's own agent probes the backend's port too (the
      // masters' API port, from every node): from the same address, so the
      // backend's word could not tell the VIP's connections from those.
      auto direct = balancer_flows.equal_range({balancer, backend});
      bool probed = std::any_of(direct.first, direct.second, [&](const auto& entry) {
        return entry.second->protocol == flow.protocol && entry.second->range.overlaps(flow.range);
      });
      if (probed) continue;
      m_backend_index[{index, backend}].push_back(ask(backend, {flow.protocol, address, flow.range, false,
                                                                m_hello[backend]->capture_mark,
                                                                m_hello[backend]->answered_mark}));
    }
  }
}

// Asks each destination whether the failed probes arrived, and each source
// whether its unanswered SYNs left (connect() never says when the source's
// own output rules dropped one).
void
Coordinator::observed_round()
{
  std::map<std::size_t, std::vector<ObservedQuery>> by_node;
  Ask ask = [&](std::size_t node, ObservedQuery query) {
    auto& queries = by_node[node];
    queries.push_back(std::move(query));
    return std::make_pair(node, queries.size() - 1);
  };
  // The flows a load balancer's own agent probes, by (balancer, destination):
  // few, and looked up per backend a VIP flow missed.
  BalancerFlows balancer_flows;
  for (const auto& flow : m_flows) {
    if (flow.to && m_plan.inventory.nodes[flow.from].has(Role::loadbalancer)) {
      balancer_flows.emplace(std::make_pair(flow.from, *flow.to), &flow);
    }
  }
  for (std::size_t i = 0; i < m_flows.size(); ++i) {
    const auto* segments = segments_of(i);
    if (!segments) continue;
    const auto& flow = m_flows[i];
    const auto& from = m_plan.inventory.nodes[flow.from].address;
    ask_missed_backends(i, *segments, balancer_flows, ask);
    for (std::size_t s = 0; s < segments->size(); ++s) {
      const auto& segment = (*segments)[s];
      if (!flow.to && flow.expect == Expect::allow && flow.protocol == Protocol::tcp &&
          segment.state == ProbeState::filtered) {
        // Through the VIP too: did the source's SYNs leave it at all?
        m_departure_index[{i, s}] = ask(flow.from, {flow.protocol, m_plan.flow_address(flow), segment.range, true});
      }
      if (!needs_observation(flow, segment)) continue;
      if (m_report.agents[*flow.to].reachable) {
        // What arrived since hello: earlier checks' probes prove nothing now.
        const auto& hello = m_hello[*flow.to];
        m_observation_index[{i, s}] = ask(*flow.to, {flow.protocol, from, segment.range, false,
                                                     hello ? hello->capture_mark : 0, hello ? hello->answered_mark : 0});
      }
      if (flow.expect == Expect::allow && flow.protocol == Protocol::tcp && segment.state == ProbeState::filtered) {
        m_departure_index[{i, s}] =
          ask(flow.from, {flow.protocol, m_plan.inventory.nodes[*flow.to].address, segment.range, true});
      }
    }
  }
  if (by_node.empty()) return;
  std::vector<Call> calls;
  for (auto& [node, queries] : by_node) calls.push_back({node, request_for(node, "observed", to_json(queries)), {}});
  progress(fmt::format("asking {} agents what they saw", calls.size()));
  call_agents(calls, round_deadline(std::chrono::milliseconds(3000)));
  for (const auto& call : calls) {
    const auto& result = *call.result;
    if (!result || !result->ok) continue;
    auto reply = parse_observed_reply(result->body);
    if (!reply) continue;
    // The arrivals capture counts its losses since the agent started; this
    // check's are those since hello (fewer than then: the agent restarted,
    // and all it counts is this check's).
    if (m_hello[call.node] && reply->capture_lost >= m_hello[call.node]->capture_lost) {
      reply->capture_lost -= m_hello[call.node]->capture_lost;
    }
    m_observed[call.node] = std::move(*reply);
  }
}

// What a capture said of a segment's probes, as an agent's observed reply
// has it (`index`: where to find the answer; `could`: whether that capture
// ran; `lost`: what it lost during this check). Without an answer when the
// agent was not asked or did not answer.
CaptureWitness
Coordinator::witness(const std::map<std::pair<std::size_t, std::size_t>, std::pair<std::size_t, std::size_t>>& index, std::size_t flow, std::size_t segment, bool ObservedReply::*could, std::uint64_t ObservedReply::*lost) const
{
  CaptureWitness witness;
  auto it = index.find({flow, segment});
  if (it == index.end()) return witness;
  auto [node, query] = it->second;
  auto reply = m_observed.find(node);
  if (reply == m_observed.end() || query >= reply->second.answers.size()) return witness;
  witness.answer = &reply->second.answers[query];
  witness.watched = reply->second.*could;
  witness.lost = reply->second.*lost;
  return witness;
}

bool
Coordinator::held_by_service(std::size_t node, Protocol protocol, const PortRange& range) const
{
  if (!m_hello[node]) return false;
  return std::any_of(m_hello[node]->owners.begin(), m_hello[node]->owners.end(), [&](const PortOwner& owner) {
    return owner.protocol == protocol && range.min <= owner.port && owner.port <= range.max;
  });
}

// What the node's agent identified on the owned ports of `range`, distinct, "; "-joined.
std::string
Coordinator::answered_by(std::size_t node, Protocol protocol, const PortRange& range) const
{
  std::string text;
  if (!m_hello[node]) return text;
  for (const auto& owner : m_hello[node]->owners) {
    if (owner.protocol != protocol || owner.port < range.min || range.max < owner.port || owner.service.empty()) {
      continue;
    }
    if (text.find(owner.service) == std::string::npos) text += (text.empty() ? "" : "; ") + owner.service;
  }
  return text;
}

} // namespace portmatrix::checking
