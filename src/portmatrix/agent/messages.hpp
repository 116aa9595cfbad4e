// Bodies of the control requests and responses (agent/control_protocol.hpp
// carries them), as plain structs with JSON conversion. Parsing never throws:
// a malformed body is an error value naming the problem.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "agent/responder.hpp"
#include "egress/runner.hpp"
#include "probe/prober.hpp"
#include "util/expected.hpp"

namespace portmatrix {

// The longest a probing may run: check's longest --deadline.
inline constexpr std::chrono::milliseconds k_max_probe_budget{3600 * 1000};

// hello: a check begins, and will end within `deadline`: the agent opens a
// window for it (Capture::open_window) that closes with its `done`, or a
// grace after the deadline. Optional on the wire ("deadline_ms", 1 to
// k_max_probe_budget; absent or 0: k_max_probe_budget).
struct HelloRequest
{
  std::chrono::milliseconds deadline{0};
};

// hello's answer: who are you, what do you hold, can you see packets.
struct HelloReply
{
  std::string node;
  std::string version;
  // This run of the agent: a random nonce drawn at its start. Every later
  // request names it, so a request recorded before the agent restarted is
  // refused (ControlRequest::instance).
  std::string instance;
  bool capture = false;
  std::string capture_error;
  std::size_t listeners = 0;
  std::vector<PortOwner> owners; // ports held by other processes
  // Packets the arrivals capture lost since the agent started (Capture::lost):
  // the check's baseline for what the observed round reports. Optional on
  // the wire ("capture_lost"; 0 from agents that do not count).
  std::uint64_t capture_lost = 0;
  // Where the arrivals capture stands (Capture::mark): the check asks what
  // arrived since then, not what earlier checks sent. Optional on the wire
  // ("capture_mark"; 0, everything, from older agents).
  std::uint64_t capture_mark = 0;
  // Where the listeners' count of the probes they answered stands
  // (Responder::answered_mark), for the same purpose. Optional on the wire
  // ("answered_mark"; 0 from older agents).
  std::uint64_t answered_mark = 0;
  // The check's window (Capture::Window::id): its probe, observed and done
  // requests name it (ControlRequest::window), and are refused once it closed.
  std::uint64_t window = 0;
  // The MTU of the interface holding the node's address: the size of the
  // overlay's full-size probes from it. Optional on the wire ("mtu"; 0:
  // unknown, from older agents).
  std::uint32_t mtu = 0;
};
// The most probes of one port a target may ask for (the VIP's: one per try of a backend).
inline constexpr int k_max_probe_repeat = 64;

// probe: probe these targets from your node.
struct ProbeRequest
{
  std::chrono::milliseconds timeout{1000};
  int retries = 1; // ProbeOptions::retries, 0 to 3 ("retries" is optional on the wire)
  // This probing belongs to the same check as the agent's previous one (the
  // check's VIP rounds): the departures capture keeps what it counted (and
  // lost) then, so the observed round still covers the first probing. False:
  // a new check, the counts start afresh. Optional on the wire ("continues").
  bool continues = false;
  // The agent answers within this, probing done or not: what it had not
  // probed by then comes back unprobed (the check's deadline is the user's,
  // and a busy source should not lose what it did probe). 0, or absent on
  // the wire ("budget_ms"): k_max_probe_budget, which is also its bound.
  std::chrono::milliseconds budget{0};
  // No probe starts while the agent's conntrack table is this full (percent
  // of its maximum; 100: no limit), so a check leaves room for a running
  // node's live connections (ProbeOptions::conntrack). Optional on the wire
  // ("conntrack_ceiling"; absent: the default).
  int conntrack_ceiling = k_default_conntrack_ceiling;
  std::vector<ProbeTarget> targets;
};

// Consecutive ports with the same outcome, so a 2,768-port range that is all
// open (or all filtered) travels as one segment.
struct Segment
{
  PortRange range;
  ProbeState state = ProbeState::filtered;
  int error = 0;
  std::string responder; // empty: no identity line
  bool authentic = false;
  std::vector<std::string> responders; // repeat > 1
  // repeat > 1: connections accepted and never answered, per port
  // (PortOutcome::silent). Optional on the wire ("silent"; absent: 0).
  std::uint32_t silent = 0;
};

struct ProbeReply
{
  std::vector<std::vector<Segment>> targets; // one list per requested target, in order
  // Per target, in order: the round trips of its answered probes in
  // microseconds (TargetOutcome::rtts). Optional on the wire ("rtt_us").
  std::vector<std::vector<std::uint32_t>> rtts{};
  // How long the agent held its probes back because its conntrack table was
  // full, and the fullest reading (Prober::held_for_conntrack). Optional on
  // the wire ("held_ms", "held_count", "held_max"; absent: never held).
  TableHold held;
};

// observed: did probes from `peer` to these ports arrive at your interface?
// With `departed`: did your own probes to `peer` leave your interface?
struct ObservedQuery
{
  Protocol protocol = Protocol::tcp;
  std::string peer; // JSON "source", or "destination" when departed
  PortRange range;
  bool departed = false;
  std::uint64_t since = 0; // arrivals only: what arrived after this mark (hello's capture_mark); optional
  std::uint64_t answered_since = 0; // arrivals only: probes our listeners answered after this mark
                                   // (hello's answered_mark); optional ("answered_since")
};

struct ObservedAnswer
{
  std::uint64_t packets = 0;      // probe packets seen in the range from the source
  std::uint32_t ports_seen = 0;   // distinct ports of the range that saw one
  std::uint32_t ports_listening = 0; // ports of the range our listeners hold
  // Ports of the range on which our listener answered a probe from the
  // source (maybe too late for its prober). Optional ("ports_answered"; 0
  // from older agents).
  std::uint32_t ports_answered = 0;
};

// The answers rest on captures that may have fallen behind: each reply says
// how many packets they lost, so a "not seen" is not taken for proof. Both
// counts are optional on the wire ("capture_lost", "departures_lost"; 0 from
// agents that do not count).
struct ObservedReply
{
  bool capture = false;    // arrivals were watched
  bool departures = false; // the SYNs of this agent's last probing were watched leaving
  std::uint64_t capture_lost = 0;    // arrivals lost since the agent started (as in hello: subtract its value)
  std::uint64_t departures_lost = 0; // departures lost during this agent's last probing
  std::vector<ObservedAnswer> answers;
};

// egress: check the inventory's egress list from your node (check --egress).
// The agent decides the hosts (its plan's list) and the proxy (the
// inventory's egress proxy, else its own environment), so the request cannot
// point it anywhere else: a request naming a proxy is refused.
struct EgressRequest
{
  std::chrono::milliseconds timeout{3000};
  std::chrono::milliseconds deadline{10000};
};

struct EgressReply
{
  std::string error; // the agent could not run the check (bad proxy setting)
  std::vector<EgressResult> results;
};

std::vector<Segment> compress(const TargetOutcome& outcome);

std::string to_json(const HelloRequest& request);
std::string to_json(const HelloReply& reply);
std::string to_json(const ProbeRequest& request);
std::string to_json(const ProbeReply& reply);
std::string to_json(const std::vector<ObservedQuery>& queries);
std::string to_json(const ObservedReply& reply);
std::string to_json(const EgressRequest& request);
std::string to_json(const EgressReply& reply);

Expected<HelloRequest, std::string> parse_hello_request(std::string_view text);
Expected<HelloReply, std::string> parse_hello_reply(std::string_view text);
Expected<ProbeRequest, std::string> parse_probe_request(std::string_view text);
Expected<ProbeReply, std::string> parse_probe_reply(std::string_view text);
Expected<std::vector<ObservedQuery>, std::string> parse_observed_queries(std::string_view text);
Expected<ObservedReply, std::string> parse_observed_reply(std::string_view text);
Expected<EgressRequest, std::string> parse_egress_request(std::string_view text);
Expected<EgressReply, std::string> parse_egress_reply(std::string_view text);

std::optional<ProbeState> parse_probe_state(std::string_view text);

} // namespace portmatrix
