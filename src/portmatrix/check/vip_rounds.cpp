// A VIP's flows: the probe round's view of each VIP port over all sources,
// asking the sources again while a backend stays unseen, and their verdicts.

#include "check/coordinator.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace portmatrix::checking {

// A segment the VIP did not answer, and where its probes went as far as the
// source's departures capture can tell: a TCP SYN that the source's own
// output rules dropped fails as silently as one the VIP ignored.
FlowFailure
Coordinator::vip_failure(std::size_t index, std::size_t s, const Segment& segment) const
{
  FlowFailure failure{segment.range, state_name(segment.state),
                      segment.state == ProbeState::blocked_locally ? "blocked-by-source-firewall" : "filtered",
                      "the VIP did not answer"};
  auto left = witness(m_departure_index, index, s, &ObservedReply::departures, &ObservedReply::departures_lost);
  if (!left.answer || !left.watched || segment.state != ProbeState::filtered) return failure;
  const auto& source = m_plan.inventory.nodes[m_flows[index].from].name;
  if (auto judged = diagnose_departures(left, source, " to the VIP", failure)) return *judged;
  failure.detail = fmt::format("the VIP did not answer: {} of {} ports' SYNs left {}", left.answer->ports_seen,
                               segment.range.size(), source);
  return failure;
}

// The backends a VIP flow must reach: the nodes of the frontend's backend role.
std::vector<std::string>
Coordinator::vip_backends(const Flow& flow) const
{
  std::vector<std::string> names;
  for (auto node : portmatrix::vip_backends(m_plan, flow)) names.push_back(m_plan.inventory.nodes[node].name);
  return names;
}

// The load balancer spreads every client's connections over its backends
// in one round robin: the probes of several sources, in flight at once,
// can interleave so that one source never lands on a backend. A VIP flow
// that missed a backend is asked again, alone per source, up to twice;
// what it reaches is added to what the probe round reached. Not for a
// backend that is known silent (silent_backends) or whose agent did not
// answer hello: asking again would only wait out the same timeout.
void
Coordinator::vip_rounds()
{
  gather_vip_seen();
  for (int pass = 0; pass < 2; ++pass) {
    std::map<std::size_t, ProbeRequest> by_source;
    std::map<std::size_t, std::vector<std::size_t>> flows_of; // source -> flows, in target order
    for (std::size_t i = 0; i < m_flows.size(); ++i) {
      const auto& flow = m_flows[i];
      const auto* segments = segments_of(i);
      if (flow.to || flow.expect != Expect::allow || !segments || !worth_asking_again(flow, *segments)) continue;
      auto& request = by_source[flow.from];
      request.timeout = m_options.timeout;
      request.retries = m_options.retries;
      request.conntrack_ceiling = m_options.conntrack_ceiling;
      // The observed round asks the source about the probe round's SYNs:
      // its departures capture must keep them.
      request.continues = true;
      int repeat = vip_repeat(m_plan, flow);
      request.targets.push_back({flow.protocol, m_plan.flow_address(flow), flow.range, repeat});
      flows_of[flow.from].push_back(i);
    }
    if (by_source.empty() || Clock::now() + m_options.timeout * 2 > observe_by()) return;
    std::vector<Call> calls;
    auto by = std::min(observe_by(), Clock::now() + m_options.timeout * 4);
    for (auto& [source, request] : by_source) {
      request.budget = probe_budget(by);
      calls.push_back({source, request_for(source, "probe", to_json(request)), {}, probes_of(request)});
    }
    progress(fmt::format("asking the VIP again from {} agents", calls.size()));
    call_agents(calls, by, "probes");
    for (const auto& call : calls) {
      const auto& result = *call.result;
      auto reply = result && result->ok ? parse_probe_reply(result->body) : unexpected(std::string("no reply"));
      if (!reply) continue;
      add_hold(call.node, reply->held);
      const auto& flows = flows_of[call.node];
      for (std::size_t t = 0; t < reply->targets.size() && t < flows.size(); ++t) {
        auto [source, target] = m_probe_index[flows[t]];
        merge_vip_segments(m_replies[source].targets[target], reply->targets[t]);
      }
    }
  }
}

std::string
Coordinator::vip_key(const Flow& flow)
{
  return fmt::format("{}/{}-{}", to_string(flow.protocol), flow.range.min, flow.range.max);
}

void
Coordinator::gather_vip_seen()
{
  m_vip_seen.clear();
  for (std::size_t i = 0; i < m_flows.size(); ++i) {
    const auto* segments = segments_of(i);
    if (m_flows[i].to || !segments) continue;
    auto& seen = m_vip_seen[vip_key(m_flows[i])];
    for (const auto& segment : *segments) {
      seen.reached.insert(segment.responders.begin(), segment.responders.end());
      seen.silent += segment.silent;
    }
  }
}

