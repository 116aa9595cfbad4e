// The check coordinator. Three rounds, each sent to all agents at once and
// bounded by a deadline, on one EventLoop:
//   1. hello: which agents answer (and accept our token), what they hold,
//      whether they can capture;
//   2. probe: each source agent probes all flows that start at its node;
//   3. observed: for failing ports, the destination says whether the probe
//      packets reached its interface and whether its listener is up.
// Then every flow gets a verdict and, when it fails, a diagnosis (decided by
// diagnose_segment, check/diagnosis.cpp, from the evidence gathered here).
// hello gives each agent the check's deadline and opens a window there; every
// later request names it, and a last `done` closes it, so an agent keeps what
// its capture saw for this check only while the check runs. An agent
// that does not answer (or dies mid-run) turns its flows into skips; the run
// still ends by its deadline.
#include "check/check.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "agent/agent.hpp"
#include "agent/control_channel.hpp"
#include "agent/control_protocol.hpp"
#include "agent/messages.hpp"
#include "build_info.hpp"
#include "check/control_client.hpp"
#include "check/diagnosis.hpp"
#include "check/request_split.hpp"
#include "check/overlay.hpp"
#include "crypto/digest.hpp"
#include "model/provable.hpp"
#include "net/address.hpp"
#include "util/thousands.hpp"

namespace portmatrix {

std::string_view
to_string(Verdict verdict)
{
  switch (verdict) {
  case Verdict::pass: return "pass";
  case Verdict::fail: return "fail";
  case Verdict::skip: return "skip";
  }
  return "?";
}

bool
NodeEgress::ok() const
{
  return error.empty() &&
         std::all_of(results.begin(), results.end(), [](const EgressResult& r) { return r.verdict == EgressVerdict::ok; });
}

std::string
to_text(const CheckProgress& progress)
{
  std::string rate;
  if (progress.unit == "probes" && progress.round_elapsed.count() > 0) {
    rate = fmt::format(", {}/s", with_thousands(progress.done * 1000 / std::uint64_t(progress.round_elapsed.count())));
  }
  return fmt::format("{} round: {}/{} {}{}, {:.1f} s", progress.round, with_thousands(progress.done),
                     with_thousands(progress.total), progress.unit, rate, progress.elapsed.count() / 1000.0);
}

int
exit_status(const CheckReport& report)
{
  bool egress_ok = std::all_of(report.egress.begin(), report.egress.end(), [](const NodeEgress& n) { return n.ok(); });
  bool untested_ok = true; // and no warning (a pair above its round-trip bound)
  switch (report.untested_policy) {
  case UntestedPolicy::warn: break;
  case UntestedPolicy::fail: untested_ok = report.untested.empty() && report.warnings.empty(); break;
  }
  bool evaluation_ok = std::all_of(report.evaluation.begin(), report.evaluation.end(), [](const NodeEvaluation& n) {
    return n.complete() && n.reply.failed == 0 && n.reply.unknown == 0;
  });
  return report.failed == 0 && report.skipped == 0 && egress_ok && untested_ok && evaluation_ok ? 0 : 1;
}

namespace {

using Clock = EventLoop::Clock;

struct Call
{
  std::size_t node = 0;
  ControlRequest request;
  std::optional<ControlResult> result;
  std::uint64_t weight = 1; // what its answer completes, for progress (probes, or 1 agent)
};

// Progress of call_all: the weight of the calls answered, of all of them.
using CallTick = std::function<void(std::uint64_t done, std::uint64_t total)>;

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

class Coordinator
{
public:
  Coordinator(const Plan& plan, const Token& token, const CheckOptions& options)
    : m_plan(plan), m_token(token), m_options(options), m_start(Clock::now()), m_deadline(m_start + options.deadline)
  {
    m_report.started = std::chrono::system_clock::now();
  }

  Expected<CheckReport, std::string> run()
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

private:
  template <class F>
  void timed(const char* name, F&& round)
  {
    auto start = Clock::now();
    m_round = name;
    m_round_start = start;
    round();
    m_report.rounds.emplace_back(name, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start));
  }

  // A request for `node`'s agent: it names the node and, after hello, the
  // agent's instance and this check's window there, so it is good for that
  // agent's present run, while this check runs, only.
  ControlRequest request_for(std::size_t node, std::string type, std::string body) const
  {
    const auto* hello = node < m_hello.size() && m_hello[node] ? &*m_hello[node] : nullptr;
    return make_request(std::move(type), std::move(body), m_plan.inventory.nodes[node].name,
                        hello ? hello->instance : std::string(), hello ? hello->window : 0);
  }

  void progress(const std::string& message)
  {
    if (m_options.progress) m_options.progress(message);
  }

