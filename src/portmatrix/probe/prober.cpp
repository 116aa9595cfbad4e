// The prober: every port of every target becomes one job per connection
// (`repeat` jobs for a VIP), and jobs run as non-blocking sockets on the
// caller's EventLoop, at most a window of unanswered young ones at once
// (up to `max_in_flight`, narrower while answers queue up: adapt_window,
// whole again after a timeout with no answer: reopen_window;
// a probe still silent after `quiet_after` leaves that window, keeping its
// socket until its timeout; `max_open` bounds them all); each finished or
// quiet probe starts the next job, so a range of thousands of ports is in
// flight at once and a dropped range is settled in one timeout round. A long
// range's first port goes ahead of everything (its scout): when it does not
// open, the rest of the range starts next, its probes leaving the window
// after hedge_after, and its silences run out beside the other ranges'
// answers (presume_dropped).
//
// Probes live in a fixed pool of slots. A slot's generation changes every
// time it is reused, so anything still queued for an earlier probe in that
// slot (a timeout, a resend) is recognised as stale and skipped. All probes
// share one timeout and are started in time order, so their deadlines are in
// the order they were queued: a FIFO (DeadlineQueue) with one loop timer for
// its head replaces a timer per probe. UDP resends use a second such queue.
//
//
// The TCP probe is tcp_probe.cpp, the UDP probe udp_probe.cpp, the IP-in-IP
// probe raw_probe.cpp; the window,
// quiet probes and the conntrack table are pacing.cpp (all members of
// Prober::Impl, declared in prober_impl.hpp).
//
// Outcomes are data: whatever happens to a socket, each job settles exactly
// once (twice when it was hedged: see on_hedge), and `done` is called once,
// from the loop, when every job has settled.
#include "probe/prober.hpp"

#include <sys/epoll.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <utility>

#include "model/provable.hpp"
#include "probe/probe_socket.hpp"
#include "probe/prober_impl.hpp"

