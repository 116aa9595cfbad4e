// The agent's implementation (Agent::Impl), private to agent/: one struct,
// its members defined one file per concern (the declarations say which).
// agent.cpp says what the agent does and how it defends itself.
#pragma once

#include "agent/agent.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <iostream>
#include <map>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/capture.hpp"
#include "agent/control_channel.hpp"
#include "agent/control_protocol.hpp"
#include "agent/evaluate.hpp"
#include "agent/firewall_reader.hpp"
#include "agent/encapsulation.hpp"
#include "agent/log_limiter.hpp"
#include "agent/messages.hpp"
#include "agent/owner_identifier.hpp"
#include "agent/privileges.hpp"
#include "agent/responder.hpp"
#include "agent/tls_health.hpp"
#include "host/conntrack.hpp"
#include "host/interfaces.hpp"
#include "model/provable.hpp"
#include "net/address.hpp"
#include "net/termination.hpp"
#include "plan/egress.hpp"
#include "probe/prober.hpp"

#ifndef PORTMATRIX_VERSION
#define PORTMATRIX_VERSION "0.0.0"
#endif

namespace portmatrix {

// How long the outbound capture stays open after this agent's last probing:
// SYNs still queued in its socket are read, then it closes (its counts stay
// for the check's observe round).
constexpr std::chrono::milliseconds k_departures_linger{2000};

// An observed request is answered in slices of about this much work, each a
// turn of the loop, so requests and probes that arrive meanwhile are served
// between them.
constexpr std::chrono::microseconds k_observed_slice{2000};
// An observed request still not answered after this is abandoned with an
// error (check waits 3 s for the round): its work is bounded in time too.
constexpr std::chrono::seconds k_observed_limit{30};

// What this node may be asked to probe: the flows that start here.
struct AllowedTarget
{
  Protocol protocol;
  std::string address;
  PortRange range;
  bool vip;
};

inline std::string
error_body(std::string_view message)
{
  return nlohmann::json{{"error", message}}.dump();
}

struct Agent::Impl
{
  struct Connection
  {
    std::uint64_t id = 0;
    Fd fd;
    std::optional<ControlChannel> channel; // agent side, k_max_request_bytes per request
    std::string out;
    bool close_after_write = false;
    std::uint64_t idle_timer = 0;
    std::uint64_t auth_timer = 0; // until its first authenticated request (k_control_auth_timeout)
    bool authenticated = false;
    int probing = 0; // probe requests of this connection still running: not idle
  };

  Impl(EventLoop& loop, const Plan& plan, const Node& node, const Token& token, std::ostream& log)
    : loop(loop), plan(plan), node(node), token(token), log(log), limited(loop, log, "portmatrix agent " + node.name),
      instance(random_hex(16)),
      responder(loop, token, node.name, node.address),
      capture(loop, node.address), departures(loop, node.address, Direction::outbound)
  {
    // Visited, not listed: a large cluster's flows never sit in memory at once.
    plan.for_each_flow([&](const Flow& flow) {
      if (plan.inventory.nodes[flow.from].name != node.name || !has_probe(flow.protocol)) return;
      allowed.push_back({flow.protocol, plan.flow_address(flow), flow.range, !flow.to.has_value()});
      max_probes += std::uint64_t(flow.range.size()) * (flow.to ? probes_per_port(flow) : k_max_probe_repeat);
    });
  }

  // agent.cpp: start-up (listeners, capture, control server, confinement)
  std::uint64_t probes_per_port(const Flow& flow) const;
  bool start(std::string& error, const std::function<std::string()>& after_setup);
  void serve_health_checks();
  void identify_owners();

  // agent_connections.cpp: the control server's connections: accept, TLS, messages in and out
  void accept_all();
  bool evict_unauthenticated();
  Connection* find(std::uint64_t id);
  void touch(std::uint64_t id);
  void close(std::uint64_t id);
  void on_io(std::uint64_t id, std::uint32_t events);
  bool take_messages(std::uint64_t id);
  void refuse(std::uint64_t id, const ChannelError& error, std::string_view output);
  void send(std::uint64_t id, const ControlResponse& response, bool close_after);
  void write(std::uint64_t id, std::string_view bytes, bool close_after);
  void flush(Connection& connection);
  void reply_error(std::uint64_t id, const std::string& request_id, std::string_view message, bool close_after);
  void handle(std::uint64_t id, const std::string& message);

  // agent_requests.cpp: the control requests: hello, done, probe, evaluate, observed, egress
  void handle_hello(std::uint64_t id, const ControlRequest& request);
  void handle_done(std::uint64_t id, const ControlRequest& request);
  void release_for_ended_checks();
  bool allowed_target(const ProbeTarget& target) const;
  void handle_probe(std::uint64_t id, const ControlRequest& request);
  void handle_evaluate(std::uint64_t id, const ControlRequest& request);
  void handle_observed(std::uint64_t id, const ControlRequest& request);
  void observe_slice(std::uint64_t job_id);
  void handle_egress(std::uint64_t id, const ControlRequest& request);
  void poll_egress(std::uint64_t id, std::string request_id, std::shared_ptr<std::future<std::vector<EgressResult>>> job);

  // An observed request being answered, slice by slice.
  struct ObservedJob
  {
    std::uint64_t connection = 0;
    std::string request_id;
    std::vector<ObservedQuery> queries;
    std::size_t query = 0; // the query being answered
    std::uint32_t port = 0; // its next port, from range.min
    std::chrono::steady_clock::time_point give_up;
    ObservedReply reply;
  };

  EventLoop& loop;
  const Plan& plan;
  const Node& node;
  const Token& token;
  std::ostream& log;
  LogLimiter limited; // what strangers can cause: counted past a few lines per 10 s
  std::string instance; // this run of the agent (HelloReply::instance)
  Responder responder;
  Capture capture;
  Capture departures; // outbound, while this agent probes
  std::uint64_t departures_timer = 0;
  bool departures_watched = false;
  std::unique_ptr<TlsHealthServer> tls;
  std::string capture_error;
  SocketAddress control_address;
  Fd listener;
  std::vector<AllowedTarget> allowed;
  std::uint64_t max_probes = 0; // what one probe request may ask for: every port of the allowed flows
  ReplayGuard replay;
  std::map<std::uint64_t, std::unique_ptr<Connection>> connections; // by id: oldest first
  std::unordered_map<std::uint64_t, std::unique_ptr<Prober>> probes;
  std::unordered_map<std::uint64_t, std::uint64_t> probe_windows; // probing -> the window of its check
  std::uint32_t interface_mtu = 0; // of the node's address: hello's mtu
  std::map<std::uint64_t, std::uint64_t> answered_marks; // open window -> the listeners' answered mark at its hello
  std::map<std::pair<Protocol, std::uint16_t>, std::string> services; // owners identified so far
  std::unique_ptr<OwnerIdentifier> identifier; // last: joined first, before what its callback touches
  std::uint64_t next_connection = 1;
  std::uint64_t next_probe = 1;
  std::map<std::uint64_t, std::shared_ptr<ObservedJob>> observing;
  std::uint64_t next_job = 1;
  bool egress_running = false;
  std::uint64_t rejected = 0;
  FirewallSource firewall_source = read_here(); // evaluate; run_agent's reads from a FirewallReader
  bool evaluating = false;
  std::string interface; // the node address's interface, for evaluate
};

} // namespace portmatrix