  // call_all, its progress reported as this round's, counted in `unit`.
  void call_agents(std::vector<Call>& calls, Clock::time_point deadline, std::string_view unit = "agents")
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
  static std::uint64_t probes_of(const ProbeRequest& request)
  {
    std::uint64_t n = 0;
    for (const auto& target : request.targets) n += std::uint64_t(target.range.size()) * std::max(target.repeat, 1);
    return n;
  }

  Clock::time_point round_deadline(std::chrono::milliseconds wanted) const
  {
    return std::min(m_deadline, Clock::now() + wanted);
  }

  // When the probing rounds must end, so the observe round has its time.
  Clock::time_point observe_by() const
  {
    return m_deadline - std::min<Clock::duration>(std::chrono::milliseconds(3000), m_options.deadline / 4);
  }

  // How long an agent may probe when its answer is due at `by`: what is left,
  // less the time its answer takes to come back (a tenth, at most a second).
  static std::chrono::milliseconds probe_budget(Clock::time_point by)
  {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(by - Clock::now());
    auto budget = left - std::min<std::chrono::milliseconds>(std::chrono::milliseconds(1000), left / 10);
    return std::max(budget, std::chrono::milliseconds(1));
  }

  // Ports a source's agent had not probed when its budget ran out, and how
  // many it was asked for: its note in the report says how far it got.
  void note_unfinished(std::size_t node, const ProbeReply& reply)
  {
    std::uint64_t asked = 0, unprobed = 0;
    std::set<std::size_t> overlay; // the overlay's own probes (shaped, full size): not the flows' ports
    for (const auto& [flow, probes] : m_overlay) {
      if (m_flows[flow].from == node) overlay.insert({probes.shaped.first, probes.full.first});
    }
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
  void add_note(std::size_t node, const std::string& sentence)
  {
    auto& note = m_report.agents[node].note;
    note += (note.empty() ? "" : "; ") + sentence;
  }

  // What a source held back for its conntrack table, over every probing of
  // this check (the probe round and the VIP rounds): the note says it once.
  void add_hold(std::size_t node, const TableHold& held)
  {
    if (held.time.count() <= 0) return;
    auto& total = m_held[node];
    total.time += held.time;
    if (held.fullest.count >= total.fullest.count) total.fullest = held.fullest;
  }

  void hello_round()
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
  const std::string* absent(std::size_t i) const
  {
    auto it = m_options.absent.find(m_plan.inventory.nodes[i].name);
    return it == m_options.absent.end() ? nullptr : &it->second;
  }

  // The backends a VIP flow must reach: the nodes of the frontend's backend role.
  std::vector<std::string> vip_backends(const Flow& flow) const
  {
    std::vector<std::string> names;
    for (auto node : portmatrix::vip_backends(m_plan, flow)) names.push_back(m_plan.inventory.nodes[node].name);
    return names;
  }

  void probe_round()
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
      for (const auto& range : ports) request.targets.push_back({flow.protocol, m_plan.flow_address(flow), range, repeat});
      if (ports.size() != 1 || ports.front() != flow.range) {
        m_sampled[i] = std::move(ports);
        continue; // an overlay's port range sampled: its ports probed, not its shape (a single port is never sampled)
      }
      // An overlay's port: the same probe in the overlay's shape too, and at
      // the source interface's MTU (check/overlay.cpp).
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
  void send_probes(std::map<std::size_t, ProbeRequest>& by_source, Clock::time_point by)
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
    for (auto& [source, reply] : joined) {
      if (!m_report.agents[source].error.empty()) continue;
      note_unfinished(source, reply);
      add_hold(source, reply.held);
      m_replies[source] = std::move(reply);
    }
  }

  // A sampled flow's targets come back as one list of segments each: the
  // first target's list gets them all, in port order, so that a flow has
  // one list whatever its coverage.
  void join_sampled()
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

  // The load balancer spreads every client's connections over its backends
  // in one round robin: the probes of several sources, in flight at once,
  // can interleave so that one source never lands on a backend. A VIP flow
  // that missed a backend is asked again, alone per source, up to twice;
  // what it reaches is added to what the probe round reached. Not for a
  // backend that is known silent (silent_backends) or whose agent did not
  // answer hello: asking again would only wait out the same timeout.
  void vip_rounds()
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

  // A VIP's port as all sources together saw it in the probe round.
  struct VipSeen
  {
    std::set<std::string> reached; // backends that answered some source
    std::uint64_t silent = 0;      // connections accepted and never answered (Segment::silent)
  };

  static std::string vip_key(const Flow& flow)
  {
    return fmt::format("{}/{}-{}", to_string(flow.protocol), flow.range.min, flow.range.max);
  }

