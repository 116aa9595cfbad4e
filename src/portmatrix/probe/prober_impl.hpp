// The prober's internals, shared by its parts (probe/*.cpp only): a probe in
// its slot, and Prober::Impl, whose members are defined by concern:
// prober.cpp (the round: jobs, slots, settling, retries), tcp_probe.cpp,
// udp_probe.cpp, raw_probe.cpp (IP-in-IP) and pacing.cpp (the window, quiet
// probes, the conntrack table).
#pragma once

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/address.hpp"
#include "net/fd.hpp"
#include "probe/classify.hpp"
#include "probe/deadline_queue.hpp"
#include "probe/prober.hpp"
#include "probe/udp_key.hpp"

namespace portmatrix {

namespace probing {

using Clock = EventLoop::Clock;

constexpr std::size_t k_nonce_bytes = 8; // 16 hex characters

// A datagram probe's nonce, kept after it finished (m_udp_earlier_nonces).
struct EarlierNonce
{
  std::array<char, 2 * k_nonce_bytes> nonce{};
  std::uint32_t target = 0;
  std::string_view text() const { return {nonce.data(), nonce.size()}; }
};
// Earlier nonces kept per address and port: an overlay's three targets,
// each with its retries, fit (more would cost an HMAC each per stray answer).
constexpr std::size_t k_earlier_nonces = 12;

// One connection (TCP) or exchange (UDP): the unit of work that holds a socket.
struct Job
{
  std::uint32_t target = 0;
  std::uint32_t port_index = 0; // into the target's range
  std::uint32_t attempt = 0;    // 0 .. repeat-1

  // The first port's first connection: the one a long range sends ahead as
  // its scout (Prober::Impl::m_scout says whether the range has one).
  bool may_scout() const { return port_index == 0 && attempt == 0; }
};

enum class Phase {
  idle,       // the slot is free
  connecting, // TCP: waiting for EPOLLOUT
  reading,    // TCP: connected, payload sent, reading the identity line
  awaiting,   // UDP and IP-in-IP: payload sent, waiting for an answer or an ICMP error
};

struct Probe
{
  Job job;
  Protocol protocol = Protocol::tcp;
  Phase phase = Phase::idle;
  std::uint32_t generation = 0;
  Fd fd; // TCP; UDP and IP-in-IP probes share the prober's sockets
  SocketAddress peer;
  UdpKey key; // UDP; IP-in-IP (port 0)
  std::string nonce;
  std::string payload;
  std::string received; // TCP: the identity line so far
  bool peer_reset = false; // TCP: the peer has reset the connection (nothing to close)
  bool young = false;      // counts toward the window (ProbeOptions::max_in_flight)
  Clock::time_point deadline;
  std::chrono::microseconds handshake{0}; // TCP: the handshake's round trip, as the kernel measured it
};

enum class Launch {
  in_flight,
  settled,
  deferred, // no fd (or local port) free: retried when a probe finishes
  waiting,  // UDP: a probe to the same address and port is in flight
};

// A TCP socket's place on the loop: watched once, for as long as it is
// open, and serving one probe after another (see tcp_probe.cpp). Indexed by
// fd; `slot` is k_no_slot while the socket waits to be reused.
struct TcpSocket
{
  static constexpr std::uint32_t k_no_slot = UINT32_MAX;
  std::uint32_t slot = k_no_slot;
  std::uint32_t generation = 0;
  bool watched = false;
  std::uint8_t kind = 0; // which idle set it returns to (Prober::Impl::tcp_socket_kind)
};

// The shared UDP socket of one address family (or the raw IP-in-IP socket).
struct UdpChannel
{
  Fd fd;
  int error = 0; // why it could not be opened (then every probe of the family settles with it)
};

} // namespace probing

// Only probe/*.cpp include this header.
using namespace probing;

struct Prober::Impl
{
  Impl(EventLoop& loop, const Token& token, ProbeOptions options);
  ~Impl();

