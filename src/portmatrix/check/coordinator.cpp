// The check coordinator's frame: the rounds in order (run), hello, the probe
// round and its parts, coverage's evaluate round, egress, done, and the report
// the rounds add up to (finish). See coordinator.hpp.

#include "check/coordinator.hpp"

#include <algorithm>
#include <fstream>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "build_info.hpp"
#include "crypto/digest.hpp"

namespace portmatrix::checking {

namespace {

// Sends every call at once and runs the loop until all answered or `deadline`;
// `tick` (may be empty) hears of each answer and, between them, every 250 ms.
void
call_all(EventLoop& loop, const Plan& plan, const Token& token, std::vector<Call>& calls, Clock::time_point deadline,
         const CallTick& tick = {})
{
  std::vector<std::unique_ptr<ControlCall>> pending;
  std::size_t open = calls.size();
  std::uint64_t done = 0, total = 0;
  for (auto& call : calls) {
    total += call.weight;
    const auto& node = plan.inventory.nodes[call.node];
    auto address = SocketAddress::parse(node.address, plan.inventory.control_port);
    if (!address) {
      call.result = unexpected("bad address " + node.address);
      done += call.weight;
      --open;
      continue;
    }
    pending.push_back(std::make_unique<ControlCall>(loop, token, *address, call.request, deadline,
                                                    [&call, &open, &done](ControlResult result) {
                                                      call.result = std::move(result);
                                                      done += call.weight;
                                                      --open;
                                                    }));
  }
  auto told = Clock::now();
  std::uint64_t told_done = done;
  if (tick) tick(done, total);
  while (open > 0 && Clock::now() < deadline + std::chrono::milliseconds(50)) {
    loop.run_once(std::chrono::milliseconds(50));
    if (tick && (done != told_done || Clock::now() - told >= std::chrono::milliseconds(250))) {
      told = Clock::now();
      told_done = done;
      tick(done, total);
    }
  }
  for (auto& call : calls) {
    if (!call.result) call.result = unexpected(std::string("no answer in time"));
  }
}

// The report's header: what was checked, with which profile and binary.
void
describe_run(CheckReport& report, const Plan& plan)
{
  report.cluster = plan.inventory.cluster;
  report.profile = plan.inventory.profile;
  report.profile_version = plan.matrix.profile.version;
  report.portmatrix = build_info();
  if (std::ifstream in(plan.inventory.file, std::ios::binary); in) {
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.bad()) report.inventory_sha256 = sha256_hex(bytes);
  }
}

} // namespace

Expected<CheckReport, std::string>
Coordinator::run()
{
  timed("hello", [this] { hello_round(); });
  std::size_t refused = 0;
  std::size_t reachable = 0;
  for (const auto& status : m_report.agents) {
    reachable += status.reachable;
    refused += status.error.find("unauthenticated") != std::string::npos;
  }
  if (reachable == 0 && refused > 0) {
    return unexpected(fmt::format("{} agent(s) refused our requests: the token differs from the agents'", refused));
  }
  progress(fmt::format("{} of {} agents answered", reachable, m_report.agents.size()));
  m_flows = m_plan.flows();
  // vrrp and esp have no probe: check cannot prove them (their flows are
  // not listed as results).
  std::erase_if(m_flows, [](const Flow& f) { return !has_probe(f.protocol); });
  timed("probe", [this] { probe_round(); });
  timed("vip", [this] { vip_rounds(); });
  timed("mtu", [this] { mtu_rounds(); });
  timed("observe", [this] { observed_round(); });
  if (m_options.coverage.mode == CoverageMode::sample) timed("evaluate", [this] { evaluate_round(); });
  if (m_options.egress.enabled) timed("egress", [this] { egress_round(); });
  done_round();
  finish();
  return std::move(m_report);
}

// A request for `node`'s agent: it names the node and, after hello, the
// agent's instance and this check's window there, so it is good for that
// agent's present run, while this check runs, only.
ControlRequest
Coordinator::request_for(std::size_t node, std::string type, std::string body) const
{
  const auto* hello = node < m_hello.size() && m_hello[node] ? &*m_hello[node] : nullptr;
  return make_request(std::move(type), std::move(body), m_plan.inventory.nodes[node].name,
                      hello ? hello->instance : std::string(), hello ? hello->window : 0);
}

void
Coordinator::progress(const std::string& message)
{
  if (m_options.progress) m_options.progress(message);
}

