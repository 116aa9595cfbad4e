// The agent. Everything runs on one EventLoop: listeners answering probes,
// the capture, the control server and the probes the agent runs for check,
// so a probe request never stops the agent from answering other probes.
//
// The control server is defensive: connections are capped and time out when
// idle; each is TLS 1.3 with this node's PSK (agent/control_channel.hpp), and
// nothing of a request is read before its handshake authenticated the peer
// (what comes before is bounded); every request must name this node and this run of the agent,
// and is replay-checked; a probe request may only name flows that start at
// this node (so the agent cannot be used as a scanner), duplicates merged and
// its total bounded by those flows; a check's hello opens a window (with the
// check's deadline) that its probe and observed requests must name, and that
// bounds its probings' budgets: `done`, or the deadline, closes it, and what
// the capture kept for the check is released; and every request's work is bounded and
// runs on the loop in slices (observed) or as the prober's events, so a
// `hello` is never held up. A client that cannot authenticate gets an alert
// and is disconnected; one that asks for too much gets an error; the others
// are unaffected.
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

namespace {

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

std::string
error_body(std::string_view message)
{
  return nlohmann::json{{"error", message}}.dump();
}

} // namespace

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

  // An overlay's port is probed plainly, in its shape and at full size (agent/encapsulation.hpp).
  std::uint64_t probes_per_port(const Flow& flow) const
  {
    const auto* port = plan.matrix.profile.find_port(flow.port);
    return port && port->encapsulation != Encapsulation::none ? k_overlay_probes_per_port : 1;
  }

  bool start(std::string& error, const std::function<std::string()>& after_setup)
  {
    auto address = SocketAddress::parse(node.address, plan.inventory.control_port);
    if (!address) {
      error = "bad node address " + node.address;
      return false;
    }
    control_address = *address;
    // For evaluate: the interface probes arrive on, which rules may match
    // (looked up now: the confined agent does not list interfaces).
    interface = interface_with_address(node.address).value_or("");
    listener.reset(::socket(address->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!listener || ::bind(listener.get(), address->get(), address->length()) != 0 ||
        ::listen(listener.get(), 64) != 0) {
      error = fmt::format("cannot listen on {} for the control channel: {}", address->to_string(), std::strerror(errno));
      return false;
    }
    loop.add(listener.get(), EPOLLIN, [this](std::uint32_t) { accept_all(); });

    raise_fd_limit();
    // The VIP's ports on a load balancer are haproxy's: the agent leaves them
    // free. A port several roles send to is bound (and reported) once. Ports
    // that must stay closed are bound too: a deny passes on the evidence that
    // something listened and the firewall stopped the probe.
    std::map<Protocol, std::vector<PortRange>> wanted;
    auto rules = plan.ingress(node, Plan::VipPorts::exclude);
    auto denied = plan.denied(node);
    rules.insert(rules.end(), denied.begin(), denied.end());
    for (const auto& rule : rules) {
      if (!has_probe(rule.protocol)) continue;
      wanted[rule.protocol].insert(wanted[rule.protocol].end(), rule.ports.begin(), rule.ports.end());
    }
    std::vector<ListenSpec> specs;
    for (auto& [protocol, ranges] : wanted) {
      for (const auto& range : merge_ranges(std::move(ranges))) specs.push_back({protocol, range});
    }
    responder.bind(specs);
    if (wanted.contains(Protocol::ipip) && !responder.listening(Protocol::ipip, 0)) {
      log << fmt::format("portmatrix agent {}: no raw socket for IP-in-IP (it needs CAP_NET_RAW and an IPv4 address): "
                         "probes of IP protocol 4 to this node go unanswered, and check reports their flows as not "
                         "proven\n",
                         node.name);
    }
    serve_health_checks();
    std::string capture_error_text;
    if (auto peers = capture.set_peers(capture_peers(plan.inventory)); !peers.empty()) {
      log << fmt::format("portmatrix agent {}: capture: {}\n", node.name, peers);
    }
    if (!capture.start(node.interface, capture_error_text)) capture_error = capture_error_text;
    interface_mtu = mtu_of_address(node.address);

    log << fmt::format("portmatrix agent {}: control on {}, {} listeners", node.name, address->to_string(),
                       responder.listener_count());
    log << (capture.active() ? ", capture on" : ", capture off (" + capture_error + ")") << "\n";
    if (after_setup) {
      if (auto failed = after_setup(); !failed.empty()) {
        error = failed;
        return false;
      }
    }
    identify_owners();
    for (const auto& owner : responder.owners()) {
      log << fmt::format("  {}/{} is held by {} (pid {}): probed as it is\n", owner.port, to_string(owner.protocol),
                         owner.process.empty() ? "an unknown process" : owner.process, owner.pid);
    }
    return true;
  }

  // Before the cluster exists, the agent answers the load balancer's API
  // health check (GET /healthz over TLS) on the backends' API port, so the
  // VIP check works with the configuration `portmatrix lb` generates.
  void serve_health_checks()
  {
    for (const auto& frontend : plan.matrix.profile.frontends) {
      const auto* port = plan.matrix.profile.find_port(frontend.port);
      if (frontend.health != HealthCheck::apiserver || !node.has(frontend.backend) || !port) continue;
      if (!responder.listening(Protocol::tcp, port->range.min)) continue; // a real API server holds it
      if (!tls) {
        tls = std::make_unique<TlsHealthServer>(loop);
        tls->set_priority_sources(load_balancer_addresses(plan.inventory));
      }
      if (!tls->ready()) {
        log << fmt::format("portmatrix agent {}: {}\n", node.name, tls->error());
        return;
      }
      responder.serve_tls(*tls, port->range.min);
    }
  }

  // Who answers on the ports held by other processes (in the background:
  // hello replies carry it once known). UDP owners are not probed.
  void identify_owners()
  {
    std::vector<OwnerIdentifier::Job> jobs;
    for (const auto& owner : responder.owners()) {
      if (owner.protocol != Protocol::tcp) continue;
      jobs.push_back({owner.protocol, owner.port, port_hint(plan.matrix.profile, owner.protocol, owner.port)});
    }
    if (jobs.empty()) return;
    identifier = std::make_unique<OwnerIdentifier>(
      loop, node.address, std::move(jobs), k_owner_identify_timeout,
      [this](const OwnerIdentifier::Job& job, const Identification& result) {
        services[{job.protocol, job.port}] = result.summary;
        log << fmt::format("portmatrix agent {}: {}/{} answers as: {}\n", node.name, job.port,
                           to_string(job.protocol), result.summary);
      });
  }

  void accept_all()
  {
    for (;;) {
      Fd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) return;
      if (connections.size() >= k_max_control_connections && !evict_unauthenticated()) {
        continue; // closed: every slot holds an authenticated client
      }
      auto connection = std::make_unique<Connection>();
      connection->id = next_connection++;
      connection->fd = std::move(fd);
      connection->channel.emplace(token, ChannelSide::agent, node.name, k_max_request_bytes);
      auto id = connection->id;
      int raw = connection->fd.get();
      connection->auth_timer = loop.after(k_control_auth_timeout, [this, id] {
        // A peer whose TLS handshake completed holds the token: the timer is
        // for strangers, not for a large request still arriving.
        auto proved = [](Connection* c) { return c->authenticated || c->channel->keyed(); };
        if (auto* late = find(id); !late || proved(late)) return;
        // A request may be waiting in the socket while this loop was behind
        // (a stopped or starved agent): read it before judging.
        on_io(id, EPOLLIN);
        if (auto* late = find(id); late && !proved(late)) {
          limited.event("control connections closed unauthenticated",
                        fmt::format("closed a control connection that sent no authenticated request within {} s",
                                    k_control_auth_timeout.count()));
          close(id);
        }
      });
      connections.emplace(id, std::move(connection));
      loop.add(raw, EPOLLIN, [this, id](std::uint32_t events) { on_io(id, events); });
      touch(id);
    }
  }

  // Frees a slot for a new connection: closes the oldest connection that
  // has not authenticated, after reading what it sent (a stranger's bytes
  // are refused and close it by themselves). Connections whose TLS hello was
  // accepted go last: a client with the token is mid-handshake there, while
  // a flood of strangers takes the other slots. Keyed and authenticated
  // connections are never closed for a newcomer. False when none was closed.
  bool evict_unauthenticated()
  {
    for (bool accepted_too : {false, true}) {
      for (auto it = connections.begin(); it != connections.end();) { // ordered by id: oldest first
        auto id = it->first;
        ++it; // reading below may close this connection, never another
        auto* connection = find(id);
        if (!connection || connection->authenticated || connection->channel->keyed()) continue;
        if (!accepted_too) {
          on_io(id, EPOLLIN);
          connection = find(id);
          if (!connection) return true; // refused or gone: its slot is free
          if (connection->authenticated || connection->channel->keyed() || connection->channel->hello_accepted()) {
            continue;
          }
        }
        close(id);
        return true;
      }
    }
    return false;
  }

  Connection* find(std::uint64_t id)
  {
    auto it = connections.find(id);
    return it == connections.end() ? nullptr : it->second.get();
  }

  void touch(std::uint64_t id)
  {
    auto* connection = find(id);
    if (!connection) return;
    loop.cancel(connection->idle_timer);
    connection->idle_timer = loop.after(k_control_idle_timeout, [this, id] {
      // A connection that waits for its own probing (a large cluster's
      // ranges take long on a busy host) is not idle.
      if (auto* waiting = find(id); waiting && waiting->probing > 0) {
        touch(id);
        return;
      }
      close(id);
    });
  }

  void close(std::uint64_t id)
  {
    auto it = connections.find(id);
    if (it == connections.end()) return;
    loop.cancel(it->second->idle_timer);
    loop.cancel(it->second->auth_timer);
    loop.remove(it->second->fd.get());
    connections.erase(it);
  }

  void on_io(std::uint64_t id, std::uint32_t events)
  {
    auto* connection = find(id);
    if (!connection) return;
    if (events & EPOLLOUT) flush(*connection);
    if (!(connection = find(id))) return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      // Each read goes through TLS at once: the handshake first (bounded
      // bytes), then records whose tag is checked before any of it is used.
      char buffer[16384];
      for (;;) {
        auto n = ::recv(connection->fd.get(), buffer, sizeof(buffer), 0);
        if (n > 0) {
          connection->channel->feed({buffer, std::size_t(n)});
          touch(id);
          if (!take_messages(id) || !(connection = find(id))) return;
          continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
          close(id);
          return;
        }
        if (errno != EINTR) break;
      }
    }
  }

  // Handles the whole messages received so far; false when the connection
  // is closed or closing.
  bool take_messages(std::uint64_t id)
  {
    for (auto* connection = find(id); connection && !connection->close_after_write; connection = find(id)) {
      auto message = connection->channel->next();
      auto output = connection->channel->take_output(); // the handshake's answers, or an alert
      if (!message) {
        refuse(id, message.error(), output);
        return false;
      }
      if (!output.empty()) {
        write(id, output, false);
        if (!(connection = find(id))) return false;
      }
      if (!*message) return true;
      handle(id, **message);
    }
    return false;
  }

  // A peer the channel refused (another token or node, not TLS 1.3, an
  // oversized handshake or message): OpenSSL's alert (`output`), then the connection ends.
  void refuse(std::uint64_t id, const ChannelError& error, std::string_view output)
  {
    if (error.kind == ChannelError::Kind::alert || error.kind == ChannelError::Kind::closed) {
      close(id);
      return;
    }
    ++rejected;
    limited.event("rejected control requests",
                  fmt::format("rejected a control request: {}",
                              error.kind == ChannelError::Kind::unauthenticated ? error.message : "refused: " + error.message));
    write(id, output, true);
  }

  // Sends `response`, encrypted for the connection's client.
  void send(std::uint64_t id, const ControlResponse& response, bool close_after)
  {
    auto* connection = find(id);
    if (!connection) return;
    connection->channel->send(encode_response(response));
    write(id, connection->channel->take_output(), close_after);
  }

  void write(std::uint64_t id, std::string_view bytes, bool close_after)
  {
    auto* connection = find(id);
    if (!connection) return;
    connection->out += bytes;
    connection->close_after_write = connection->close_after_write || close_after;
    flush(*connection);
  }

  void flush(Connection& connection)
  {
    auto id = connection.id;
    while (!connection.out.empty()) {
      auto n = ::send(connection.fd.get(), connection.out.data(), connection.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        connection.out.erase(0, std::size_t(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        loop.modify(connection.fd.get(), EPOLLIN | EPOLLOUT);
        return;
      }
      close(id);
      return;
    }
    loop.modify(connection.fd.get(), EPOLLIN);
    if (connection.close_after_write) close(id);
  }

  void reply_error(std::uint64_t id, const std::string& request_id, std::string_view message, bool close_after)
  {
    ++rejected;
    limited.event("rejected control requests", fmt::format("rejected a control request: {}", message));
    send(id, {request_id, false, error_body(message)}, close_after);
  }

  void handle(std::uint64_t id, const std::string& message)
  {
    auto request = decode_request(message);
    if (!request) {
      reply_error(id, "", request.error(), true);
      return;
    }
    // Recorded on its way to another node, or before this agent restarted:
    // its handshake fails already; the request says so too.
    if (request->node != node.name) {
      reply_error(id, request->id,
                  fmt::format("a request for node '{}' reached the agent on {}; refused", request->node, node.name),
                  true);
      return;
    }
    if (request->type != "hello" && request->instance != instance) {
      reply_error(id, request->id,
                  fmt::format("a request for an earlier run of the agent on {} (it restarted since the check's "
                              "hello); refused",
                              node.name),
                  true);
      return;
    }
    std::string why;
    if (!replay.accept(*request, now_ms(), why)) {
      reply_error(id, request->id, why, true);
      return;
    }
    if (auto* connection = find(id)) connection->authenticated = true;
    // Probing and what arrived belong to a running check: its window must be open.
    if ((request->type == "probe" || request->type == "observed") && capture.window_left(request->window).count() <= 0) {
      reply_error(id, request->id,
                  fmt::format("window {} of the agent on {} is closed (its check ended, or its deadline passed); "
                              "refused",
                              request->window, node.name),
                  false);
      return;
    }
    if (request->type == "hello") {
      handle_hello(id, *request);
    } else if (request->type == "probe") {
      handle_probe(id, *request);
    } else if (request->type == "observed") {
      handle_observed(id, *request);
    } else if (request->type == "done") {
      handle_done(id, *request);
    } else if (request->type == "egress") {
      handle_egress(id, *request);
    } else if (request->type == "evaluate") {
      handle_evaluate(id, *request);
    } else {
      reply_error(id, request->id, "unknown request type '" + request->type + "'", true);
    }
  }

  // A check begins: its window opens, for its deadline and a grace.
  void handle_hello(std::uint64_t id, const ControlRequest& request)
  {
    auto body = parse_hello_request(request.body);
    if (!body) {
      reply_error(id, request.id, body.error(), true);
      return;
    }
    auto deadline = body->deadline.count() > 0 ? body->deadline : k_max_probe_budget;
    // What the capture lost so far is the check's baseline: its later
    // losses are the ones that touch what it asks about.
    capture.catch_up();
    auto lost = capture.lost();
    release_for_ended_checks();
    auto window = capture.open_window(deadline + k_window_grace);
    if (!window) {
      reply_error(id, request.id,
                  fmt::format("{} checks are running on the agent on {} already (their windows are open); refused",
                              capture.windows(), node.name),
                  false);
      return;
    }
    answered_marks.emplace(window->id, responder.answered_mark());
    HelloReply reply{node.name, PORTMATRIX_VERSION, instance, capture.active(), capture_error,
                     responder.listener_count(), responder.owners(), lost, window->mark,
                     responder.answered_mark(), window->id, interface_mtu};
    for (auto& owner : reply.owners) {
      auto it = services.find({owner.protocol, owner.port});
      if (it != services.end()) owner.service = it->second;
    }
    send(id, {request.id, true, to_json(reply)}, false);
  }

  // The check ended: its window closes (the capture forgets what it kept for
  // it), and its probings still running end with what they have.
  void handle_done(std::uint64_t id, const ControlRequest& request)
  {
    capture.close_window(request.window);
    for (const auto& [probe_id, window] : probe_windows) {
      if (window != request.window) continue;
      if (auto it = probes.find(probe_id); it != probes.end()) it->second->finish_now();
    }
    release_for_ended_checks();
    send(id, {request.id, true, "{}"}, false);
  }

  // What the listeners and the departures capture counted for checks whose
  // window closed is forgotten too (the capture forgets its own).
  void release_for_ended_checks()
  {
    std::erase_if(answered_marks, [this](const auto& entry) { return capture.window_left(entry.first).count() <= 0; });
    auto before = responder.answered_mark();
    for (const auto& [window, mark] : answered_marks) before = std::min(before, mark);
    responder.forget_answered_through(before);
    if (answered_marks.empty() && probes.empty()) departures.clear_counts();
  }

  bool allowed_target(const ProbeTarget& target) const
  {
    for (const auto& allow : allowed) {
      if (allow.protocol == target.protocol && allow.address == target.address && allow.range.min <= target.range.min &&
          target.range.max <= allow.range.max && (target.repeat == 1 || allow.vip)) {
        return true;
      }
    }
    return false;
  }

  void handle_probe(std::uint64_t id, const ControlRequest& request)
  {
    auto body = parse_probe_request(request.body);
    if (!body) {
      reply_error(id, request.id, body.error(), true);
      return;
    }
    if (probes.size() >= k_max_probings) {
      reply_error(id, request.id, fmt::format("{} probings are running already; refused", probes.size()), false);
      return;
    }
    // A target asked for twice is probed once (and answered twice); the
    // rest may not ask for more probes than the node's flows hold.
    auto asked = std::move(body->targets);
    std::vector<std::size_t> unique_of(asked.size());
    std::map<std::tuple<Protocol, std::string, std::uint16_t, std::uint16_t, int, Encapsulation, std::uint32_t,
                        std::uint16_t>,
             std::size_t>
      seen_targets;
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < asked.size(); ++i) {
      const auto& target = asked[i];
      auto key = std::make_tuple(target.protocol, target.address, target.range.min, target.range.max, target.repeat,
                                 target.encapsulation, target.vni, target.size);
      auto [it, fresh] = seen_targets.emplace(key, body->targets.size());
      unique_of[i] = it->second;
      if (!fresh) continue;
      body->targets.push_back(target);
      total += std::uint64_t(target.range.size()) * std::uint64_t(target.repeat);
    }
    for (const auto& target : body->targets) {
      if (!allowed_target(target)) {
        reply_error(id, request.id,
                    fmt::format("{} {}:{} is not a flow from {} in the inventory; refused", to_string(target.protocol),
                                target.address, to_string(target.range), node.name),
                    true);
        return;
      }
    }
    if (total > max_probes) {
      reply_error(id, request.id,
                  fmt::format("the request asks for {} probes, more than the flows from {} in the inventory hold ({}); "
                              "refused",
                              total, node.name, max_probes),
                  true);
      return;
    }
    // The SYNs this probing sends are watched leaving, so a check can tell
    // a source's own output rules from the network. Counts of the run before
    // are dropped, unless this probing continues it (the check's VIP rounds:
    // its observed round asks about the first probing's SYNs too); the socket
    // closes a little after the last probing ends.
    if (probes.empty()) {
      if (!body->continues) departures.clear_counts();
      if (departures_timer != 0) loop.cancel(departures_timer);
      departures_timer = 0;
      std::string ignored; // without CAP_NET_RAW hello says so already
      departures_watched = departures.start(node.interface, ignored);
    }
    ProbeOptions options;
    options.timeout = body->timeout;
    options.retries = body->retries;
    options.source_address = node.address;
    // Every agent probes at once and the destinations answer on the same
    // cores: a moderate window keeps replies inside the timeout.
    options.max_in_flight = 2048;
    // On a running node the conntrack table holds live connections too:
    // the probes leave it the share the check asks for.
    if (body->conntrack_ceiling < 100) {
      options.conntrack_ceiling = body->conntrack_ceiling / 100.0;
      options.conntrack = []() -> std::optional<TableFill> {
        auto table = read_conntrack_table();
        if (!table) return std::nullopt;
        return TableFill{table->count, table->max};
      };
    }
    auto probe_id = next_probe++;
    auto prober = std::make_unique<Prober>(loop, token, options);
    auto* raw = prober.get();
    probes.emplace(probe_id, std::move(prober));
    probe_windows.emplace(probe_id, request.window);
    auto request_id = request.id;
    if (auto* connection = find(id)) ++connection->probing;
    // Past its budget the probing ends with what it has: the check reports
    // what was probed, and the rest as not probed, rather than nothing. No
    // probing outlives the window of the check that asked for it.
    auto budget = body->budget.count() > 0 ? std::min(body->budget, k_max_probe_budget) : k_max_probe_budget;
    budget = std::min(budget, capture.window_left(request.window));
    auto budget_timer = loop.after(budget, [this, probe_id] {
      if (auto it = probes.find(probe_id); it != probes.end()) it->second->finish_now();
    });
    raw->start(body->targets, [this, raw, id, probe_id, request_id, budget_timer,
                               unique_of = std::move(unique_of)](std::vector<TargetOutcome> outcomes) {
      loop.cancel(budget_timer);
      if (auto* connection = find(id)) --connection->probing;
      std::vector<std::vector<Segment>> unique;
      for (const auto& outcome : outcomes) unique.push_back(compress(outcome));
      ProbeReply reply;
      for (auto index : unique_of) {
        reply.targets.push_back(index < unique.size() ? unique[index] : std::vector<Segment>{});
        auto& rtts = reply.rtts.emplace_back();
        if (index < outcomes.size()) {
          for (auto rtt : outcomes[index].rtts) rtts.push_back(std::uint32_t(std::min<std::int64_t>(rtt.count(), 60'000'000)));
        }
      }
      reply.held = raw->held_for_conntrack();
      send(id, {request_id, true, to_json(reply)}, false);
      // The prober finishes its own callback before it is destroyed.
      loop.after(std::chrono::milliseconds(0), [this, probe_id] {
        probes.erase(probe_id);
        probe_windows.erase(probe_id);
        if (probes.empty() && departures_timer == 0) {
          departures_timer = loop.after(k_departures_linger, [this] {
            departures_timer = 0;
            if (probes.empty()) departures.stop();
          });
        }
      });
    });
  }

  // evaluate: the live firewalls, read afresh (firewall_source), against
  // every inbound flow of this node. One at a time.
  void handle_evaluate(std::uint64_t id, const ControlRequest& request)
  {
    if (evaluating) {
      reply_error(id, request.id, "an evaluate request is running already; refused", false);
      return;
    }
    evaluating = true;
    firewall_source([this, id, request_id = request.id](FirewallTextResult text) {
      evaluating = false;
      send(id, {request_id, true, to_json(evaluate_firewalls(plan, node, text, interface))}, false);
    });
  }

  void handle_observed(std::uint64_t id, const ControlRequest& request)
  {
    auto queries = parse_observed_queries(request.body);
    if (!queries) {
      reply_error(id, request.id, queries.error(), true);
      return;
    }
    if (observing.size() >= k_max_observing) {
      reply_error(id, request.id, fmt::format("{} observed requests are running already; refused", observing.size()),
                  false);
      return;
    }
    // The loop may be behind: count what is queued, and what was lost,
    // before saying what was seen.
    capture.catch_up();
    departures.catch_up();
    auto job = std::make_shared<ObservedJob>();
    job->give_up = std::chrono::steady_clock::now() + k_observed_limit;
    job->connection = id;
    job->request_id = request.id;
    job->queries = std::move(*queries);
    job->reply.capture = capture.active();
    job->reply.departures = departures_watched;
    job->reply.capture_lost = capture.lost();
    job->reply.departures_lost = departures.lost();
    job->reply.answers.resize(job->queries.size());
    auto job_id = next_job++;
    observing.emplace(job_id, job);
    if (auto* connection = find(id)) ++connection->probing; // not idle while its answer is worked out
    observe_slice(job_id);
  }

  // One slice of an observed request's work; schedules the next one, or
  // sends the reply. A connection gone meanwhile ends the job.
  void observe_slice(std::uint64_t job_id)
  {
    auto it = observing.find(job_id);
    if (it == observing.end()) return;
    auto& job = *it->second;
    if (!find(job.connection)) {
      observing.erase(it);
      return;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= job.give_up) {
      if (auto* connection = find(job.connection)) --connection->probing;
      reply_error(job.connection, job.request_id,
                  fmt::format("an observed request not answered within {} s; abandoned", k_observed_limit.count()),
                  false);
      observing.erase(job_id);
      return;
    }
    auto until = now + k_observed_slice;
    for (unsigned work = 0; job.query < job.queries.size(); ++work) {
      if (work % 256 == 255 && std::chrono::steady_clock::now() >= until) {
        loop.after(std::chrono::milliseconds(0), [this, job_id] { observe_slice(job_id); });
        return;
      }
      const auto& query = job.queries[job.query];
      auto& answer = job.reply.answers[job.query];
      const auto& watched = query.departed ? departures : capture;
      auto port = std::uint16_t(query.range.min + job.port);
      auto seen = watched.seen(query.protocol, query.peer, port, query.departed ? 0 : query.since);
      answer.packets += seen;
      answer.ports_seen += seen > 0;
      if (!query.departed) {
        answer.ports_listening += responder.listening(query.protocol, port);
        answer.ports_answered += responder.answered_to(query.protocol, query.peer, port, query.answered_since) > 0;
      }
      if (port == query.range.max) {
        ++job.query;
        job.port = 0;
      } else {
        ++job.port;
      }
    }
    if (auto* connection = find(job.connection)) --connection->probing;
    send(job.connection, {job.request_id, true, to_json(job.reply)}, false);
    observing.erase(job_id);
  }

  // The egress check blocks (getaddrinfo), so it runs on its own threads;
  // the loop polls for its end and answers then. One at a time.
  void handle_egress(std::uint64_t id, const ControlRequest& request)
  {
    auto body = parse_egress_request(request.body);
    if (!body) {
      reply_error(id, request.id, body.error(), true);
      return;
    }
    if (egress_running) {
      reply_error(id, request.id, "an egress check is running already", false);
      return;
    }
    EgressReply reply;
    // Only the configured proxy: the inventory's, else the agent's environment.
    const auto& configured = plan.inventory.egress;
    auto proxy = proxy_settings(configured.proxy, configured.no_proxy, [](const char* name) { return std::getenv(name); },
                                k_inventory_proxy_label);
    if (!proxy) {
      reply.error = proxy.error();
      send(id, {request.id, true, to_json(reply)}, false);
      return;
    }
    EgressOptions options;
    options.proxy = *proxy;
    options.timeout = body->timeout;
    options.deadline = body->deadline;
    auto targets = egress_targets(resolve_egress(plan.matrix, &plan.inventory));
    egress_running = true;
    auto job = std::make_shared<std::future<std::vector<EgressResult>>>(
      std::async(std::launch::async, [targets, options] { return run_egress(targets, options); }));
    poll_egress(id, request.id, job);
  }

  void poll_egress(std::uint64_t id, std::string request_id,
                   std::shared_ptr<std::future<std::vector<EgressResult>>> job)
  {
    loop.after(std::chrono::milliseconds(50), [this, id, request_id, job] {
      if (job->wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        poll_egress(id, request_id, job);
        return;
      }
      egress_running = false;
      EgressReply reply;
      reply.results = job->get();
      send(id, {request_id, true, to_json(reply)}, false);
    });
  }

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

Agent::Agent(EventLoop& loop, const Plan& plan, const Node& node, const Token& token, std::ostream& log)
  : m_impl(std::make_unique<Impl>(loop, plan, node, token, log))
{
}

Agent::~Agent() = default;

void
Agent::set_firewall_source(FirewallSource source)
{
  m_impl->firewall_source = std::move(source);
}

bool
Agent::start(std::string& error, const std::function<std::string()>& after_setup)
{
  return m_impl->start(error, after_setup);
}

std::string
Agent::control_endpoint() const
{
  return m_impl->control_address.to_string();
}

int
run_agent(const Plan& plan, const Node& node, const Token& token, std::chrono::seconds exit_after)
{
  Fd signal_fd = termination_signals();

  // Forked first, while the agent is one thread holding its privileges.
  FirewallReader firewall_reader;
  EventLoop loop;
  Agent agent(loop, plan, node, token, std::cerr);
  agent.set_firewall_source(firewall_reader.source(loop));
  std::string error;
  if (!agent.start(error, [&node] {
        auto failed = confine();
        if (failed.empty()) {
          std::cerr << fmt::format("portmatrix agent {}: confined: CAP_NET_RAW and CAP_NET_BIND_SERVICE kept, "
                                   "no_new_privs, seccomp allowlist\n",
                                   node.name);
        }
        return failed.empty() ? failed : "cannot drop privileges: " + failed;
      })) {
    std::cerr << "portmatrix agent: " << error << "\n";
    return 2;
  }
  loop.add(signal_fd.get(), EPOLLIN, [&loop](std::uint32_t) { loop.stop(); });
  if (exit_after.count() > 0) {
    loop.after(exit_after, [&loop, &node, exit_after] {
      std::cerr << fmt::format("portmatrix agent {}: --exit-after {} s reached\n", node.name, exit_after.count());
      loop.stop();
    });
  }
  std::cerr << fmt::format("portmatrix agent {}: ready\n", node.name) << std::flush;
  loop.run();
  std::cerr << fmt::format("portmatrix agent {}: stopped\n", node.name);
  return 0;
}

} // namespace portmatrix