  void gather_vip_seen()
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
  std::vector<std::string> silent_backends(const Flow& flow) const
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
  bool worth_asking_again(const Flow& flow, const std::vector<Segment>& segments) const
  {
    auto silent = silent_backends(flow);
    auto missing = missing_backends(flow, segments);
    return std::any_of(missing.begin(), missing.end(), [&](const std::string& name) {
      return agent_reachable(name) && std::find(silent.begin(), silent.end(), name) == silent.end();
    });
  }

  std::vector<std::string> missing_backends(const Flow& flow, const std::vector<Segment>& segments) const
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
  static void merge_vip_segments(std::vector<Segment>& into, const std::vector<Segment>& later)
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

  const std::vector<Segment>* segments_of(std::size_t flow) const
  {
    auto [source, target] = m_probe_index[flow];
    auto it = m_replies.find(source);
    if (source == SIZE_MAX || it == m_replies.end() || target >= it->second.targets.size()) return nullptr;
    return &it->second.targets[target];
  }

  // A segment of an allow flow to a node that is not a proven answer from
  // that node: a failure, or a connection whose identity line did not come
  // (its agent may have sent it too late).
  bool needs_observation(const Flow& flow, const Segment& segment) const
  {
    if (!flow.to) return false;
    // A deny that held: the destination says whether anything listened, the
    // evidence that its firewall, not an empty port, stopped the probe.
    if (flow.expect == Expect::deny) return segment.state != ProbeState::open && segment.state != ProbeState::unprobed;
    if (segment.state == ProbeState::open) return !segment.authentic && segment.responder.empty();
    return segment.state != ProbeState::blocked_locally && segment.state != ProbeState::unprobed;
  }