// call_all, its progress reported as this round's, counted in `unit`.
void
Coordinator::call_agents(std::vector<Call>& calls, Clock::time_point deadline, std::string_view unit)
{
  CallTick tick;
  if (m_options.on_progress) {
    tick = [this, unit](std::uint64_t done, std::uint64_t total) {
      using std::chrono::duration_cast, std::chrono::milliseconds;
      auto now = Clock::now();
      m_options.on_progress({m_round, unit, done, total, duration_cast<milliseconds>(now - m_round_start),
                             duration_cast<milliseconds>(now - m_start)});
    };
  }
  call_all(m_loop, m_plan, m_token, calls, deadline, tick);
}

// The probes a request asks for: its ports, each as often as it repeats.
std::uint64_t
Coordinator::probes_of(const ProbeRequest& request)
{
  std::uint64_t n = 0;
  for (const auto& target : request.targets) n += std::uint64_t(target.range.size()) * std::max(target.repeat, 1);
  return n;
}

Clock::time_point
Coordinator::round_deadline(std::chrono::milliseconds wanted) const
{
  return std::min(m_deadline, Clock::now() + wanted);
}

// When the probing rounds must end, so the observe round has its time.
Clock::time_point
Coordinator::observe_by() const
{
  return m_deadline - std::min<Clock::duration>(std::chrono::milliseconds(3000), m_options.deadline / 4);
}

// How long an agent may probe when its answer is due at `by`: what is left,
// less the time its answer takes to come back (a tenth, at most a second).
std::chrono::milliseconds
Coordinator::probe_budget(Clock::time_point by)
{
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(by - Clock::now());
  auto budget = left - std::min<std::chrono::milliseconds>(std::chrono::milliseconds(1000), left / 10);
  return std::max(budget, std::chrono::milliseconds(1));
}

// Ports a source's agent had not probed when its budget ran out, and how
// many it was asked for (`overlay`: its targets that are the overlay's own
// probes, not the flows' ports): its note in the report says how far it got.
void
Coordinator::note_unfinished(std::size_t node, const ProbeReply& reply, const std::set<std::size_t>& overlay)
{
  std::uint64_t asked = 0, unprobed = 0;
  for (std::size_t t = 0; t < reply.targets.size(); ++t) {
    if (overlay.count(t)) continue;
    const auto& segments = reply.targets[t];
    for (const auto& segment : segments) {
      asked += segment.range.size();
      if (segment.state == ProbeState::unprobed) unprobed += segment.range.size();
    }
  }
  if (unprobed == 0 || !m_report.agents[node].error.empty()) return;
  m_report.agents[node].error =
    fmt::format("still probing when the deadline came: {} of {} ports not probed, their flows skipped ({})",
                unprobed, asked,
                reply.held.time.count() > 0 ? "its conntrack table held it back: see its note"
                                            : "a longer --deadline gives it time");
}

// A sentence more in the node's note ("; "-joined).
void
Coordinator::add_note(std::size_t node, const std::string& sentence)
{
  auto& note = m_report.agents[node].note;
  note += (note.empty() ? "" : "; ") + sentence;
}

// What a source held back for its conntrack table, over every probing of
// this check (the probe round and the VIP rounds): the note says it once.
void
Coordinator::add_hold(std::size_t node, const TableHold& held)
{
  if (held.time.count() <= 0) return;
  auto& total = m_held[node];
  total.time += held.time;
  if (held.fullest.count >= total.fullest.count) total.fullest = held.fullest;
}

void
Coordinator::hello_round()
{
  // The agents keep what they see for this check until its deadline (and
  // a grace), unless its `done` comes first.
  HelloRequest body{std::max(std::chrono::duration_cast<std::chrono::milliseconds>(m_deadline - Clock::now()),
                             std::chrono::milliseconds(1))};
  std::vector<Call> calls;
  for (std::size_t i = 0; i < m_plan.inventory.nodes.size(); ++i) {
    if (!absent(i)) calls.push_back({i, request_for(i, "hello", to_json(body)), {}});
  }
  // 3 s, and 10 ms more per agent: the coordinator does a TLS handshake
  // with each (13 s at 1,000 nodes, 53 s at 5,000).
  auto wait = std::chrono::milliseconds(3000) + std::chrono::milliseconds(10) * std::int64_t(calls.size());
  call_agents(calls, round_deadline(wait));
  m_hello.resize(m_plan.inventory.nodes.size());
  m_silent_agent.assign(m_plan.inventory.nodes.size(), 0);
  m_report.agents.resize(m_plan.inventory.nodes.size());
  for (std::size_t i = 0; i < m_plan.inventory.nodes.size(); ++i) {
    m_report.agents[i].node = m_plan.inventory.nodes[i].name;
    if (auto why = absent(i)) m_report.agents[i].error = *why;
  }
  for (const auto& call : calls) {
    AgentStatus status;
    status.node = m_plan.inventory.nodes[call.node].name;
    const auto& result = *call.result;
    if (!result) {
      status.error = result.error();
      m_silent_agent[call.node] = 1;
    } else if (!result->ok) {
      status.error = "agent refused: " + result->body;
    } else if (auto hello = parse_hello_reply(result->body); !hello) {
      status.error = "bad hello: " + hello.error();
    } else if (hello->node != status.node) {
      status.error = fmt::format("the agent at this address is '{}', not '{}'", hello->node, status.node);
    } else {
      status.reachable = true;
      status.capture = hello->capture;
      status.capture_error = hello->capture_error;
      for (const auto& owner : hello->owners) {
        status.owners.push_back(fmt::format("{}/{} {} (pid {})", owner.port, to_string(owner.protocol),
                                            owner.process.empty() ? "?" : owner.process, owner.pid));
      }
      m_hello[call.node] = std::move(*hello);
    }
    m_report.agents[call.node] = std::move(status);
  }
}

