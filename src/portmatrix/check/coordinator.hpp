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
//
// The class is one, its rounds are split by concern over coordinator.cpp,
// vip_rounds.cpp, evidence.cpp, verdicts.cpp and path_rounds.cpp (the
// declarations below say which holds what). Internal to check/: run_check
// (check.hpp) is the interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/agent.hpp"
#include "agent/control_channel.hpp"
#include "agent/control_protocol.hpp"
#include "agent/messages.hpp"
#include "check/check.hpp"
#include "check/control_client.hpp"
#include "check/diagnosis.hpp"
#include "check/overlay.hpp"
#include "check/request_split.hpp"
#include "model/provable.hpp"
#include "net/address.hpp"

namespace portmatrix::checking {

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

class Coordinator
{
public:
  Coordinator(const Plan& plan, const Token& token, const CheckOptions& options)
    : m_plan(plan), m_token(token), m_options(options), m_start(Clock::now()), m_deadline(m_start + options.deadline)
  {
    m_report.started = std::chrono::system_clock::now();
  }

  Expected<CheckReport, std::string> run();

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

  // coordinator.cpp: the rounds in order (run), hello, probe, evaluate, egress, done, the report
  ControlRequest request_for(std::size_t node, std::string type, std::string body) const;
  void progress(const std::string& message);
  void call_agents(std::vector<Call>& calls, Clock::time_point deadline, std::string_view unit = "agents");
  static std::uint64_t probes_of(const ProbeRequest& request);
  Clock::time_point round_deadline(std::chrono::milliseconds wanted) const;
  Clock::time_point observe_by() const;
  static std::chrono::milliseconds probe_budget(Clock::time_point by);
  void note_unfinished(std::size_t node, const ProbeReply& reply, const std::set<std::size_t>& overlay);
  void add_note(std::size_t node, const std::string& sentence);
  void add_hold(std::size_t node, const TableHold& held);
  void hello_round();
  const std::string* absent(std::size_t i) const;
  void probe_round();
  void send_probes(std::map<std::size_t, ProbeRequest>& by_source, Clock::time_point by);
  void join_sampled();
  void evaluate_round();
  void egress_round();
  void done_round();
  void finish();

  // vip_rounds.cpp: a VIP's flows: asking again for silent backends, and their verdicts
  std::vector<std::string> vip_backends(const Flow& flow) const;
  void vip_rounds();
  static std::string vip_key(const Flow& flow);
  void gather_vip_seen();
  std::vector<std::string> silent_backends(const Flow& flow) const;
  bool worth_asking_again(const Flow& flow, const std::vector<Segment>& segments) const;
  std::vector<std::string> missing_backends(const Flow& flow, const std::vector<Segment>& segments) const;
  static void merge_vip_segments(std::vector<Segment>& into, const std::vector<Segment>& later);
  FlowFailure vip_failure(std::size_t index, std::size_t s, const Segment& segment) const;
  void evaluate_vip(std::size_t index, const std::vector<Segment>& segments, FlowResult& result);
  bool answered_the_load_balancer(std::size_t flow, std::size_t backend) const;

  // evidence.cpp: the observe round: what the destinations saw of failing probes
  const std::vector<Segment>* segments_of(std::size_t flow) const;
  bool needs_observation(const Flow& flow, const Segment& segment) const;
  void observed_round();
  using Ask = std::function<std::pair<std::size_t, std::size_t>(std::size_t node, ObservedQuery query)>;
  using BalancerFlows = std::multimap<std::pair<std::size_t, std::size_t>, const Flow*>;
  void ask_missed_backends(std::size_t index, const std::vector<Segment>& segments,
                           const BalancerFlows& balancer_flows, const Ask& ask);
  CaptureWitness witness(const std::map<std::pair<std::size_t, std::size_t>, std::pair<std::size_t, std::size_t>>& index,
                         std::size_t flow, std::size_t segment, bool ObservedReply::*could,
                         std::uint64_t ObservedReply::*lost) const;
  bool held_by_service(std::size_t node, Protocol protocol, const PortRange& range) const;
  std::string answered_by(std::size_t node, Protocol protocol, const PortRange& range) const;

  // verdicts.cpp: each flow's verdict and diagnosis from the evidence
  FlowFailure diagnose(std::size_t index, std::size_t s, const Segment& segment, bool& service);
  void evaluate(std::size_t index, FlowResult& result);
  void evaluate_probed(std::size_t index, const std::vector<Segment>& segments, FlowResult& result);
  void evaluate_denied(std::size_t index, const std::vector<Segment>& segments, FlowResult& result) const;
  std::uint32_t held_ports(std::size_t node, Protocol protocol, const PortRange& range) const;
  static Verdict verdict_of(const std::vector<FlowFailure>& failures);
  bool agent_reachable(const std::string& name) const;

  // path_rounds.cpp: the overlay's shaped probes, the path-MTU search, round-trip times
  void evaluate_shaped(std::size_t index, FlowResult& result) const;
  const std::vector<Segment>* target_segments(std::size_t source, std::size_t target) const;
  std::uint32_t mtu_of(std::size_t node) const;
  void mtu_rounds();
  void measure_pairs();

  // A VIP's port as all sources together saw it in the probe round.
  struct VipSeen
  {
    std::set<std::string> reached; // backends that answered some source
    std::uint64_t silent = 0;      // connections accepted and never answered (Segment::silent)
  };

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
  std::vector<char> m_silent_agent; // node -> its agent sent nothing back to hello (stopped, frozen, gone)
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
  // (VIP flow, backend node it missed) -> the backend's answers about each load balancer's connections
  std::map<std::pair<std::size_t, std::size_t>, std::vector<std::pair<std::size_t, std::size_t>>> m_backend_index;
  std::map<std::size_t, ObservedReply> m_observed; // node asked -> its reply
  std::vector<std::uint64_t> m_answered_late;      // node -> ports whose late answer it vouched for
  std::map<std::size_t, TableHold> m_held;         // source node -> its probes held back for conntrack
};

} // namespace portmatrix::checking
