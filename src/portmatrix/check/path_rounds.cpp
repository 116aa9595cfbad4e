// The overlay's own probes (overlay.hpp decides what they add), the path-MTU
// search and the round-trip times per node pair.

#include "check/coordinator.hpp"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace portmatrix::checking {

// An overlay port whose plain probe passed fails when its shaped probe
// was dropped (encapsulation-dropped), or else its full-size one
// (mtu-blackhole).
void
Coordinator::evaluate_shaped(std::size_t index, FlowResult& result) const
{
  auto overlay = m_overlay.find(index);
  if (overlay == m_overlay.end()) return;
  const auto* shaped = target_segments(m_flows[index].from, overlay->second.shaped.first);
  const auto* plain = segments_of(index);
  // Only a plain probe the prober saw answered says the shape is to blame:
  // one that passed on the agent's word (a late answer) says the agent is slow.
  if (!shaped || !plain || !answered_by_agent(*plain, result.to)) return;
  auto failures = diagnose_shaped(result, overlay->second.shaped.second, *shaped);
  const auto* full = target_segments(m_flows[index].from, overlay->second.full.first);
  if (failures.empty() && full && result.verdict == Verdict::pass && answered_by_agent(*shaped, result.to)) {
    MtuEvidence evidence{result.from, result.to, mtu_of(m_flows[index].from), mtu_of(*m_flows[index].to),
                         overlay->second.search};
    if (auto failure = diagnose_full_size(overlay->second.full.second, *full, evidence)) failures.push_back(*failure);
  }
  if (failures.empty()) return;
  // A destination agent that failed during the check (killed between the
  // plain probe and the shaped one: its port then refuses) cannot say
  // whether the shape was dropped: the flow is skipped, not blamed on it.
  if (const auto& to = m_report.agents[*m_flows[index].to]; !to.error.empty()) {
    result.verdict = Verdict::skip;
    result.diagnosis = "agent-unreachable";
    result.failures = {{failures.front().ports, failures.front().state, "agent-unreachable",
                        fmt::format("plain UDP passed; the overlay-shaped probe could not be judged: {}'s agent "
                                    "failed during the check ({})",
                                    result.to, to.error)}};
    return;
  }
  result.failures = std::move(failures);
  result.verdict = Verdict::fail;
  result.diagnosis = result.failures.front().diagnosis;
}

// The segments of target `target` of `source`'s probe reply, or nullptr.
const std::vector<Segment>*
Coordinator::target_segments(std::size_t source, std::size_t target) const
{
  auto reply = m_replies.find(source);
  if (reply == m_replies.end() || target >= reply->second.targets.size()) return nullptr;
  return &reply->second.targets[target];
}

std::uint32_t
Coordinator::mtu_of(std::size_t node) const
{
  return node < m_hello.size() && m_hello[node] ? m_hello[node]->mtu : 0;
}

// The overlay flows whose small shaped probe passed and full-size one did
// not: a bounded binary search for the largest size that passes, one
// size per flow and round, all sources at once (check/overlay.hpp), each
// probe without retries.
void
Coordinator::mtu_rounds()
{
  for (auto& [i, overlay] : m_overlay) {
    const auto& flow = m_flows[i];
    const auto* shaped = target_segments(flow.from, overlay.shaped.first);
    const auto* full = target_segments(flow.from, overlay.full.first);
    const auto& to = m_plan.inventory.nodes[*flow.to].name;
    if (!shaped || !full || !answered_by_agent(*shaped, to) || answered_by_agent(*full, to)) continue;
    bool unprobed = std::any_of(full->begin(), full->end(), [](const Segment& s) { return s.state == ProbeState::unprobed; });
    if (unprobed) continue;
    bool ipv6 = overlay.shaped.second.address.find(':') != std::string::npos;
    overlay.search = MtuSearch{shaped_probe_size(overlay.shaped.second, ipv6), overlay.full.second.size, 0};
  }
  for (int step = 0; step < k_max_mtu_steps; ++step) {
    std::map<std::size_t, ProbeRequest> by_source;
    std::map<std::size_t, std::vector<std::size_t>> flows_of; // source -> flows, in target order
    for (auto& [i, overlay] : m_overlay) {
      if (!overlay.search || overlay.search->done()) continue;
      const auto& flow = m_flows[i];
      auto& request = by_source[flow.from];
      request.retries = 0;
      request.continues = true;
      request.conntrack_ceiling = m_options.conntrack_ceiling;
      request.timeout = m_options.timeout;
      auto target = overlay.full.second;
      target.range.max = target.range.min;
      target.size = std::uint16_t(overlay.search->next());
      request.targets.push_back(std::move(target));
      flows_of[flow.from].push_back(i);
    }
    if (by_source.empty() || Clock::now() + m_options.timeout * 2 > observe_by()) return;
    std::vector<Call> calls;
    auto by = std::min(observe_by(), Clock::now() + m_options.timeout * 2 + std::chrono::milliseconds(500));
    for (auto& [source, request] : by_source) {
      request.budget = probe_budget(by);
      calls.push_back({source, request_for(source, "probe", to_json(request)), {}});
    }
    progress(fmt::format("searching the path MTU of {} overlay flows", flows_of.size()));
    call_agents(calls, by, "probes");
    for (const auto& call : calls) {
      const auto& result = *call.result;
      auto reply = result && result->ok ? parse_probe_reply(result->body) : unexpected(std::string("no reply"));
      const auto& flows = flows_of[call.node];
      for (std::size_t t = 0; t < flows.size(); ++t) {
        auto& overlay = m_overlay[flows[t]];
        const auto* segments = reply && t < reply->targets.size() ? &reply->targets[t] : nullptr;
        if (!segments || std::any_of(segments->begin(), segments->end(),
                                     [](const Segment& s) { return s.state == ProbeState::unprobed; })) {
          overlay.search->steps = k_max_mtu_steps; // no answer from the source: the search ends where it is
          continue;
        }
        const auto& to = m_plan.inventory.nodes[*m_flows[flows[t]].to].name;
        overlay.search->record(overlay.search->next(), answered_by_agent(*segments, to));
      }
    }
  }
}