// The VIP's backends known silent: connections it accepted were never
// answered, and no source reached these backends, whose agents answered
// hello. (A backend the load balancer does not send to, or one whose agent
// is frozen, is missed without a silent connection, or is not asked.)
std::vector<std::string>
Coordinator::silent_backends(const Flow& flow) const
{
  std::vector<std::string> silent;
  auto it = m_vip_seen.find(vip_key(flow));
  if (it == m_vip_seen.end() || it->second.silent == 0) return silent;
  for (const auto& name : vip_backends(flow)) {
    if (!it->second.reached.count(name) && agent_reachable(name)) silent.push_back(name);
  }
  return silent;
}

// A backend this source missed that a second pass may still reach: one
// whose agent answered hello and that is not known silent.
bool
Coordinator::worth_asking_again(const Flow& flow, const std::vector<Segment>& segments) const
{
  auto silent = silent_backends(flow);
  auto missing = missing_backends(flow, segments);
  return std::any_of(missing.begin(), missing.end(), [&](const std::string& name) {
    return agent_reachable(name) && std::find(silent.begin(), silent.end(), name) == silent.end();
  });
}

std::vector<std::string>
Coordinator::missing_backends(const Flow& flow, const std::vector<Segment>& segments) const
{
  std::vector<std::string> missing;
  for (const auto& name : vip_backends(flow)) {
    bool reached = std::any_of(segments.begin(), segments.end(), [&](const Segment& segment) {
      return std::find(segment.responders.begin(), segment.responders.end(), name) != segment.responders.end();
    });
    if (!reached) missing.push_back(name);
  }
  return missing;
}

// Adds the backends a later VIP pass reached to the segments of the first;
// a port that opened now counts as open.
void
Coordinator::merge_vip_segments(std::vector<Segment>& into, const std::vector<Segment>& later)
{
  for (const auto& segment : later) {
    for (auto& existing : into) {
      if (existing.range.max < segment.range.min || segment.range.max < existing.range.min) continue;
      for (const auto& name : segment.responders) {
        if (std::find(existing.responders.begin(), existing.responders.end(), name) == existing.responders.end()) {
          existing.responders.push_back(name);
        }
      }
      if (existing.state != ProbeState::open && segment.state == ProbeState::open) {
        existing.state = segment.state;
        existing.error = 0;
      }
    }
  }
}

// Whether `backend`'s agent answered the load balancers' connections to
// every port of VIP flow `flow` (see ask_missed_backends): then the VIP
// reached it, and only its answer came too late for the prober.
bool
Coordinator::answered_the_load_balancer(std::size_t flow, std::size_t backend) const
{
  auto it = m_backend_index.find({flow, backend});
  if (it == m_backend_index.end()) return false;
  std::uint64_t answered = 0;
  for (auto [node, query] : it->second) {
    auto reply = m_observed.find(node);
    if (reply != m_observed.end() && query < reply->second.answers.size()) {
      answered += reply->second.answers[query].ports_answered;
    }
  }
  return answered >= m_flows[flow].range.size();
}

void
Coordinator::evaluate_vip(std::size_t index, const std::vector<Segment>& segments, FlowResult& result)
{
  std::set<std::string> reached;
  bool untested = false;
  for (std::size_t s = 0; s < segments.size(); ++s) {
    const auto& segment = segments[s];
    for (const auto& name : segment.responders) reached.insert(name);
    untested |= segment.state == ProbeState::unprobed;
    if (segment.state != ProbeState::open && segment.state != ProbeState::unprobed) {
      result.failures.push_back(vip_failure(index, s, segment));
    }
  }
  // A backend that answered the load balancer too late was reached, as its
  // agent vouches (and the agents section counts).
  for (auto backend : portmatrix::vip_backends(m_plan, result.flow)) {
    const auto& name = m_plan.inventory.nodes[backend].name;
    if (reached.count(name) || !answered_the_load_balancer(index, backend)) continue;
    reached.insert(name);
    m_answered_late[backend] += result.flow.range.size();
  }
  result.backends_reached.assign(reached.begin(), reached.end());
  // A backend whose agent cannot be asked (stopped, frozen) answers no
  // identity: not reaching it says nothing of the load balancer.
  std::string missing, frozen;
  for (const auto& name : result.backends_expected) {
    if (reached.count(name)) continue;
    auto& list = agent_reachable(name) ? missing : frozen;
    list += (list.empty() ? "" : ", ") + name;
  }
  if (result.failures.empty() && !missing.empty() && !untested) {
    std::string silent;
    for (const auto& name : silent_backends(result.flow)) {
      if (!reached.count(name)) silent += (silent.empty() ? "" : ", ") + name;
    }
    result.failures.push_back(
      {result.flow.range, "open", "wrong-responder",
       silent.empty() ? fmt::format("the VIP never reached {}", missing)
                      : fmt::format("the VIP never reached {}; {} never answered the connections the VIP sent "
                                    "(silent after one timeout, not asked again)",
                                    missing, silent)});
  } else if (result.failures.empty() && !frozen.empty() && !untested) {
    result.failures.push_back({result.flow.range, "open", "agent-unreachable",
                               fmt::format("the VIP never reached {}, whose agent could not be asked (stopped or "
                                           "frozen?)",
                                           frozen)});
  }
  result.verdict = verdict_of(result.failures);
  result.diagnosis = result.failures.empty() ? "ok" : result.failures.front().diagnosis;
}

} // namespace portmatrix::checking