  void start(std::vector<ProbeTarget> targets, std::function<void(std::vector<TargetOutcome>)> done);
  void finish_now();
  TableHold held_for_conntrack() const;

private:
  void settle_unprobeable_targets();
  std::optional<Job> next_job();
  void fill();
  bool scouted(const Job& job) const;
  void presume_dropped(std::uint32_t target);
  Launch launch(const Job& job);
  Launch launch_udp(const Job& job, const SocketAddress& peer);
  Launch launch_datagram(const Job& job, const SocketAddress& peer, UdpChannel& channel,
                         const std::function<std::string(std::string_view nonce)>& payload_of);
  Launch watch(const Job& job, Fd fd, const SocketAddress& peer, std::string nonce, std::string payload);
  static std::uint8_t tcp_socket_kind(int family, bool bound) { return std::uint8_t((family == AF_INET6) * 2 + bound); }
  TcpSocket& tcp_socket(int fd);
  Fd take_idle_tcp_socket(std::uint8_t kind);
  bool watch_tcp_socket(int fd, std::uint32_t slot, std::uint32_t generation);
  void keep_or_close_tcp_socket(Probe& probe);
  void close_tcp_socket(Fd& fd);
  bool close_an_idle_tcp_socket();
  void close_idle_tcp_sockets();
  UdpChannel& udp_channel(int family);
  void drain_udp(UdpChannel& channel);
  void drain_udp_errors(int fd);
  void answer_udp(const sockaddr* from, std::string_view reply);
  void close_udp_channels();
  Launch launch_raw(const Job& job, const SocketAddress& peer);
  UdpChannel& raw_channel();
  void drain_raw();
  bool answers_ours(const sockaddr* from, std::string_view reply) const;
  const EarlierNonce* late_answer_to(const UdpKey& key, std::string_view reply, Protocol protocol) const;
  void remember_nonce(const Probe& probe);
  void drain_raw_errors();
  void close_raw_channel();
  Launch settle_now(const Job& job, Finding finding);
  Launch defer_or_settle(const Job& job, int error);
  std::uint32_t acquire_slot();
  void on_event(std::uint32_t slot, std::uint32_t generation, std::uint32_t events);
  std::optional<Finding> on_tcp_event(Probe& probe, std::uint32_t events);
  // `events`: what epoll reported; 0 when unknown (ask the socket).
  std::optional<Finding> on_connect_result(Probe& probe, std::uint32_t events);
  std::optional<Finding> read_identity_line(Probe& probe, std::uint32_t events);
  void on_deadline(std::uint32_t slot, std::uint32_t generation);
  void on_identity_deadline(std::uint32_t slot, std::uint32_t generation);
  void on_resend(std::uint32_t slot, std::uint32_t generation);
  void on_quiet(std::uint32_t slot, std::uint32_t generation);
  void on_hedge(std::uint32_t slot, std::uint32_t generation);
  Finding open_with(const Probe& probe, std::string_view reply) const;
  bool backend_silent(const Probe& probe) const;
  static Finding silent_finding();
  void finish(std::uint32_t slot, Finding finding);
  void adapt_window(const Probe& probe, const Finding& finding);
  void reopen_window();
  void close_probe(Probe& probe);
  void settle(const Job& job, Finding finding);
  void maybe_done();
  bool queue_retries();
  void deliver();
  void abandon_probes();

  bool live(std::uint32_t slot, std::uint32_t generation) const
  {
    return slot < m_probes.size() && m_probes[slot].generation == generation && m_probes[slot].phase != Phase::idle;
  }
  std::uint32_t repeat_of(std::uint32_t target) const
  {
    return std::uint32_t(std::max(1, m_outcomes[target].target.repeat));
  }
  static std::uint32_t port_count(const PortRange& range) { return range.min > range.max ? 0 : range.size(); }
  // A silent probe of this target gets its retry beside it (see on_hedge);
  // a target without an agent is never asked again (ProbeTarget::identity).
  bool hedgeable(std::uint32_t target) const
  {
    const auto& outcome = m_outcomes[target];
    return m_addresses[target] && outcome.target.protocol == Protocol::tcp && outcome.ports.size() < k_silent_range
           && repeat_of(target) == 1 && outcome.target.identity && m_options.retries > 0
           && m_options.hedge_after < m_options.timeout;
  }

  EventLoop& m_loop;
  const Token& m_token;
  ProbeOptions m_options;
  std::size_t m_capacity = 1; // probes in flight at most (max_open within the fd budget)
  std::size_t m_window = 1;   // young probes in flight at most (adapts, up to max_in_flight: see adapt_window)
  std::chrono::nanoseconds m_latency_sum{0}; // answers since the window last adapted
  std::uint32_t m_latency_samples = 0;
  std::chrono::nanoseconds m_fastest = std::chrono::nanoseconds::max(); // the fastest answer: the path's own latency
  Clock::time_point m_last_answer;                                     // of those adapt_window counts
  std::size_t m_young = 0;
  std::optional<SocketAddress> m_source;