// Per pair of nodes with a flow between them: the round trips of every
// probe answered (median, p99), the path MTU the overlay's full-size
// probes found, and a requirement's round-trip bound; a warning for each
// pair above its bound.
void
Coordinator::measure_pairs()
{
  std::map<std::pair<std::size_t, std::size_t>, std::size_t> index;
  std::vector<std::vector<std::uint32_t>> samples;
  std::vector<std::string> bounded_by;
  for (std::size_t i = 0; i < m_flows.size(); ++i) {
    const auto& flow = m_flows[i];
    auto source = m_probe_index[i].first;
    auto target = m_probe_index[i].second;
    if (!flow.to || source == SIZE_MAX) continue;
    auto [it, fresh] = index.emplace(std::make_pair(flow.from, *flow.to), m_report.pairs.size());
    if (fresh) {
      m_report.pairs.push_back({m_plan.inventory.nodes[flow.from].name, m_plan.inventory.nodes[*flow.to].name, 0,
                                mtu_of(flow.from), mtu_of(*flow.to)});
      samples.emplace_back();
      bounded_by.emplace_back();
    }
    auto at = it->second;
    auto& pair = m_report.pairs[at];
    auto add = [&](std::size_t t) {
      auto reply = m_replies.find(source);
      if (reply == m_replies.end() || t >= reply->second.rtts.size()) return;
      samples[at].insert(samples[at].end(), reply->second.rtts[t].begin(), reply->second.rtts[t].end());
    };
    add(target);
    for (const auto& requirement : m_plan.matrix.profile.requirements) {
      if (requirement.max_rtt.count() == 0 || requirement.port != flow.port || requirement.protocol != flow.protocol ||
          requirement.from != flow.from_role || requirement.to != flow.to_role) {
        continue;
      }
      if (pair.rtt_bound.count() == 0 || requirement.max_rtt < pair.rtt_bound) {
        pair.rtt_bound = requirement.max_rtt;
        bounded_by[at] = fmt::format("{} ({}/{})", requirement.port, to_string(requirement.range),
                                             to_string(requirement.protocol));
      }
    }
    auto overlay = m_overlay.find(i);
    if (overlay == m_overlay.end()) continue;
    add(overlay->second.shaped.first);
    const auto* full = target_segments(source, overlay->second.full.first);
    std::uint32_t mtu = full && answered_by_agent(*full, pair.to) ? overlay->second.full.second.size
                        : overlay->second.search && overlay->second.search->steps > 0 ? overlay->second.search->passed
                                                                  : 0;
    pair.path_mtu = std::max(pair.path_mtu, mtu);
  }
  for (std::size_t p = 0; p < m_report.pairs.size(); ++p) {
    auto& pair = m_report.pairs[p];
    auto summary = summarize_rtts(std::move(samples[p]));
    pair.rtt_samples = summary.samples;
    pair.rtt_median = summary.median;
    pair.rtt_p99 = summary.p99;
    if (pair.rtt_bound.count() > 0 && summary.samples > 0 && summary.median > pair.rtt_bound) {
      m_report.warnings.push_back(fmt::format("{} -> {}: round trip {:.1f} ms (median of {}; p99 {:.1f} ms), above "
                                              "the {} ms bound of {}",
                                              pair.from, pair.to, summary.median.count() / 1000.0, summary.samples,
                                              summary.p99.count() / 1000.0, pair.rtt_bound.count(), bounded_by[p]));
    }
  }
}

} // namespace portmatrix::checking