// Why node `i` has no agent (CheckOptions::absent), or nullptr.
const std::string*
Coordinator::absent(std::size_t i) const
{
  auto it = m_options.absent.find(m_plan.inventory.nodes[i].name);
  return it == m_options.absent.end() ? nullptr : &it->second;
}

void
Coordinator::probe_round()
{
  m_probe_index.assign(m_flows.size(), {SIZE_MAX, 0});
  m_sampled.assign(m_flows.size(), {});
  CoverageSelector selector(m_plan, m_options.coverage);
  m_report.coverage_options = m_options.coverage;
  m_report.ruleset_groups = selector.group_count();
  std::map<std::size_t, ProbeRequest> by_source;
  for (std::size_t i = 0; i < m_flows.size(); ++i) {
    const auto& flow = m_flows[i];
    auto ports = selector.ports(flow);
    m_report.coverage.add(selector, flow, ports);
    if (!m_report.agents[flow.from].reachable || (flow.to && absent(*flow.to))) continue;
    auto& request = by_source[flow.from];
    request.timeout = m_options.timeout;
    request.retries = m_options.retries;
    request.conntrack_ceiling = m_options.conntrack_ceiling;
    int repeat = flow.to ? 1 : vip_repeat(m_plan, flow);
    m_probe_index[i] = {flow.from, request.targets.size()};
    // A sampled flow is one target per run of its sampled ports; its
    // replies are joined into the first (join_sampled).
    for (const auto& range : ports) {
      auto& target = request.targets.emplace_back(ProbeTarget{flow.protocol, m_plan.flow_address(flow), range, repeat});
      // A destination whose agent sent nothing back to hello sends no
      // identity either: a connection is all its ports can tell, at once.
      target.identity = !(flow.to && m_silent_agent[*flow.to]);
    }
    if (ports.size() != 1 || ports.front() != flow.range) {
      m_sampled[i] = std::move(ports);
      continue; // an overlay's port range sampled: its ports probed, not its shape (a single port is never sampled)
    }
    // An overlay's port: the same probe in the overlay's shape too, and at
    // the source interface's MTU (check/overlay.cpp), where the destination's
    // agent answered hello: only an agent answers a shaped probe, and to a
    // node without one the shaped probes would only wait out their timeouts,
    // one after the other (they share the plain probe's address and port).
    if (flow.to && !m_report.agents[*flow.to].reachable) continue;
    if (auto shaped = shaped_target(flow, m_plan.matrix.profile.find_port(flow.port), request.targets.back())) {
      auto& overlay = m_overlay[i];
      overlay.shaped = {request.targets.size(), *shaped};
      request.targets.push_back(std::move(*shaped));
      if (auto full = full_size_target(overlay.shaped.second, mtu_of(flow.from))) {
        overlay.full = {request.targets.size(), *full};
        request.targets.push_back(std::move(*full));
      }
    }
  }
  // The probe round may use the whole deadline but what the observe round needs.
  send_probes(by_source, std::max(Clock::now(), observe_by()));
  join_sampled();
}

