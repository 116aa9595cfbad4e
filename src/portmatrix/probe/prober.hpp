// Concurrent TCP and UDP probing of port ranges on one EventLoop: thousands
// of probes in flight, a per-probe timeout, no thread per probe. Each port's
// outcome is data (ProbeState), never an error.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/identity.hpp"
#include "crypto/hmac.hpp"
#include "model/types.hpp"
#include "net/event_loop.hpp"

namespace portmatrix {

enum class ProbeState {
  open,             // connected (TCP) or answered (UDP); see PortOutcome::responder
  refused,          // TCP RST, or ICMP port unreachable
  admin_prohibited, // ICMP destination unreachable, administratively prohibited (codes 9, 10, 13)
  unreachable,      // ICMP host/net unreachable, or no route (EHOSTUNREACH/ENETUNREACH)
  blocked_locally,  // the local stack refused to send (EPERM/EACCES: the source's own firewall)
  filtered,         // no answer within the timeout
  error,            // anything else (socket creation failed, ...): see PortOutcome::error
  unprobed,         // the run was ended (Prober::finish_now) before this port had an outcome
};
std::string_view to_string(ProbeState state);

struct ProbeTarget
{
  Protocol protocol = Protocol::tcp; // tcp or udp
  std::string address;               // IPv4 or IPv6 literal
  PortRange range;
  int repeat = 1; // connections per port (the VIP check repeats to see every backend)
  // UDP: the probe carried in this overlay's shape (agent/encapsulation.hpp),
  // answered only in the same shape; none: the plain probe.
  Encapsulation encapsulation = Encapsulation::none;
  std::uint32_t vni = 0;
  // UDP: the probe's IP packet is this many bytes, sent with DF set (a
  // full-size probe: the overlay's packets at the interface's MTU); 0: the
  // plain probe's own size.
  std::uint16_t size = 0;
  // False when the destination's agent did not answer the coordinator at
  // all (a stopped or frozen agent): no identity line can come, so a TCP
  // connection is its port's whole answer (none is waited for), and no port
  // of the target is asked again (silence is final, as is a connection
  // without a word). Its probes load no agent, so they are not in the
  // window (ProbeOptions::max_in_flight) and no UDP datagram is resent.
  bool identity = true;
};

struct PortOutcome
{
  std::uint16_t port = 0;
  ProbeState state = ProbeState::filtered;
  int error = 0; // errno behind refused/unreachable/blocked_locally/error, else 0
  // For open: what answered the nonce. nullopt: nothing identity-shaped
  // answered (a real service, or it closed without a word).
  std::optional<Identity> responder;
  std::vector<std::string> responders; // repeat > 1: every authentic node that answered, in order
  // repeat > 1 (a VIP): connections accepted that no answer ever came back
  // on: a backend behind the VIP that does not answer (see ProbeOptions::timeout).
  std::uint32_t silent = 0;
};

// Round trips kept per target at most (TargetOutcome::rtts).
inline constexpr std::size_t k_max_rtt_samples = 64;

struct TargetOutcome
{
  ProbeTarget target;
  std::vector<PortOutcome> ports; // one per port of the range, in port order
  // Round trips of the TCP probes an agent answered authentically: each
  // handshake's, as the kernel measured it (TCP_INFO), the first
  // k_max_rtt_samples, in the order they came. (A UDP answer's time would
  // include how busy the destination's agent was.)
  std::vector<std::chrono::microseconds> rtts{};
};

// A range this long with no port open and its silent ports not retried (see
// ProbeOptions::retries).
inline constexpr std::size_t k_silent_range = 16;

// The share of a conntrack table that probes may fill, in percent (ProbeOptions::conntrack_ceiling).
inline constexpr int k_default_conntrack_ceiling = 75;

// How full a connection-tracking table is (nf_conntrack_count, nf_conntrack_max).
struct TableFill
{
  std::uint64_t count = 0;
  std::uint64_t max = 0;
};

struct ProbeOptions
{
  // Per probe: until connected (TCP) or answered (UDP). Also how long one of
  // a VIP's connections (repeat > 1) waits for its line once another
  // connection to the port has been answered by an agent: the load balancer
  // reaches its backends at once, so a connection still without a word then
  // went to a backend that does not answer (PortOutcome::silent), known after
  // one timeout.
  std::chrono::milliseconds timeout{1000};
  // TCP: once connected, how long to wait for the identity line. Separate from
  // `timeout` so a busy agent is not mistaken for a foreign responder, and a
  // dropped range still settles in one `timeout` round.
  std::chrono::milliseconds identity_timeout{3000};
  // Probes started and not yet answered, at most. The window starts here
  // and adapts to how long answers take (it shrinks when they come back
  // slower than 30% of the timeout: more probes in flight would only push
  // answers past it; it grows back when they are fast). A probe still unanswered
  // after `quiet_after`, to a target range of k_silent_range ports or more
  // of which no port has opened yet, is presumed dropped by a firewall and
  // leaves this window (and is not resent), so a
  // dropped range does not hold back the rest: all its ports wait out the
  // same timeout instead of one window after another.
  std::size_t max_in_flight = 4096;
  std::chrono::milliseconds quiet_after{600};
  std::size_t max_open = 16384; // probes in flight (TCP: sockets) at most, silent ones included
  // UDP datagrams are resent at this interval within the timeout (lost
  // datagrams are retried without extending the round).
  std::chrono::milliseconds udp_resend{300};
  std::string source_address; // bind probes to this local address, if set
  // Bounded retries: ports that got no answer, no identity, or no socket are
  // probed again this many times, after every port had its first try. A
  // port the first pass saw answer with its agent's identity is not; a clear
  // answer (refused, ICMP, EPERM) is final. A retry's outcome replaces the
  // earlier one: an overloaded machine loses a reply now and then, a
  // firewall drops every time. So silence is final when it is the firewall's
  // signature: a range of k_silent_range ports or more of which none opened
  // (a dropped NodePort range settles in one timeout, not two); silence in a
  // range where other ports opened, or on a few ports, is asked again. A TCP
  // probe of a range shorter than k_silent_range still unconnected after
  // `hedge_after` gets that retry at once, beside it (a hedge), rather than
  // after the pass: a port that must stay silent (a flow expected to be
  // denied) then costs hedge_after + timeout, not two timeouts.
  int retries = 1;
  // An answer later than this is late (the adaptive window's limit is the
  // same share of the default timeout, 30%). A range of k_silent_range
  // ports or more probes its first port ahead of the rest; when that port
  // has not opened by hedge_after (or was refused), the rest of the range
  // starts next, each probe leaving the window after hedge_after without an
  // answer: a dropped range's ports, or a dead agent's, wait out their
  // timeout beside the ranges that answer, instead of after them.
  std::chrono::milliseconds hedge_after{300};
  // A running node's connection-tracking table is shared with its live
  // traffic: when it is full, the kernel drops new connections. Every probe
  // adds an entry that outlives it (10 s for a reset TCP connection, 30 s
  // for unanswered UDP). With `conntrack` set (reads this node's table;
  // nullopt: it has none), no probe starts while the table holds
  // `conntrack_ceiling` of its maximum or more; probing goes on as entries
  // expire (looked at again every k_table_recheck).
  std::function<std::optional<TableFill>()> conntrack;
  double conntrack_ceiling = k_default_conntrack_ceiling / 100.0;
};

// How long a run held its probes back because the conntrack table was full,
// and the fullest reading that held them (zeros when none did).
struct TableHold
{
  std::chrono::milliseconds time{0};
  TableFill fullest;
};

inline constexpr std::chrono::milliseconds k_table_recheck{100};

// Probes every port of every target. Calls `done` once on the loop when all
// outcomes are in (targets in the given order). `token` and `loop` must
// outlive the probing. The caller raises RLIMIT_NOFILE (raise_fd_limit()).
class Prober
{
public:
  Prober(EventLoop& loop, const Token& token, ProbeOptions options);
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  void start(std::vector<ProbeTarget> targets, std::function<void(std::vector<TargetOutcome>)> done);
  // Ends the run now: probes in flight are dropped, nothing more starts, and
  // `done` gets what is known (a port without any outcome yet is unprobed),
  // from the loop. Nothing happens when no run is in progress.
  void finish_now();
  // For the run that ended last (or is running).
  TableHold held_for_conntrack() const;

  // Convenience: runs its own loop until done; for tools and tests.
  static std::vector<TargetOutcome> run(const Token& token, std::vector<ProbeTarget> targets, ProbeOptions options);

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (or `wanted`, if lower).
// Returns the new soft limit.
std::size_t raise_fd_limit(std::size_t wanted = 1 << 20);

} // namespace portmatrix