  std::vector<TargetOutcome> m_outcomes;
  std::vector<std::optional<SocketAddress>> m_addresses; // per target; nullopt: not probed
  // Per target, from its route: TCP probes bind the source address only when
  // the route would pick another one, and a connection to itself is possible
  // only when the target is this host's address.
  std::vector<std::uint8_t> m_bind_source;
  std::vector<std::uint8_t> m_may_self_connect;
  // Per target: some port opened. Its slow probes stay in the window: they
  // are slow, not dropped. (Refusals do not count: where a range is closed,
  // silence is the kernel's ICMP rate limit, not a busy agent.)
  std::vector<std::uint8_t> m_target_opened;
  std::vector<std::uint8_t> m_target_refused; // per target: some port refused (see queue_retries)
  std::vector<std::vector<std::uint32_t>> m_attempts_settled; // per target, per port
  // Per target, per port: its retry was started early, beside the first try
  // (a hedge, see on_hedge), so the next retry pass leaves it out.
  std::vector<std::vector<std::uint8_t>> m_hedged;
  std::function<void(std::vector<TargetOutcome>)> m_done;
  std::uint64_t m_total = 0;
  std::uint64_t m_settled = 0;
  bool m_running = false;
  int m_retries_left = 0;

  // Targets in the order their first tries start: shortest range first, so
  // single ports (which may have to wait out a timeout, when they must stay
  // silent) are not queued behind thousands of NodePort probes.
  std::vector<std::uint32_t> m_start_order;
  std::uint32_t m_next_target = 0; // into m_start_order
  std::uint32_t m_next_attempt = 0; // of m_start_order[m_next_target]'s next port
  std::vector<std::uint32_t> m_next_port; // per target: its first port not yet started
  // A range of k_silent_range ports or more (one try a port) sends its
  // first port ahead of every other probe: its scout. A scout that does not
  // open within hedge_after (silent, refused, an error) says how the rest
  // will answer: that range is presumed dropped, and its ports start next,
  // each leaving the window after hedge_after unanswered (see presume_dropped).
  enum class Scout : std::uint8_t { none, waiting, out, opened, dropped };
  std::vector<Scout> m_scout;             // per target
  std::deque<std::uint32_t> m_scouts;      // targets whose scout has not started
  std::deque<std::uint32_t> m_dropped;     // presumed dropped, ports left to start
  std::deque<Job> m_deferred;   // jobs that found no free fd; retried first
  bool m_starved = false;       // out of fds: wait for a probe to finish

  std::vector<Probe> m_probes;
  std::vector<std::uint32_t> m_free;
  std::size_t m_in_flight = 0;
  std::vector<TcpSocket> m_tcp_sockets;          // by fd: the TCP probe each one serves
  std::array<std::vector<Fd>, 4> m_idle_tcp;     // disconnected, still watched; by tcp_socket_kind
  std::array<UdpChannel, 2> m_udp; // IPv4, IPv6
  UdpChannel m_raw;                // IP-in-IP (IPv4)
  std::unordered_map<UdpKey, std::uint32_t, UdpKeyHash> m_udp_in_flight;   // -> slot (IP-in-IP too)
  std::unordered_map<UdpKey, std::deque<Job>, UdpKeyHash> m_udp_waiting; // second probes to a key
  // The nonces of the probes to a key that finished this round, oldest
  // first: a retry may get the late answer to any try before it, which
  // proves the agent as well. Each with its target: an overlay's plain,
  // shaped and full-size probes share the key, and the late answer to one
  // proves nothing of the others (nor is it another responder).
  std::unordered_map<UdpKey, std::vector<EarlierNonce>, UdpKeyHash> m_udp_earlier_nonces;
  std::vector<mmsghdr> m_udp_messages;
  std::vector<iovec> m_udp_vectors;
  std::vector<sockaddr_storage> m_udp_from;
  std::vector<std::array<char, k_max_identity_line + 1>> m_udp_buffers;
  Clock::time_point m_udp_drained_at;
  DeadlineQueue m_deadlines;
  DeadlineQueue m_resends;
  DeadlineQueue m_identity_deadlines; // TCP: connected, waiting for the identity line
  DeadlineQueue m_quiet;              // probes leaving the window, unanswered
  DeadlineQueue m_hedges;             // short TCP ranges: probes whose retry starts beside them; scouts
  std::uint64_t m_done_timer = 0;

  // The conntrack table (ProbeOptions::conntrack): when it was last read,
  // whether it was full then, the timer that looks again, and the hold so far.
  bool table_full();
  void release_table(Clock::time_point now);
  Clock::time_point m_table_read{};
  bool m_table_full = false;
  std::uint64_t m_table_timer = 0;
  Clock::time_point m_held_since{};
  std::chrono::nanoseconds m_held{0};
  TableFill m_fullest;
};

} // namespace portmatrix