// Sends each source its probe request, in parts when it is larger than an
// agent accepts (split_probe_request): at most k_max_probings parts of a
// source at once, in waves that share the time left until `by`. A source
// whose part failed leaves all its flows untested (skip); it may still
// answer as a destination in the observed round.
void
Coordinator::send_probes(std::map<std::size_t, ProbeRequest>& by_source, Clock::time_point by)
{
  std::map<std::size_t, std::vector<ProbeRequest>> parts;
  std::size_t waves = 1;
  for (auto& [source, request] : by_source) {
    auto& list = parts[source] = split_probe_request(request, k_max_request_bytes, [&, id = source](const ProbeRequest& part) {
      return encode_request(request_for(id, "probe", to_json(part))).size() + k_message_header;
    });
    // Later waves continue the first's probing: the departures capture keeps its counts.
    for (std::size_t p = k_max_probings; p < list.size(); ++p) list[p].continues = true;
    waves = std::max(waves, (list.size() + k_max_probings - 1) / k_max_probings);
  }
  progress(fmt::format("probing {} flows from {} agents", m_flows.size(), by_source.size()));
  std::map<std::size_t, ProbeReply> joined;
  for (std::size_t wave = 0; wave < waves; ++wave) {
    auto wave_by = Clock::now() + (by - std::min(by, Clock::now())) / std::int64_t(waves - wave);
    std::vector<Call> calls;
    for (auto& [source, list] : parts) {
      if (!m_report.agents[source].error.empty()) continue; // a part failed already
      for (auto p = wave * k_max_probings; p < std::min(list.size(), (wave + 1) * k_max_probings); ++p) {
        list[p].budget = probe_budget(wave_by);
        calls.push_back({source, request_for(source, "probe", to_json(list[p])), {}, probes_of(list[p])});
      }
    }
    call_agents(calls, wave_by, "probes");
    for (auto& call : calls) {
      const auto& result = *call.result;
      auto& status = m_report.agents[call.node];
      if (!status.error.empty()) continue;
      if (!result || !result->ok) {
        status.error = !result ? "probe round: " + result.error() : "agent refused the probe request: " + result->body;
        continue;
      }
      auto reply = parse_probe_reply(result->body);
      if (!reply) {
        status.error = "bad probe reply: " + reply.error();
        continue;
      }
      join_probe_reply(joined[call.node], std::move(*reply));
    }
  }
  // Each source's overlay probes (shaped, full size), which are not the
  // flows' ports: gathered once, not per source (a flow per node pair).
  std::map<std::size_t, std::set<std::size_t>> overlay_targets;
  for (const auto& [flow, probes] : m_overlay) {
    overlay_targets[m_flows[flow].from].insert({probes.shaped.first, probes.full.first});
  }
  for (auto& [source, reply] : joined) {
    if (!m_report.agents[source].error.empty()) continue;
    note_unfinished(source, reply, overlay_targets[source]);
    add_hold(source, reply.held);
    m_replies[source] = std::move(reply);
  }
}

// A sampled flow's targets come back as one list of segments each: the
// first target's list gets them all, in port order, so that a flow has
// one list whatever its coverage.
void
Coordinator::join_sampled()
{
  for (std::size_t i = 0; i < m_flows.size(); ++i) {
    auto [source, first] = m_probe_index[i];
    auto it = m_replies.find(source);
    if (m_sampled[i].size() < 2 || source == SIZE_MAX || it == m_replies.end()) continue;
    auto& targets = it->second.targets;
    for (std::size_t t = first + 1; t < first + m_sampled[i].size() && t < targets.size(); ++t) {
      targets[first].insert(targets[first].end(), std::make_move_iterator(targets[t].begin()),
                            std::make_move_iterator(targets[t].end()));
      targets[t].clear();
    }
  }
}

// check --coverage sample: every agent evaluates its node's live firewalls
// for every port of every inbound flow (exact, no packets), all at once.
void
Coordinator::evaluate_round()
{
  const auto& nodes = m_plan.inventory.nodes;
  m_report.evaluation.resize(nodes.size());
  for (const auto& flow : m_flows) {
    if (flow.protocol != Protocol::tcp && flow.protocol != Protocol::udp) continue;
    if (flow.to) {
      m_report.evaluation[*flow.to].ports_expected += flow.range.size();
      continue;
    }
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].has(Role::loadbalancer)) m_report.evaluation[i].ports_expected += flow.range.size();
    }
  }
  std::vector<Call> calls;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    m_report.evaluation[i].node = nodes[i].name;
    m_report.evaluation[i].error = "agent unreachable";
    if (m_report.agents[i].reachable) calls.push_back({i, request_for(i, "evaluate", "{}"), {}});
  }
  progress(fmt::format("asking {} agents to evaluate their firewalls", calls.size()));
  call_agents(calls, round_deadline(std::chrono::milliseconds(10000)));
  for (const auto& call : calls) {
    auto& node = m_report.evaluation[call.node];
    const auto& result = *call.result;
    auto reply = result && result->ok ? parse_evaluate_reply(result->body) : unexpected(std::string());
    if (!result) node.error = result.error();
    else if (!result->ok) node.error = "agent refused: " + result->body;
    else if (!reply) node.error = "bad evaluate reply: " + reply.error();
    else {
      node.error.clear();
      node.reply = std::move(*reply);
    }
  }
}

