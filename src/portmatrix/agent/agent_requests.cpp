// The agent's answers to the control requests: hello, done, probe,
// evaluate, observed (in slices) and egress. See agent.cpp.

#include "agent/agent_impl.hpp"

namespace portmatrix {

// A check begins: its window opens, for its deadline and a grace.
void
Agent::Impl::handle_hello(std::uint64_t id, const ControlRequest& request)
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
void
Agent::Impl::handle_done(std::uint64_t id, const ControlRequest& request)
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
void
Agent::Impl::release_for_ended_checks()
{
  std::erase_if(answered_marks, [this](const auto& entry) { return capture.window_left(entry.first).count() <= 0; });
  auto before = responder.answered_mark();
  for (const auto& [window, mark] : answered_marks) before = std::min(before, mark);
  responder.forget_answered_through(before);
  if (answered_marks.empty() && probes.empty()) departures.clear_counts();
}

bool
Agent::Impl::allowed_target(const ProbeTarget& target) const
{
  for (const auto& allow : allowed) {
    if (allow.protocol == target.protocol && allow.address == target.address && allow.range.min <= target.range.min &&
        target.range.max <= allow.range.max && (target.repeat == 1 || allow.vip)) {
      return true;
    }
  }
  return false;
}

void
Agent::Impl::handle_probe(std::uint64_t id, const ControlRequest& request)
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
                      std::uint16_t, bool>,
           std::size_t>
    seen_targets;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < asked.size(); ++i) {
    const auto& target = asked[i];
    auto key = std::make_tuple(target.protocol, target.address, target.range.min, target.range.max, target.repeat,
                               target.encapsulation, target.vni, target.size, target.identity);
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
    // At the ceiling the gauge counts the live entries (ConntrackGauge):
    // the kernel's count keeps expired ones for up to a minute.
    options.conntrack = [gauge = std::make_shared<ConntrackGauge>(options.conntrack_ceiling)]()
      -> std::optional<TableFill> {
      auto table = gauge->read();
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
void
Agent::Impl::handle_evaluate(std::uint64_t id, const ControlRequest& request)
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

void
Agent::Impl::handle_observed(std::uint64_t id, const ControlRequest& request)
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
void
Agent::Impl::observe_slice(std::uint64_t job_id)
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
void
Agent::Impl::handle_egress(std::uint64_t id, const ControlRequest& request)
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

void
Agent::Impl::poll_egress(std::uint64_t id, std::string request_id, std::shared_ptr<std::future<std::vector<EgressResult>>> job)
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

} // namespace portmatrix