namespace portmatrix {

std::string_view
to_string(ProbeState state)
{
  switch (state) {
  case ProbeState::open: return "open";
  case ProbeState::refused: return "refused";
  case ProbeState::admin_prohibited: return "admin-prohibited";
  case ProbeState::unreachable: return "unreachable";
  case ProbeState::blocked_locally: return "blocked-locally";
  case ProbeState::filtered: return "filtered";
  case ProbeState::error: return "error";
  case ProbeState::unprobed: return "unprobed";
  }
  return "?";
}

// --- Prober::Impl: the round --------------------------------------------------

Prober::Impl::Impl(EventLoop& loop, const Token& token, ProbeOptions options)
  : m_loop(loop), m_token(token), m_options(std::move(options)),
    m_deadlines(loop, [this](std::uint32_t slot, std::uint32_t generation) { on_deadline(slot, generation); }),
    m_resends(loop, [this](std::uint32_t slot, std::uint32_t generation) { on_resend(slot, generation); }),
    m_identity_deadlines(loop,
                         [this](std::uint32_t slot, std::uint32_t generation) { on_identity_deadline(slot, generation); }),
    m_quiet(loop, [this](std::uint32_t slot, std::uint32_t generation) { on_quiet(slot, generation); }),
    m_hedges(loop, [this](std::uint32_t slot, std::uint32_t generation) { on_hedge(slot, generation); })
{
}

Prober::Impl::~Impl()
{
  abandon_probes();
  if (m_done_timer != 0) m_loop.cancel(m_done_timer);
  if (m_table_timer != 0) m_loop.cancel(m_table_timer);
}

void
Prober::Impl::start(std::vector<ProbeTarget> targets, std::function<void(std::vector<TargetOutcome>)> done)
{
  if (m_running) throw std::logic_error("Prober::start while a run is in progress");
  m_done = std::move(done);
  m_outcomes.clear();
  m_addresses.clear();
  m_bind_source.clear();
  m_may_self_connect.clear();
  m_target_opened.clear();
  m_target_refused.clear();
  m_attempts_settled.clear();
  m_hedged.clear();
  m_udp_in_flight.clear();
  m_udp_waiting.clear();
  m_udp_earlier_nonces.clear();
  m_total = m_settled = 0;
  m_retries_left = std::max(0, m_options.retries);
  m_next_target = 0;
  m_next_attempt = 0;
  m_scouts.clear();
  m_dropped.clear();
  m_deferred.clear();
  m_table_read = {};
  m_table_full = false;
  m_held = {};
  m_fullest = {};

  m_source.reset();
  bool bad_source = false;
  if (!m_options.source_address.empty()) {
    m_source = SocketAddress::parse(m_options.source_address, 0);
    bad_source = !m_source;
  }
  for (auto& target : targets) {
    auto count = port_count(target.range);
    TargetOutcome outcome{std::move(target), std::vector<PortOutcome>(count)};
    for (std::uint32_t i = 0; i < count; ++i) {
      outcome.ports[i].port = std::uint16_t(outcome.target.range.min + i);
      outcome.ports[i].state = ProbeState::unprobed; // until its first attempt settles
    }
    auto address = bad_source ? std::nullopt : SocketAddress::parse(outcome.target.address, 0);
    auto source = address ? route_source(*address) : std::nullopt;
    m_bind_source.push_back(m_source && (!source || *source != m_source->host()));
    m_may_self_connect.push_back(!source || !address || *source == address->host());
    m_target_opened.push_back(0);
    m_target_refused.push_back(0);
    m_addresses.push_back(std::move(address));
    m_attempts_settled.emplace_back(count, 0);
    m_hedged.emplace_back(count, 0);
    m_outcomes.push_back(std::move(outcome));
    m_total += std::uint64_t(count) * repeat_of(std::uint32_t(m_outcomes.size() - 1));
  }
  m_scout.assign(m_outcomes.size(), Scout::none);
  settle_unprobeable_targets();
  // Every datagram-probed port leaves its nonce (close_probe): room for all
  // of them at once, rather than a rehash of a NodePort range's map as it grows.
  std::size_t datagram_ports = 0;
  for (const auto& outcome : m_outcomes) {
    if (outcome.target.protocol != Protocol::tcp) datagram_ports += outcome.ports.size();
  }
  m_udp_earlier_nonces.reserve(datagram_ports);
  m_start_order.resize(m_outcomes.size());
  for (std::uint32_t target = 0; target < m_start_order.size(); ++target) m_start_order[target] = target;
  // Targets without an agent first: they are not in the window (launch), so
  // they are all in flight at once and their silence is over in one timeout,
  // beside the rest; behind the rest, they would start late and end last.
  std::stable_sort(m_start_order.begin(), m_start_order.end(), [this](std::uint32_t a, std::uint32_t b) {
    auto key = [this](std::uint32_t t) { return std::pair{m_outcomes[t].target.identity, m_outcomes[t].ports.size()}; };
    return key(a) < key(b);
  });
  m_next_port.assign(m_outcomes.size(), 0);
  for (auto target : m_start_order) {
    const auto& outcome = m_outcomes[target];
    // (A range to a node without an agent is not in the window: no scout
    // needs to find out whether it would hold the window.)
    if (!m_addresses[target] || outcome.ports.size() < k_silent_range || repeat_of(target) != 1 ||
        !outcome.target.identity) {
      continue;
    }
    m_scout[target] = Scout::waiting;
    m_next_port[target] = 1; // port 0 is the scout's
    m_scouts.push_back(target);
  }

  // The limit as it is now: the caller may have raised it since construction.
  // The whole window at first: a range a firewall drops gives no answers to
  // grow it by, and must be in flight at once to settle in one timeout.
  m_window = std::max<std::size_t>(m_options.max_in_flight, 1);
  m_latency_sum = {};
  m_latency_samples = 0;
  m_fastest = std::chrono::nanoseconds::max();
  m_last_answer = Clock::now();
  m_capacity = std::clamp<std::size_t>(std::max(m_options.max_open, m_options.max_in_flight), 1, fd_budget());
  m_young = 0;
  // A slot per job, and one per hedge a short TCP range may start beside its first try.
  std::uint64_t hedges = 0;
  for (std::uint32_t target = 0; target < m_outcomes.size(); ++target) {
    if (hedgeable(target)) hedges += m_outcomes[target].ports.size();
  }
  auto slots = std::size_t(std::min<std::uint64_t>(m_capacity, std::max<std::uint64_t>(m_total + hedges, 1)));
  m_probes = std::vector<Probe>(slots);
  m_free.clear();
  for (auto slot = std::uint32_t(slots); slot-- > 0;) m_free.push_back(slot);
  m_in_flight = 0;
  m_running = true;
  fill();
}

// Targets that cannot be probed at all settle every port at once: EINVAL for
// an address (or source address) that does not parse, EPROTONOSUPPORT for a
// protocol without a probe (vrrp, esp), EAFNOSUPPORT for IP-in-IP to or from
// an IPv6 address (IPv4 in IPv4 only).
void
Prober::Impl::settle_unprobeable_targets()
{
  for (std::uint32_t target = 0; target < m_outcomes.size(); ++target) {
    auto protocol = m_outcomes[target].target.protocol;
    bool supported = has_probe(protocol);
    // IP-in-IP is IPv4 in IPv4: to an IPv6 address, or from one, it has no probe.
    bool family = protocol != Protocol::ipip || !m_addresses[target]
                  || (m_addresses[target]->family() == AF_INET && (!m_source || m_source->family() == AF_INET));
    if (m_addresses[target] && supported && family) continue;
    m_addresses[target].reset();
    auto error = !supported ? EPROTONOSUPPORT : !family ? EAFNOSUPPORT : EINVAL;
    for (std::uint32_t port = 0; port < m_outcomes[target].ports.size(); ++port) {
      for (std::uint32_t attempt = 0; attempt < repeat_of(target); ++attempt) {
        settle(Job{target, port, attempt}, found(ProbeState::error, error));
      }
    }
  }
}

// The next job to start: one that found no fd before; the scouts; the short
// targets; a port of a range presumed dropped; the long ranges in start
// order. (Short targets go before a dropped range: a dead agent's kernel
// rate-limits its ICMP errors, and those should answer its single ports.)
std::optional<Job>
Prober::Impl::next_job()
{
  if (!m_deferred.empty()) {
    auto job = m_deferred.front();
    m_deferred.pop_front();
    return job;
  }
  if (!m_scouts.empty()) {
    auto target = m_scouts.front();
    m_scouts.pop_front();
    return Job{target, 0, 0};
  }
  bool short_ones_started = m_next_target >= m_start_order.size()
                            || m_outcomes[m_start_order[m_next_target]].ports.size() >= k_silent_range;
  while (short_ones_started && !m_dropped.empty()) {
    auto target = m_dropped.front();
    if (m_next_port[target] < m_outcomes[target].ports.size()) return Job{target, m_next_port[target]++, 0};
    m_dropped.pop_front();
  }
  while (m_next_target < m_start_order.size()) {
    auto target = m_start_order[m_next_target];
    auto& port = m_next_port[target];
    if (m_addresses[target] && port < m_outcomes[target].ports.size()) {
      Job job{target, port, m_next_attempt};
      if (++m_next_attempt == repeat_of(target)) {
        m_next_attempt = 0;
        ++port;
      }
      return job;
    }
    m_next_attempt = 0;
    ++m_next_target;
  }
  return std::nullopt;
}

// This job is its range's scout, not yet settled.
bool
Prober::Impl::scouted(const Job& job) const
{
  auto scout = m_scout[job.target];
  return job.may_scout() && (scout == Scout::waiting || scout == Scout::out);
}

// The scout of `target` did not open: the rest of its range starts next,
// ahead of the ranges after it, and each of its probes leaves the window
// after hedge_after without an answer (on_hedge), so a dropped range's
// silences run out early, beside the ranges that answer, instead of at the
// end of the round. Its probes stay in the window while they are young,
// and for good once a port of it opened: on an overloaded machine a scout
// is late without any drop, and the window is what keeps the load bounded.
void
Prober::Impl::presume_dropped(std::uint32_t target)
{
  m_scout[target] = Scout::dropped;
  m_dropped.push_back(target);
  // Its probes already out, unanswered, leave the window too (at most a
  // window of them, once per range).
  if (m_target_opened[target]) return;
  for (auto& probe : m_probes) {
    if (probe.phase == Phase::idle || probe.phase == Phase::reading || !probe.young || probe.job.target != target) continue;
    probe.young = false;
    --m_young;
  }
}

// Starts jobs until `m_capacity` probes are in flight, the jobs run out, or
// no fd is left (then the next finished probe calls fill() again).
void
Prober::Impl::fill()
{
  m_starved = false;
  if (table_full()) return; // its timer calls fill() again
  while (!m_starved && m_young < m_window && m_in_flight < m_capacity) {
    auto job = next_job();
    if (!job) break;
    try {
      if (launch(*job) == Launch::deferred) m_starved = true;
    } catch (...) {
      settle(*job, found(ProbeState::error, current_exception_errno()));
    }
  }
  maybe_done();
}

// Puts a started probe into a slot, its socket (TCP) on the loop, with its
// deadline. TCP: one edge-triggered registration serves the connect (OUT)
// and the identity line (IN).
Launch
Prober::Impl::watch(const Job& job, Fd fd, const SocketAddress& peer, std::string nonce, std::string payload)
{
  auto protocol = m_outcomes[job.target].target.protocol;
  auto slot = acquire_slot();
  auto& probe = m_probes[slot];
  auto generation = probe.generation;
  if (protocol == Protocol::tcp) {
    if (!watch_tcp_socket(fd.get(), slot, generation)) {
      int error = errno;
      m_free.push_back(slot);
      return defer_or_settle(job, error); // a new socket: never watched, closed with its Fd
    }
  } else {
    probe.key = *udp_key(peer.get());
    m_udp_in_flight[probe.key] = slot;
  }
  auto now = Clock::now();
  probe.job = job;
  probe.protocol = protocol;
  probe.phase = protocol == Protocol::tcp ? Phase::connecting : Phase::awaiting;
  probe.fd = std::move(fd);
  probe.peer = peer;
  probe.nonce = std::move(nonce);
  probe.payload = std::move(payload);
  probe.received.clear();
  probe.handshake = std::chrono::microseconds{0};
  probe.deadline = now + m_options.timeout;
  ++m_in_flight;
  m_deadlines.push(probe.deadline, slot, generation);
  if (job.may_scout() && m_scout[job.target] == Scout::waiting) m_scout[job.target] = Scout::out;
  // A probe to a node without an agent (ProbeTarget::identity) gets only
  // its kernel's answer (a SYN-ACK, a reset, a rate-limited ICMP error) or
  // none: it loads no agent and waits behind none, so it is not in the
  // window (max_open still bounds it).
  probe.young = m_outcomes[job.target].target.identity;
  if (probe.young) ++m_young;
  if (hedgeable(job.target) || scouted(job) || m_scout[job.target] == Scout::dropped) {
    m_hedges.push(now + m_options.hedge_after, slot, generation);
  } else if (m_options.quiet_after < m_options.timeout) {
    m_quiet.push(now + m_options.quiet_after, slot, generation);
  }
  if (protocol != Protocol::tcp && m_options.udp_resend.count() > 0 && m_options.udp_resend < m_options.timeout) {
    m_resends.push(now + m_options.udp_resend, slot, generation);
  }
  return Launch::in_flight;
}

Launch
Prober::Impl::settle_now(const Job& job, Finding finding)
{
  settle(job, std::move(finding));
  return Launch::settled;
}

// Out of fds (or local ports): wait for a probe in flight to give one back.
// With none in flight, waiting would not help: the job is an error.
Launch
Prober::Impl::defer_or_settle(const Job& job, int error)
{
  bool retry = is_out_of_resources(error) || error == EADDRNOTAVAIL || error == EAGAIN;
  if (retry && m_in_flight > 0) {
    m_deferred.push_front(job);
    return Launch::deferred;
  }
  return settle_now(job, found(ProbeState::error, error));
}

std::uint32_t
Prober::Impl::acquire_slot()
{
  auto slot = m_free.back();
  m_free.pop_back();
  ++m_probes[slot].generation;
  return slot;
}

void
Prober::Impl::on_deadline(std::uint32_t slot, std::uint32_t generation)
{
  if (!live(slot, generation)) return;
  auto& probe = m_probes[slot];
  // Connected probes wait for their identity line on their own deadline,
  // but for a VIP's connection to a backend that does not answer (see
  // ProbeOptions::timeout).
  if (probe.phase == Phase::reading) {
    if (backend_silent(probe)) finish(slot, silent_finding());
    return;
  }
  // A busy loop may reach the deadline before the readiness event that is
  // already queued: look at the socket itself before calling it filtered.
  std::optional<Finding> finding;
  if (probe.protocol == Protocol::tcp && socket_writable(probe.fd.get())) {
    finding = on_connect_result(probe, 0);
    if (probe.phase == Phase::reading) return; // connected after all: now waiting for the identity
  } else if (probe.protocol == Protocol::udp) {
    // Read what the shared socket holds (at most once a millisecond: a
    // dropped range times out thousands of probes at once), which may
    // settle this probe.
    auto& channel = m_udp[probe.peer.family() == AF_INET6 ? 1 : 0];
    if (channel.fd && Clock::now() - m_udp_drained_at > std::chrono::milliseconds(1)) drain_udp(channel);
    if (!live(slot, generation)) return;
  } else if (probe.protocol == Protocol::ipip) {
    if (m_raw.fd) drain_raw();
    if (!live(slot, generation)) return;
  }
  if (!finding) reopen_window(); // silent: see reopen_window
  finish(slot, finding ? std::move(*finding) : found(ProbeState::filtered));
}

// A TCP probe of a short range (a single port, mostly) still without a
// SYN-ACK after hedge_after: its retry starts now, beside it (a hedge),
// instead of after the pass. The kernel resends a SYN only after a second,
// so within the timeout a lost SYN is never asked again; and a port that
// must stay silent (a flow expected to be denied) would otherwise cost the
// whole check a second timeout. Both tries settle into the port: an answer
// from either counts.
void
Prober::Impl::on_hedge(std::uint32_t slot, std::uint32_t generation)
{
  if (!live(slot, generation)) return;
  auto& probe = m_probes[slot];
  auto target = probe.job.target;
  if (scouted(probe.job) || m_scout[target] == Scout::dropped) {
    if (probe.phase == Phase::reading) return; // connected: it opened, its identity line on the way
    if (scouted(probe.job)) {
      presume_dropped(target); // its unanswered probes leave the window, this one too
    } else if (!m_target_opened[target] && probe.young) { // no port of it opened: dropped, not slow
      probe.young = false;
      --m_young;
    }
    fill();
    return;
  }
  auto& hedged = m_hedged[probe.job.target][probe.job.port_index];
  if (probe.phase != Phase::connecting || m_retries_left == 0 || hedged) return;
  hedged = 1;
  m_deferred.push_front(probe.job);
  ++m_total;
  fill();
}

// Settles the probe in `slot`, frees the slot, and starts the next jobs.
// The caller must not touch the probe afterwards (the slot may be reused).
void
Prober::Impl::finish(std::uint32_t slot, Finding finding)
{
  auto& probe = m_probes[slot];
  auto job = probe.job;
  if (finding.state == ProbeState::open && finding.rtt.count() == 0) finding.rtt = probe.handshake;
  adapt_window(probe, finding);
  close_probe(probe);
  m_free.push_back(slot);
  --m_in_flight;
  try {
    settle(job, std::move(finding));
    fill();
  } catch (...) {
    // Only allocation can fail here; the loop must not see it.
  }
}

void
Prober::Impl::close_probe(Probe& probe)
{
  if (probe.protocol == Protocol::tcp) {
    keep_or_close_tcp_socket(probe);
  } else if (auto it = m_udp_in_flight.find(probe.key); it != m_udp_in_flight.end()) {
    m_udp_in_flight.erase(it);
    remember_nonce(probe);
    // A probe to the same address and port that waited for this one goes next.
    if (auto waiting = m_udp_waiting.find(probe.key); waiting != m_udp_waiting.end()) {
      m_deferred.push_front(waiting->second.front());
      waiting->second.pop_front();
      if (waiting->second.empty()) m_udp_waiting.erase(waiting);
    }
  }
  probe.phase = Phase::idle;
  probe.peer_reset = false;
  if (probe.young) --m_young;
  probe.young = false;
  probe.received.clear();
}

// Merges one job's finding into its port's outcome. With repeat > 1 the
// port is open if any connection opened, `responder` is the first identity,
// and `responders` lists each authentic node once, in the order they answered.
// A job may settle twice (a hedge): an answer then replaces silence, and
// open replaces any other answer.
void
Prober::Impl::settle(const Job& job, Finding finding)
{
  auto& outcome = m_outcomes[job.target].ports[job.port_index];
  bool first = m_attempts_settled[job.target][job.port_index]++ == 0;
  bool opened = finding.state == ProbeState::open;
  if (scouted(job)) {
    if (opened) m_scout[job.target] = Scout::opened;
    else presume_dropped(job.target); // refused, an error: the rest will be too, or silent
  }
  if (opened) m_target_opened[job.target] = 1;
  if (finding.state == ProbeState::refused) m_target_refused[job.target] = 1;
  if (finding.silent) ++outcome.silent;
  auto& rtts = m_outcomes[job.target].rtts;
  if (opened && finding.rtt.count() > 0 && finding.responder && finding.responder->authentic &&
      rtts.size() < k_max_rtt_samples) {
    rtts.push_back(finding.rtt);
  }
  if (finding.responder && finding.responder->authentic &&
      std::find(outcome.responders.begin(), outcome.responders.end(), finding.responder->node) ==
        outcome.responders.end()) {
    outcome.responders.push_back(finding.responder->node);
  }
  bool answered = finding.state != ProbeState::filtered && finding.state != ProbeState::error;
  if (first || (opened && outcome.state != ProbeState::open) || (answered && outcome.state == ProbeState::filtered)) {
    outcome.state = finding.state;
    outcome.error = finding.error;
    outcome.responder = std::move(finding.responder);
  } else if (opened && !outcome.responder) {
    outcome.responder = std::move(finding.responder);
  }
  ++m_settled;
}

// After a pass: the ports worth another try go into the queue again.
// Returns false when there are none.
bool
Prober::Impl::queue_retries()
{
  std::uint64_t queued = 0;
  // A long range of which nothing opened: a firewall's drop, final. So is
  // silence on any port of the same protocol to an address where a long
  // range was refused and no port opened at all: nothing listens there (a
  // dead agent's node, whose rate-limited ICMP leaves most probes silent),
  // and asking again would only cost another timeout. (A range that is only
  // silent may be one that must stay closed, dropped by a live node's
  // firewall: that says nothing of its other ports.)
  using Host = std::pair<std::string, Protocol>; // an overlay's shaped probes too
  std::map<Host, std::pair<bool, bool>> hosts; // -> (a long range refused, a port opened)
  auto host_of = [this](std::uint32_t target) {
    const auto& probed = m_outcomes[target].target;
    return Host{probed.address, probed.protocol};
  };
  for (std::uint32_t target = 0; target < m_outcomes.size(); ++target) {
    auto& host = hosts[host_of(target)];
    host.first = host.first || (m_outcomes[target].ports.size() >= k_silent_range && m_target_refused[target]);
    host.second = host.second || m_target_opened[target];
  }
  for (std::uint32_t target = 0; target < m_outcomes.size(); ++target) {
    // Without an agent at the destination, asking again cannot bring its word.
    if (!m_addresses[target] || !m_outcomes[target].target.identity) continue;
    auto& ports = m_outcomes[target].ports;
    auto host = hosts[host_of(target)];
    bool silence_is_final = (ports.size() >= k_silent_range && !m_target_opened[target]) || (host.first && !host.second);
    for (std::uint32_t index = 0; index < ports.size(); ++index) {
      auto& outcome = ports[index];
      bool proven = outcome.state == ProbeState::open && outcome.responder && outcome.responder->authentic;
      bool unclear = (outcome.state == ProbeState::filtered && !silence_is_final) || outcome.state == ProbeState::error
                     || outcome.state == ProbeState::open;
      bool hedged = std::exchange(m_hedged[target][index], 0); // this pass's retry has run already
      if (proven || !unclear || hedged) continue;
      m_attempts_settled[target][index] = 0; // the retry's first result replaces this one
      for (std::uint32_t attempt = 0; attempt < repeat_of(target); ++attempt) {
        m_deferred.push_back(Job{target, index, attempt});
        ++queued;
      }
    }
  }
  m_total += queued;
  return queued > 0;
}

void
Prober::Impl::maybe_done()
{
  if (!m_running || m_settled < m_total || m_done_timer != 0) return;
  if (m_retries_left > 0) {
    --m_retries_left;
    if (queue_retries()) {
      fill();
      return;
    }
  }
  // Always from the loop, even when nothing needed a socket.
  m_done_timer = m_loop.after(std::chrono::milliseconds(0), [this] { deliver(); });
}

void
Prober::Impl::deliver()
{
  m_done_timer = 0;
  release_table(Clock::now());
  m_deadlines.clear();
  m_resends.clear();
  m_identity_deadlines.clear();
  m_quiet.clear();
  m_hedges.clear();
  close_udp_channels();
  close_raw_channel();
  close_idle_tcp_sockets();
  m_running = false;
  auto done = std::move(m_done);
  m_done = nullptr;
  auto outcomes = std::move(m_outcomes);
  m_outcomes.clear();
  if (done) done(std::move(outcomes)); // may destroy the prober: nothing after this
}

void
Prober::Impl::finish_now()
{
  if (!m_running || m_done_timer != 0) return;
  abandon_probes();
  m_deferred.clear();
  m_scouts.clear();
  m_dropped.clear();
  m_udp_waiting.clear();
  m_next_target = std::uint32_t(m_start_order.size()); // nothing more starts
  m_retries_left = 0;
  m_done_timer = m_loop.after(std::chrono::milliseconds(0), [this] { deliver(); });
}

void
Prober::Impl::abandon_probes()
{
  for (auto& probe : m_probes) {
    if (probe.phase != Phase::idle) close_probe(probe);
  }
  close_idle_tcp_sockets();
  close_udp_channels();
  close_raw_channel();
  m_deadlines.clear();
  m_resends.clear();
  m_identity_deadlines.clear();
  m_quiet.clear();
  m_hedges.clear();
}

// --- Prober ----------------------------------------------------------------

Prober::Prober(EventLoop& loop, const Token& token, ProbeOptions options)
  : m_impl(std::make_unique<Impl>(loop, token, std::move(options)))
{
}

Prober::~Prober() = default;

void
Prober::start(std::vector<ProbeTarget> targets, std::function<void(std::vector<TargetOutcome>)> done)
{
  m_impl->start(std::move(targets), std::move(done));
}

void
Prober::finish_now()
{
  m_impl->finish_now();
}

TableHold
Prober::held_for_conntrack() const
{
  return m_impl->held_for_conntrack();
}

std::vector<TargetOutcome>
Prober::run(const Token& token, std::vector<ProbeTarget> targets, ProbeOptions options)
{
  EventLoop loop;
  std::vector<TargetOutcome> outcomes;
  Prober prober(loop, token, std::move(options));
  prober.start(std::move(targets), [&](std::vector<TargetOutcome> result) {
    outcomes = std::move(result);
    loop.stop();
  });
  loop.run();
  return outcomes;
}

std::size_t
raise_fd_limit(std::size_t wanted)
{
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  auto target = std::min<rlim_t>(limit.rlim_max, rlim_t(wanted));
  if (target > limit.rlim_cur) {
    rlimit raised{target, limit.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit.rlim_cur = target;
  }
  return limit.rlim_cur == RLIM_INFINITY ? SIZE_MAX : std::size_t(limit.rlim_cur);
}

} // namespace portmatrix