  // Asks each destination whether the failed probes arrived, and each source
  // whether its unanswered SYNs left (connect() never says when the source's
  // own output rules dropped one).
  void observed_round()
  {
    std::map<std::size_t, std::vector<ObservedQuery>> by_node;
    auto ask = [&](std::size_t node, ObservedQuery query) {
      auto& queries = by_node[node];
      queries.push_back(std::move(query));
      return std::make_pair(node, queries.size() - 1);
    };
    for (std::size_t i = 0; i < m_flows.size(); ++i) {
      const auto* segments = segments_of(i);
      if (!segments) continue;
      const auto& flow = m_flows[i];
      const auto& from = m_plan.inventory.nodes[flow.from].address;
      for (std::size_t s = 0; s < segments->size(); ++s) {
        const auto& segment = (*segments)[s];
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
  CaptureWitness witness(const std::map<std::pair<std::size_t, std::size_t>, std::pair<std::size_t, std::size_t>>& index,
                         std::size_t flow, std::size_t segment, bool ObservedReply::*could,
                         std::uint64_t ObservedReply::*lost) const
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

  bool held_by_service(std::size_t node, Protocol protocol, const PortRange& range) const
  {
    if (!m_hello[node]) return false;
    return std::any_of(m_hello[node]->owners.begin(), m_hello[node]->owners.end(), [&](const PortOwner& owner) {
      return owner.protocol == protocol && range.min <= owner.port && owner.port <= range.max;
    });
  }

  // What the node's agent identified on the owned ports of `range`, distinct, "; "-joined.
  std::string answered_by(std::size_t node, Protocol protocol, const PortRange& range) const
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

  // Diagnoses one segment of an allow flow to a node. Empty diagnosis: fine.
  FlowFailure diagnose(std::size_t index, std::size_t s, const Segment& segment, bool& service)
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

  void evaluate(std::size_t index, FlowResult& result)
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
  void evaluate_probed(std::size_t index, const std::vector<Segment>& segments, FlowResult& result)
  {
    const auto& flow = m_flows[index];
    if (flow.expect == Expect::deny) {
      evaluate_denied(index, segments, result);
      return;
    }
    if (!flow.to) {
      evaluate_vip(segments, result);
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
  void evaluate_denied(std::size_t index, const std::vector<Segment>& segments, FlowResult& result) const
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
  std::uint32_t held_ports(std::size_t node, Protocol protocol, const PortRange& range) const
  {
    if (!m_hello[node]) return 0;
    std::set<std::uint16_t> ports;
    for (const auto& owner : m_hello[node]->owners) {
      if (owner.protocol == protocol && range.min <= owner.port && owner.port <= range.max) ports.insert(owner.port);
    }
    return std::uint32_t(ports.size());
  }

  // An overlay port whose plain probe passed fails when its shaped probe
  // was dropped (encapsulation-dropped), or else its full-size one
  // (mtu-blackhole).
  void evaluate_shaped(std::size_t index, FlowResult& result) const
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
  const std::vector<Segment>* target_segments(std::size_t source, std::size_t target) const
  {
    auto reply = m_replies.find(source);
    if (reply == m_replies.end() || target >= reply->second.targets.size()) return nullptr;
    return &reply->second.targets[target];
  }

  std::uint32_t mtu_of(std::size_t node) const
  {
    return node < m_hello.size() && m_hello[node] ? m_hello[node]->mtu : 0;
  }

  // The overlay flows whose small shaped probe passed and full-size one did
  // not: a bounded binary search for the largest size that passes, one
  // size per flow and round, all sources at once (check/overlay.hpp), each
  // probe without retries.
  void mtu_rounds()
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
  void measure_pairs()
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

  // Failures that only say a destination's agent could not be asked, or
  // that nothing could be proven (not-probed), leave the flow untested: a
  // skip, as the agents section says.
  static Verdict verdict_of(const std::vector<FlowFailure>& failures)
  {
    if (failures.empty()) return Verdict::pass;
    bool untested = std::all_of(failures.begin(), failures.end(), [](const FlowFailure& f) {
      return f.diagnosis == "agent-unreachable" || f.diagnosis == "not-probed";
    });
    return untested ? Verdict::skip : Verdict::fail;
  }

  bool agent_reachable(const std::string& name) const
  {
    return std::any_of(m_report.agents.begin(), m_report.agents.end(),
                       [&](const AgentStatus& agent) { return agent.node == name && agent.reachable; });
  }

  void evaluate_vip(const std::vector<Segment>& segments, FlowResult& result) const
  {
    std::set<std::string> reached;
    bool untested = false;
    for (const auto& segment : segments) {
      for (const auto& name : segment.responders) reached.insert(name);
      untested |= segment.state == ProbeState::unprobed;
      if (segment.state != ProbeState::open && segment.state != ProbeState::unprobed) {
        result.failures.push_back({segment.range, state_name(segment.state),
                                   segment.state == ProbeState::blocked_locally ? "blocked-by-source-firewall"
                                                                                : "filtered",
                                   "the VIP did not answer"});
      }
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
      for (const auto& name : silent_backends(result.flow)) silent += (silent.empty() ? "" : ", ") + name;
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

  // check --coverage sample: every agent evaluates its node's live firewalls
  // for every port of every inbound flow (exact, no packets), all at once.
  void evaluate_round()
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
  void egress_round()
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
  void done_round()
  {
    std::vector<Call> calls;
    for (std::size_t i = 0; i < m_hello.size(); ++i) {
      if (m_hello[i] && m_hello[i]->window != 0) calls.push_back({i, request_for(i, "done", "{}"), {}});
    }
    if (!calls.empty()) call_all(m_loop, m_plan, m_token, calls, Clock::now() + std::chrono::milliseconds(500));
  }

  void finish()
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

  const Plan& m_plan;
  const Token& m_token;
  const CheckOptions& m_options;
  Clock::time_point m_start;
  Clock::time_point m_deadline;
  std::string_view m_round = "hello"; // the round running, and since when (progress)
  Clock::time_point m_round_start;
  EventLoop m_loop;
  CheckReport m_report;
  std::vector<Flow> m_flows;
  std::vector<std::optional<HelloReply>> m_hello;
  std::vector<std::pair<std::size_t, std::size_t>> m_probe_index; // flow -> (source node, target index)
  std::vector<std::vector<PortRange>> m_sampled;                   // flow -> its sampled ports (empty: all)
  std::map<std::size_t, ProbeReply> m_replies;                    // source node -> reply
  // An overlay flow's own probes (target index in its source's request, target), and its MTU search.
  struct OverlayProbes
  {
    std::pair<std::size_t, ProbeTarget> shaped{SIZE_MAX, {}};
    std::pair<std::size_t, ProbeTarget> full{SIZE_MAX, {}};
    std::optional<MtuSearch> search;
  };
  std::map<std::size_t, OverlayProbes> m_overlay; // flow -> its overlay probes
  std::map<std::string, VipSeen> m_vip_seen;                      // vip_key -> the probe round's view
  // (flow, segment) -> (node asked, index of the query in its request)
  std::map<std::pair<std::size_t, std::size_t>, std::pair<std::size_t, std::size_t>> m_observation_index;
  std::map<std::pair<std::size_t, std::size_t>, std::pair<std::size_t, std::size_t>> m_departure_index;
  std::map<std::size_t, ObservedReply> m_observed; // node asked -> its reply
  std::vector<std::uint64_t> m_answered_late;      // node -> ports whose late answer it vouched for
  std::map<std::size_t, TableHold> m_held;         // source node -> its probes held back for conntrack
};

} // namespace

Expected<CheckReport, std::string>
run_check(const Plan& plan, const Token& token, const CheckOptions& options)
{
  if (plan.inventory.nodes.empty()) return unexpected(std::string("the inventory has no nodes"));
  Coordinator coordinator(plan, token, options);
  return coordinator.run();
}

} // namespace portmatrix