// check --egress: every agent that answered hello checks the egress list
// from its node, all at once, with a budget of its own.
void
Coordinator::egress_round()
{
  auto deadline = std::min(m_options.egress.deadline, std::chrono::milliseconds(25000));
  EgressRequest body{m_options.egress.timeout, deadline};
  std::vector<Call> calls;
  for (std::size_t i = 0; i < m_report.agents.size(); ++i) {
    if (m_report.agents[i].reachable) calls.push_back({i, request_for(i, "egress", to_json(body)), {}});
  }
  call_agents(calls, Clock::now() + deadline + std::chrono::seconds(2));
  m_report.egress.resize(m_report.agents.size());
  for (std::size_t i = 0; i < m_report.agents.size(); ++i) {
    m_report.egress[i].node = m_report.agents[i].node;
    m_report.egress[i].error = "agent unreachable";
  }
  for (const auto& call : calls) {
    auto& node = m_report.egress[call.node];
    const auto& result = *call.result;
    auto reply = result && result->ok ? parse_egress_reply(result->body) : unexpected(std::string());
    if (!result) node.error = result.error();
    else if (!result->ok) node.error = "agent refused: " + result->body;
    else if (!reply) node.error = "bad egress reply: " + reply.error();
    else {
      node.error = reply->error;
      node.results = std::move(reply->results);
    }
  }
}

// The check ended: every agent that opened a window for it closes it and
// releases what its capture kept. Best effort, briefly: an agent that does
// not answer closes it when the deadline's grace ends.
void
Coordinator::done_round()
{
  std::vector<Call> calls;
  for (std::size_t i = 0; i < m_hello.size(); ++i) {
    if (m_hello[i] && m_hello[i]->window != 0) calls.push_back({i, request_for(i, "done", "{}"), {}});
  }
  if (!calls.empty()) call_all(m_loop, m_plan, m_token, calls, Clock::now() + std::chrono::milliseconds(500));
}

void
Coordinator::finish()
{
  describe_run(m_report, m_plan);
  m_report.untested = untested_requirements(m_plan);
  m_report.untested_policy = m_options.untested;
  m_report.passes_left_out = m_options.results == CheckOptions::Results::failures;
  m_answered_late.assign(m_plan.inventory.nodes.size(), 0);
  for (std::size_t i = 0; i < m_flows.size(); ++i) {
    const auto& flow = m_flows[i];
    FlowResult result;
    result.flow = flow;
    result.from = m_plan.inventory.nodes[flow.from].name;
    result.to = m_plan.flow_target(flow);
    result.to_address = m_plan.flow_address(flow);
    if (!flow.to) result.backends_expected = vip_backends(flow);
    result.sampled = std::move(m_sampled[i]);
    evaluate(i, result);
    evaluate_shaped(i, result);
    m_report.passed += result.verdict == Verdict::pass;
    m_report.failed += result.verdict == Verdict::fail;
    m_report.skipped += result.verdict == Verdict::skip;
    if (m_options.results == CheckOptions::Results::all || result.verdict != Verdict::pass) {
      m_report.results.push_back(std::move(result));
    }
  }
  measure_pairs();
  for (const auto& [node, held] : m_held) {
    add_note(node, fmt::format("held its probes back {:.1f} s: its conntrack table had {} of {} entries ({}%; "
                               "--conntrack-ceiling {} leaves the rest to live connections)",
                               held.time.count() / 1000.0, held.fullest.count, held.fullest.max,
                               held.fullest.max > 0 ? held.fullest.count * 100 / held.fullest.max : 0,
                               m_options.conntrack_ceiling));
  }
  for (std::size_t node = 0; node < m_answered_late.size(); ++node) {
    if (m_answered_late[node] == 0) continue;
    add_note(node, fmt::format("answered probes to {} port{} (counted per source) too late for the prober; their "
                               "flows pass on its word (an overloaded node answers late: a longer --timeout-ms "
                               "spares it; or its answers were lost on the way back)",
                               m_answered_late[node], m_answered_late[node] == 1 ? "" : "s"));
  }
  m_report.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - m_start);
}

} // namespace portmatrix::checking
