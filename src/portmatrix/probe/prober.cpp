// The prober: every port of every target becomes one job per connection
// (`repeat` jobs for a VIP), and jobs run as non-blocking sockets on the
// caller's EventLoop, at most a window of unanswered young ones at once
// (up to `max_in_flight`, narrower while answers queue up: adapt_window,
// whole again after a timeout with no answer: reopen_window;
// a probe still silent after `quiet_after` leaves that window, keeping its
// socket until its timeout; `max_open` bounds them all); each finished or
// quiet probe starts the next job, so a range of thousands of ports is in
// flight at once and a dropped range is settled in one timeout round.
//
// Probes live in a fixed pool of slots. A slot's generation changes every
// time it is reused, so anything still queued for an earlier probe in that
// slot (a timeout, a resend) is recognised as stale and skipped. All probes
// share one timeout and are started in time order, so their deadlines are in
// the order they were queued: a FIFO (DeadlineQueue) with one loop timer for
// its head replaces a timer per probe. UDP resends use a second such queue.
//
// TCP: connect; the EPOLLOUT result (SO_ERROR) is classified; on success the
// probe payload is sent and one identity line is read (until '\n', EOF, or
// the timeout). An agent resets the connection right after its line; any
// other peer's connection is closed with an RST (SO_LINGER 0), so no
// TIME_WAIT piles up. TCP_QUICKACK off holds back our ACKs: the handshake's
// rides on the payload and the reply needs none before the reset. TCP
// sockets get IP_RECVERR: a failed connect then leaves the ICMP type and
// code in the error queue, which tells an administratively prohibited
// reject from an unreachable host.
//
// UDP: one unconnected socket per address family (IP_RECVERR, a large
// receive buffer) carries every UDP probe: a probe is a sendto() (again every
// `udp_resend`) and is matched, by destination address and port, with the
// answer that comes back from there or the ICMP error whose quoted datagram
// went there (the error queue names it). Per probe that is one system call
// instead of a socket's ten. Two probes to the same address and port are
// never in flight at once: the second waits for the first.
//
// Syscalls are what a check costs (most of its time is in the kernel), so
// the TCP path avoids the avoidable ones: no bind() when the route already
// picks the source address, no self-connect test for a remote destination,
// one edge-triggered epoll registration for connect and reply, no
// EPOLL_CTL_DEL before close().
//
// Outcomes are data: whatever happens to a socket, each job settles exactly
// once (twice when it was hedged: see on_hedge), and `done` is called once,
// from the loop, when every job has settled.
#include "probe/prober.hpp"

#include <linux/errqueue.h>
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <new>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "net/address.hpp"
#include "net/fd.hpp"

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

namespace {

using Clock = EventLoop::Clock;

// File descriptors left to the rest of the process (listeners, the control
// channel, logs) when the soft RLIMIT_NOFILE caps the probes in flight.
constexpr std::size_t k_reserved_fds = 64;
constexpr std::size_t k_nonce_bytes = 8; // 16 hex characters

// One connection (TCP) or exchange (UDP): the unit of work that holds a socket.
struct Job
{
  std::uint32_t target = 0;
  std::uint32_t port_index = 0; // into the target's range
  std::uint32_t attempt = 0;    // 0 .. repeat-1
};

// What one job found.
struct Finding
{
  ProbeState state = ProbeState::filtered;
  int error = 0;
  std::optional<Identity> responder;
};

Finding
found(ProbeState state, int error = 0)
{
  return Finding{state, error, std::nullopt};
}

// --- classification (pure) -------------------------------------------------

// An errno from connect(), SO_ERROR, send() or recv().
Finding
classify_errno(int error)
{
  switch (error) {
  case 0: return found(ProbeState::open);
  case ECONNREFUSED: return found(ProbeState::refused, error);
  case EHOSTUNREACH:
  case ENETUNREACH: return found(ProbeState::unreachable, error);
  case EPERM:
  case EACCES: return found(ProbeState::blocked_locally, error);
  case ETIMEDOUT: return found(ProbeState::filtered); // the kernel gave up before we did: no answer
  default: return found(ProbeState::error, error);
  }
}

// An ICMP (or local) error taken from a socket's error queue.
Finding
classify_queued_error(const sock_extended_err& queued)
{
  auto error = int(queued.ee_errno);
  if (queued.ee_origin == SO_EE_ORIGIN_ICMP && queued.ee_type == ICMP_DEST_UNREACH) {
    switch (queued.ee_code) {
    case ICMP_PORT_UNREACH: return found(ProbeState::refused, ECONNREFUSED);
    case ICMP_NET_ANO:
    case ICMP_HOST_ANO:
    case ICMP_PKT_FILTERED: return found(ProbeState::admin_prohibited, error);
    default: return found(ProbeState::unreachable, error);
    }
  }
  if (queued.ee_origin == SO_EE_ORIGIN_ICMP6 && queued.ee_type == ICMP6_DST_UNREACH) {
    switch (queued.ee_code) {
    case ICMP6_DST_UNREACH_NOPORT: return found(ProbeState::refused, ECONNREFUSED);
    case ICMP6_DST_UNREACH_ADMIN:
    case 5: // source address failed ingress/egress policy (RFC 4443)
    case 6: // reject route to destination (RFC 4443)
      return found(ProbeState::admin_prohibited, error);
    default: return found(ProbeState::unreachable, error);
    }
  }
  return classify_errno(error);
}

bool
is_out_of_resources(int error)
{
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

// A datagram that could not be queued now; the next resend tries again.
bool
is_transient_send_error(int error)
{
  return error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS || error == EINTR;
}

int
current_exception_errno()
{
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (...) {
    return EIO;
  }
}

// --- socket helpers (the syscalls) -----------------------------------------

// The first error queued on `fd` (MSG_ERRQUEUE), if any. `destination`, if
// given, receives where the datagram that caused it was going.
std::optional<sock_extended_err>
read_queued_error(int fd, sockaddr_storage* destination = nullptr)
{
  char data[64];
  alignas(cmsghdr) char control[512];
  iovec vector{data, sizeof data};
  msghdr message{};
  message.msg_name = destination;
  message.msg_namelen = destination ? sizeof *destination : 0;
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  if (::recvmsg(fd, &message, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return std::nullopt;
  for (auto* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
    bool v4 = header->cmsg_level == SOL_IP && header->cmsg_type == IP_RECVERR;
    bool v6 = header->cmsg_level == SOL_IPV6 && header->cmsg_type == IPV6_RECVERR;
    if (!v4 && !v6) continue;
    sock_extended_err queued{};
    std::memcpy(&queued, CMSG_DATA(header), sizeof queued);
    return queued;
  }
  return std::nullopt;
}

// A failed connect/send/recv, made precise by the ICMP error behind it when
// the error queue holds one. A plain RST needs no look.
Finding
classify_failure(int fd, int error)
{
  if (error != ECONNREFUSED) {
    if (auto queued = read_queued_error(fd)) return classify_queued_error(*queued);
  }
  return classify_errno(error);
}

int
pending_socket_error(int fd)
{
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
  return error;
}

// The local address the kernel's route picks to reach `peer`, if any.
std::optional<std::string>
route_source(const SocketAddress& peer)
{
  Fd fd(::socket(peer.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), peer.get(), peer.length()) != 0) return std::nullopt;
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&storage), &length) != 0) return std::nullopt;
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&storage), length).host();
}

// True when a TCP socket connected to itself (simultaneous open on a port of
// the ephemeral range with nothing listening): nothing listens there.
bool
is_self_connect(int fd, const SocketAddress& peer)
{
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return false;
  auto local = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&storage), length);
  return local.port() == peer.port() && local.family() == peer.family() && local.host() == peer.host();
}

// IP_RECVERR, TCP_QUICKACK off (TCP), and the bind to the source address.
// Returns 0 or an errno.
int
prepare_socket(int fd, int family, Protocol protocol, const std::optional<SocketAddress>& source)
{
  int on = 1;
  auto level = family == AF_INET6 ? SOL_IPV6 : SOL_IP;
  auto option = family == AF_INET6 ? IPV6_RECVERR : IP_RECVERR;
  if (::setsockopt(fd, level, option, &on, sizeof on) != 0) return errno;
  // Quick ACKs off (delayed-ACK "pingpong" mode): the handshake's last ACK
  // waits for the payload, which then carries it (tcp_rcv_synsent_state_process),
  // one packet less per probe. Sending turns the mode off; it is set again
  // after the payload (on_connect_result), so the reply is not ACKed either.
  if (protocol == Protocol::tcp) {
    int off = 0;
    ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &off, sizeof off);
  }
  if (!source) return 0;
  // TCP: the port is chosen at connect(), per destination, so thousands of
  // probes from one source address do not exhaust the ephemeral range.
  if (protocol == Protocol::tcp) ::setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
  if (::bind(fd, source->get(), source->length()) != 0) return errno;
  return 0;
}

void
reset_on_close(int fd)
{
  linger hard{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
}

std::size_t
fd_budget()
{
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  auto soft = std::size_t(limit.rlim_cur);
  return soft > 2 * k_reserved_fds ? soft - k_reserved_fds : std::max<std::size_t>(1, soft / 2);
}

// --- DeadlineQueue -----------------------------------------------------------

// Entries that share one delay, queued in time order and therefore due in
// queue order: one loop timer, set for the head, serves them all. An entry
// names a slot and its generation; the handler skips stale ones.
class DeadlineQueue
{
public:
  using Handler = std::function<void(std::uint32_t slot, std::uint32_t generation)>;

  DeadlineQueue(EventLoop& loop, Handler handler) : m_loop(loop), m_handler(std::move(handler)) {}
  ~DeadlineQueue() { clear(); }
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  void push(Clock::time_point when, std::uint32_t slot, std::uint32_t generation)
  {
    m_entries.push_back(Entry{when, slot, generation});
    if (!m_firing) arm();
  }

  void clear()
  {
    if (m_timer != 0) m_loop.cancel(m_timer);
    m_timer = 0;
    m_entries.clear();
  }

private:
  struct Entry
  {
    Clock::time_point when;
    std::uint32_t slot;
    std::uint32_t generation;
  };

  void arm()
  {
    if (m_timer == 0 && !m_entries.empty()) m_timer = m_loop.at(m_entries.front().when, [this] { fire(); });
  }

  void fire()
  {
    m_timer = 0;
    m_firing = true;
    auto now = Clock::now();
    while (!m_entries.empty() && m_entries.front().when <= now) {
      auto entry = m_entries.front();
      m_entries.pop_front();
      m_handler(entry.slot, entry.generation); // may push (new probes): those are due later
    }
    m_firing = false;
    arm();
  }

  EventLoop& m_loop;
  Handler m_handler;
  std::deque<Entry> m_entries;
  std::uint64_t m_timer = 0;
  bool m_firing = false;
};

// True when a non-blocking connect has finished (successfully or not).
bool
socket_writable(int fd)
{
  pollfd poll_fd{fd, POLLOUT, 0};
  return ::poll(&poll_fd, 1, 0) == 1 && (poll_fd.revents & (POLLOUT | POLLERR | POLLHUP)) != 0;
}

enum class Phase {
  idle,       // the slot is free
  connecting, // TCP: waiting for EPOLLOUT
  reading,    // TCP: connected, payload sent, reading the identity line
  awaiting,   // UDP: payload sent, waiting for a datagram or an ICMP error
};

// Where a UDP probe went: its answer comes back from there, and an ICMP error
// about it quotes it.
struct UdpKey
{
  std::array<std::uint8_t, 16> host{};
  std::uint16_t port = 0;
  std::uint16_t family = 0;
  bool operator==(const UdpKey&) const = default;
};

struct UdpKeyHash
{
  std::size_t operator()(const UdpKey& key) const
  {
    std::uint64_t hash = 1469598103934665603ull; // FNV-1a
    auto mix = [&hash](std::uint8_t byte) { hash = (hash ^ byte) * 1099511628211ull; };
    for (auto byte : key.host) mix(byte);
    mix(std::uint8_t(key.port));
    mix(std::uint8_t(key.port >> 8));
    mix(std::uint8_t(key.family));
    return std::size_t(hash);
  }
};

std::optional<UdpKey>
udp_key(const sockaddr* address)
{
  UdpKey key;
  key.family = address->sa_family;
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    std::memcpy(key.host.data(), &v4->sin_addr, sizeof v4->sin_addr);
    key.port = ntohs(v4->sin_port);
    return key;
  }
  if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    std::memcpy(key.host.data(), &v6->sin6_addr, sizeof v6->sin6_addr);
    key.port = ntohs(v6->sin6_port);
    return key;
  }
  return std::nullopt;
}

// Datagrams read per recvmmsg() call on the shared UDP socket.
constexpr std::size_t k_udp_batch = 64;
// The adaptive window (adapt_window): its floor, how many answers it
// averages, and the share of the timeout an answer may take before the
// window shrinks, or under which it grows.
constexpr std::size_t k_min_window = 32;
constexpr std::uint32_t k_window_samples = 32;
constexpr double k_slow_share = 0.3;
constexpr double k_fast_share = 0.1;

// How often the conntrack table is read while it has room (ProbeOptions::conntrack).
constexpr std::chrono::milliseconds k_table_read_interval{20};

// Its receive buffer: a burst of answers to thousands of probes fits.
constexpr int k_udp_receive_buffer = 8 << 20;

struct Probe
{
  Job job;
  Protocol protocol = Protocol::tcp;
  Phase phase = Phase::idle;
  std::uint32_t generation = 0;
  Fd fd; // TCP; UDP probes share the prober's socket
  SocketAddress peer;
  UdpKey key; // UDP
  std::string nonce;
  std::string payload;
  std::string received; // TCP: the identity line so far
  bool peer_reset = false; // TCP: the peer has reset the connection (nothing to close)
  bool young = false;      // counts toward the window (ProbeOptions::max_in_flight)
  Clock::time_point deadline;
};

enum class Launch {
  in_flight,
  settled,
  deferred, // no fd (or local port) free: retried when a probe finishes
  waiting,  // UDP: a probe to the same address and port is in flight
};

// The shared UDP socket of one address family.
struct UdpChannel
{
  Fd fd;
  int error = 0; // why it could not be opened (then every probe of the family settles with it)
};

} // namespace

// --- Prober::Impl --------------------------------------------------------------

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
  Launch launch(const Job& job);
  Launch launch_udp(const Job& job, const SocketAddress& peer);
  Launch watch(const Job& job, Fd fd, const SocketAddress& peer, std::string nonce, std::string payload);
  UdpChannel& udp_channel(int family);
  void drain_udp(UdpChannel& channel);
  void drain_udp_errors(int fd);
  void answer_udp(const sockaddr* from, std::string_view reply);
  void close_udp_channels();
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
  // A silent probe of this target gets its retry beside it (see on_hedge).
  bool hedgeable(std::uint32_t target) const
  {
    const auto& outcome = m_outcomes[target];
    return m_addresses[target] && outcome.target.protocol == Protocol::tcp && outcome.ports.size() < k_silent_range
           && repeat_of(target) == 1 && m_options.retries > 0 && m_options.hedge_after < m_options.timeout;
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
  Job m_cursor;                    // the next job not yet started (of m_start_order[m_next_target])
  std::deque<Job> m_deferred;   // jobs that found no free fd; retried first
  bool m_starved = false;       // out of fds: wait for a probe to finish

  std::vector<Probe> m_probes;
  std::vector<std::uint32_t> m_free;
  std::size_t m_in_flight = 0;
  std::array<UdpChannel, 2> m_udp; // IPv4, IPv6
  std::unordered_map<UdpKey, std::uint32_t, UdpKeyHash> m_udp_in_flight;   // -> slot
  std::unordered_map<UdpKey, std::deque<Job>, UdpKeyHash> m_udp_waiting; // second probes to a key
  // The nonce of the last finished probe to a key: a retry may get the late
  // answer to the try before it, which proves the agent as well.
  std::unordered_map<UdpKey, std::string, UdpKeyHash> m_udp_earlier_nonce;
  std::vector<mmsghdr> m_udp_messages;
  std::vector<iovec> m_udp_vectors;
  std::vector<sockaddr_storage> m_udp_from;
  std::vector<std::array<char, k_max_identity_line + 1>> m_udp_buffers;
  Clock::time_point m_udp_drained_at;
  DeadlineQueue m_deadlines;
  DeadlineQueue m_resends;
  DeadlineQueue m_identity_deadlines; // TCP: connected, waiting for the identity line
  DeadlineQueue m_quiet;              // probes leaving the window, unanswered
  DeadlineQueue m_hedges;             // short TCP ranges: probes whose retry starts beside them
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
  m_attempts_settled.clear();
  m_hedged.clear();
  m_udp_in_flight.clear();
  m_udp_waiting.clear();
  m_udp_earlier_nonce.clear();
  m_total = m_settled = 0;
  m_retries_left = std::max(0, m_options.retries);
  m_cursor = Job{};
  m_next_target = 0;
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
    m_addresses.push_back(std::move(address));
    m_attempts_settled.emplace_back(count, 0);
    m_hedged.emplace_back(count, 0);
    m_outcomes.push_back(std::move(outcome));
    m_total += std::uint64_t(count) * repeat_of(std::uint32_t(m_outcomes.size() - 1));
  }
  settle_unprobeable_targets();
  m_start_order.resize(m_outcomes.size());
  for (std::uint32_t target = 0; target < m_start_order.size(); ++target) m_start_order[target] = target;
  std::stable_sort(m_start_order.begin(), m_start_order.end(), [this](std::uint32_t a, std::uint32_t b) {
    return m_outcomes[a].ports.size() < m_outcomes[b].ports.size();
  });

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
// protocol other than TCP and UDP.
void
Prober::Impl::settle_unprobeable_targets()
{
  for (std::uint32_t target = 0; target < m_outcomes.size(); ++target) {
    auto protocol = m_outcomes[target].target.protocol;
    bool supported = protocol == Protocol::tcp || protocol == Protocol::udp;
    if (m_addresses[target] && supported) continue;
    m_addresses[target].reset();
    auto error = supported ? EINVAL : EPROTONOSUPPORT;
    for (std::uint32_t port = 0; port < m_outcomes[target].ports.size(); ++port) {
      for (std::uint32_t attempt = 0; attempt < repeat_of(target); ++attempt) {
        settle(Job{target, port, attempt}, found(ProbeState::error, error));
      }
    }
  }
}

std::optional<Job>
Prober::Impl::next_job()
{
  if (!m_deferred.empty()) {
    auto job = m_deferred.front();
    m_deferred.pop_front();
    return job;
  }
  while (m_next_target < m_start_order.size()) {
    m_cursor.target = m_start_order[m_next_target];
    auto job = m_cursor;
    bool probed = m_addresses[job.target].has_value();
    auto ports = std::uint32_t(m_outcomes[job.target].ports.size());
    if (probed && job.port_index < ports) {
      if (++m_cursor.attempt == repeat_of(job.target)) {
        m_cursor.attempt = 0;
        ++m_cursor.port_index;
      }
      return job;
    }
    m_cursor = Job{};
    ++m_next_target;
  }
  return std::nullopt;
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

Launch
Prober::Impl::launch(const Job& job)
{
  auto protocol = m_outcomes[job.target].target.protocol;
  auto peer = *m_addresses[job.target];
  peer.set_port(m_outcomes[job.target].ports[job.port_index].port);
  if (protocol == Protocol::udp) return launch_udp(job, peer);

  Fd fd(::socket(peer.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return defer_or_settle(job, errno);
  auto source = m_bind_source[job.target] ? m_source : std::nullopt;
  if (int error = prepare_socket(fd.get(), peer.family(), protocol, source); error != 0) {
    return settle_now(job, found(ProbeState::error, error)); // e.g. a source address that is not local
  }
  if (::connect(fd.get(), peer.get(), peer.length()) != 0 && errno != EINPROGRESS) {
    int error = errno;
    if (error == EADDRNOTAVAIL || error == EAGAIN) return defer_or_settle(job, error); // no local port left
    return settle_now(job, classify_failure(fd.get(), error));
  }
  auto nonce = random_hex(k_nonce_bytes);
  auto payload = make_probe_payload(nonce);
  return watch(job, std::move(fd), peer, std::move(nonce), std::move(payload));
}

Launch
Prober::Impl::launch_udp(const Job& job, const SocketAddress& peer)
{
  auto& channel = udp_channel(peer.family());
  if (!channel.fd) return settle_now(job, found(ProbeState::error, channel.error));
  auto key = *udp_key(peer.get());
  if (m_udp_in_flight.contains(key)) {
    m_udp_waiting[key].push_back(job);
    return Launch::waiting;
  }
  auto nonce = random_hex(k_nonce_bytes);
  auto payload = make_probe_payload(nonce);
  int fd = channel.fd.get();
  auto send = [&] { return ::sendto(fd, payload.data(), payload.size(), MSG_DONTWAIT, peer.get(), peer.length()); };
  if (send() < 0 && !is_transient_send_error(errno)) {
    // An ICMP error about an earlier probe to anywhere is also reported once
    // by the next call on the socket, which clears it (its details wait in
    // the error queue): try again before blaming this probe.
    int error = errno;
    if (error != EPERM && error != EACCES) error = send() < 0 ? errno : 0;
    if (error != 0 && !is_transient_send_error(error)) return settle_now(job, classify_errno(error));
  }
  return watch(job, Fd{}, peer, std::move(nonce), std::move(payload));
}

// The shared UDP socket of `family`, opened on first use.
UdpChannel&
Prober::Impl::udp_channel(int family)
{
  auto& channel = m_udp[family == AF_INET6 ? 1 : 0];
  if (channel.fd || channel.error != 0) return channel;
  Fd fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int error = fd ? prepare_socket(fd.get(), family, Protocol::udp, m_source) : errno;
  if (error == 0) {
    int size = k_udp_receive_buffer;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
      ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    if (!m_loop.add(fd.get(), EPOLLIN, [this, &channel](std::uint32_t) { drain_udp(channel); })) error = errno;
  }
  if (error != 0) {
    channel.error = error;
    return channel;
  }
  if (m_udp_messages.empty()) {
    m_udp_messages.resize(k_udp_batch);
    m_udp_vectors.resize(k_udp_batch);
    m_udp_from.resize(k_udp_batch);
    m_udp_buffers.resize(k_udp_batch);
  }
  channel.fd = std::move(fd);
  return channel;
}

// Settles the probes that the queued ICMP errors and the arrived answers on
// the shared socket are about. A bounded amount per call: the loop calls
// again while the socket stays readable.
void
Prober::Impl::drain_udp(UdpChannel& channel)
{
  m_udp_drained_at = Clock::now();
  int fd = channel.fd.get();
  drain_udp_errors(fd);
  for (int round = 0; round < 16 && channel.fd; ++round) {
    for (std::size_t i = 0; i < k_udp_batch; ++i) {
      m_udp_vectors[i] = iovec{m_udp_buffers[i].data(), m_udp_buffers[i].size()};
      m_udp_messages[i] = mmsghdr{};
      m_udp_messages[i].msg_hdr.msg_name = &m_udp_from[i];
      m_udp_messages[i].msg_hdr.msg_namelen = sizeof m_udp_from[i];
      m_udp_messages[i].msg_hdr.msg_iov = &m_udp_vectors[i];
      m_udp_messages[i].msg_hdr.msg_iovlen = 1;
    }
    int count = ::recvmmsg(fd, m_udp_messages.data(), unsigned(k_udp_batch), MSG_DONTWAIT, nullptr);
    if (count < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // An ICMP error reported once by the call: its details are queued.
      pending_socket_error(fd);
      drain_udp_errors(fd);
      continue;
    }
    for (int i = 0; i < count; ++i) {
      const auto& header = m_udp_messages[std::size_t(i)].msg_hdr;
      if (header.msg_flags & MSG_TRUNC) continue; // longer than any identity line
      auto length = std::min<std::size_t>(m_udp_messages[std::size_t(i)].msg_len, k_max_identity_line);
      answer_udp(reinterpret_cast<const sockaddr*>(&m_udp_from[std::size_t(i)]),
                 std::string_view(m_udp_buffers[std::size_t(i)].data(), length));
    }
    if (std::size_t(count) < k_udp_batch) return;
  }
}

void
Prober::Impl::drain_udp_errors(int fd)
{
  for (int i = 0; i < 1024; ++i) {
    sockaddr_storage destination{};
    auto queued = read_queued_error(fd, &destination);
    if (!queued) return;
    auto key = udp_key(reinterpret_cast<const sockaddr*>(&destination));
    auto it = key ? m_udp_in_flight.find(*key) : m_udp_in_flight.end();
    if (it != m_udp_in_flight.end()) finish(it->second, classify_queued_error(*queued));
  }
}

// An answer from `from`: the probe in flight to that address and port has
// its reply (authentic or not); anything else is late or stray.
void
Prober::Impl::answer_udp(const sockaddr* from, std::string_view reply)
{
  auto key = udp_key(from);
  auto it = key ? m_udp_in_flight.find(*key) : m_udp_in_flight.end();
  if (it == m_udp_in_flight.end()) return;
  auto slot = it->second;
  auto finding = open_with(m_probes[slot], reply);
  if (!finding.responder || !finding.responder->authentic) {
    auto earlier = m_udp_earlier_nonce.find(*key);
    if (earlier != m_udp_earlier_nonce.end()) {
      auto late = parse_identity_reply(m_token, reply, earlier->second, Protocol::udp);
      if (late && late->authentic) finding.responder = std::move(late);
    }
  }
  finish(slot, std::move(finding));
}

void
Prober::Impl::close_udp_channels()
{
  for (auto& channel : m_udp) {
    if (channel.fd) m_loop.remove(channel.fd.get());
    channel.fd.reset();
    channel.error = 0;
  }
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
    auto on_ready = [this, slot, generation](std::uint32_t events) { on_event(slot, generation, events); };
    if (!m_loop.add(fd.get(), EPOLLOUT | EPOLLIN | EPOLLET, std::move(on_ready), EventLoop::Priority::bulk)) {
      int error = errno;
      m_free.push_back(slot);
      return defer_or_settle(job, error);
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
  probe.deadline = now + m_options.timeout;
  ++m_in_flight;
  m_deadlines.push(probe.deadline, slot, generation);
  probe.young = true;
  ++m_young;
  if (hedgeable(job.target)) {
    m_hedges.push(now + m_options.hedge_after, slot, generation);
  } else if (m_options.quiet_after < m_options.timeout) {
    m_quiet.push(now + m_options.quiet_after, slot, generation);
  }
  if (protocol == Protocol::udp && m_options.udp_resend.count() > 0 && m_options.udp_resend < m_options.timeout) {
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
Prober::Impl::on_event(std::uint32_t slot, std::uint32_t generation, std::uint32_t events)
{
  if (!live(slot, generation)) return;
  auto& probe = m_probes[slot];
  std::optional<Finding> finding;
  try {
    finding = on_tcp_event(probe, events);
  } catch (...) {
    finding = found(ProbeState::error, current_exception_errno());
  }
  if (finding) finish(slot, std::move(*finding));
}

std::optional<Finding>
Prober::Impl::on_tcp_event(Probe& probe, std::uint32_t events)
{
  return probe.phase == Phase::connecting ? on_connect_result(probe, events) : read_identity_line(probe, events);
}

std::optional<Finding>
Prober::Impl::on_connect_result(Probe& probe, std::uint32_t events)
{
  int fd = probe.fd.get();
  // Writable without an error or hang-up: connected, no need to ask.
  bool clean = (events & EPOLLOUT) && !(events & (EPOLLERR | EPOLLHUP));
  int error = clean ? 0 : pending_socket_error(fd);
  // Connected, then reset before we looked: something accepted the connection.
  if (error == ECONNRESET || error == EPIPE) return open_with(probe, {});
  if (error != 0) return classify_failure(fd, error);
  if (m_may_self_connect[probe.job.target] && is_self_connect(fd, probe.peer)) {
    reset_on_close(fd); // no TIME_WAIT for a connection to itself either
    return found(ProbeState::refused, ECONNREFUSED);
  }
  probe.phase = Phase::reading;
  // The port is proven reachable; the identity line gets its own, fixed wait,
  // so a destination agent that is busy is not mistaken for another responder.
  m_identity_deadlines.push(Clock::now() + m_options.identity_timeout, std::uint32_t(&probe - m_probes.data()),
                            probe.generation);
  // A failed send needs no handling here: the read that follows sees the reset.
  ::send(fd, probe.payload.data(), probe.payload.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  int off = 0;
  ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &off, sizeof off);
  return std::nullopt; // the line's arrival is the next edge (EPOLLIN)
}

// Reads until a whole line, EOF, a reset, or k_max_identity_line bytes.
std::optional<Finding>
Prober::Impl::read_identity_line(Probe& probe, std::uint32_t events)
{
  // An agent resets the connection right after its line (no FIN, no
  // TIME_WAIT on either side); what it sent before stays readable.
  probe.peer_reset = events & (EPOLLHUP | EPOLLERR);
  char buffer[k_max_identity_line];
  auto room = k_max_identity_line - probe.received.size();
  auto count = ::recv(probe.fd.get(), buffer, room, MSG_DONTWAIT);
  if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return std::nullopt;
  if (count <= 0) return open_with(probe, probe.received); // EOF or reset: what came is all there is
  probe.received.append(buffer, std::size_t(count));
  auto newline = probe.received.find('\n');
  if (newline != std::string::npos) return open_with(probe, std::string_view(probe.received).substr(0, newline + 1));
  if (probe.received.size() >= k_max_identity_line) return open_with(probe, probe.received);
  return std::nullopt;
}

Finding
Prober::Impl::open_with(const Probe& probe, std::string_view reply) const
{
  Finding finding = found(ProbeState::open);
  if (!reply.empty()) finding.responder = parse_identity_reply(m_token, reply, probe.nonce, probe.protocol);
  return finding;
}

void
Prober::Impl::on_deadline(std::uint32_t slot, std::uint32_t generation)
{
  if (!live(slot, generation)) return;
  auto& probe = m_probes[slot];
  // Connected probes wait for their identity line on their own deadline.
  if (probe.phase == Phase::reading) return;
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
  auto& hedged = m_hedged[probe.job.target][probe.job.port_index];
  if (probe.phase != Phase::connecting || m_retries_left == 0 || hedged) return;
  hedged = 1;
  m_deferred.push_front(probe.job);
  ++m_total;
  fill();
}

// Unanswered for quiet_after while nothing of its target, a range of
// k_silent_range ports or more, has opened yet: presumed dropped, out of
// the window (it keeps its socket and its deadline, and is not resent), so
// the next probe can start. Where ports of the target have opened, a slow
// probe is a busy machine's, and more probes in flight would only add load.
void
Prober::Impl::on_quiet(std::uint32_t slot, std::uint32_t generation)
{
  if (!live(slot, generation) || !m_probes[slot].young) return;
  auto target = m_probes[slot].job.target;
  if (m_target_opened[target] || m_outcomes[target].ports.size() < k_silent_range) return;
  m_probes[slot].young = false;
  --m_young;
  reopen_window();
  fill();
}

// A window narrowed by answers that queued up stays narrow only while there
// are answers to say so. Without any for a whole timeout (what is left is
// silent: a dropped range, a dead agent's ports) it is whole again, as at
// the start, or a silent range would crawl through a few dozen probes a
// timeout (a check with one agent dead took 25 s instead of 3).
void
Prober::Impl::reopen_window()
{
  auto limit = std::max<std::size_t>(m_options.max_in_flight, 1);
  if (m_window >= limit || Clock::now() - m_last_answer < m_options.timeout) return;
  m_window = limit;
  m_latency_sum = {};
  m_latency_samples = 0;
}

void
Prober::Impl::on_identity_deadline(std::uint32_t slot, std::uint32_t generation)
{
  if (!live(slot, generation) || m_probes[slot].phase != Phase::reading) return;
  auto& probe = m_probes[slot];
  // A busy loop takes at most one batch of readiness events per turn and runs
  // the due deadlines after it, so the line may be waiting in the socket while
  // its event is still in the kernel's queue: read before giving up on it.
  if (auto finding = read_identity_line(probe, 0)) return finish(slot, std::move(*finding));
  // Connected but no whole line in time: something is there, not our agent.
  finish(slot, open_with(probe, {}));
}

void
Prober::Impl::on_resend(std::uint32_t slot, std::uint32_t generation)
{
  if (!live(slot, generation)) return;
  auto& probe = m_probes[slot];
  if (!probe.young) return; // presumed dropped (on_quiet): resending would only add load
  auto& channel = m_udp[probe.peer.family() == AF_INET6 ? 1 : 0];
  int fd = channel.fd.get();
  auto sent = ::sendto(fd, probe.payload.data(), probe.payload.size(), MSG_DONTWAIT, probe.peer.get(),
                       probe.peer.length());
  if (sent < 0 && (errno == EPERM || errno == EACCES)) {
    finish(slot, classify_errno(errno));
    return;
  }
  // Another probe's ICMP error, reported (and cleared) by this call: again.
  if (sent < 0 && !is_transient_send_error(errno)) {
    ::sendto(fd, probe.payload.data(), probe.payload.size(), MSG_DONTWAIT, probe.peer.get(), probe.peer.length());
  }
  auto next = Clock::now() + m_options.udp_resend;
  if (next < probe.deadline) m_resends.push(next, slot, generation);
}

// The window follows how long answers take (Little's law: probes in flight
// = rate x latency). Where the machine or the destination cannot keep up,
// more probes in flight do not raise the rate, they only make every answer
// later, until answers miss the timeout and read as drops. So: answers
// slower than k_slow_share of the timeout shrink the window by a third;
// faster than k_fast_share let it grow by a quarter, up to max_in_flight
// (it shrinks only while answers take twice the fastest one's time: a long
// path is slow without any queue, and a smaller window would not help).
// Only an agent's answers count (an identity line, TCP or UDP): they cross
// both machines' loops. Silence does not (a firewall's drop is not load,
// and a silent probe in the window would then hold back the rest of its
// range), nor do refusals (the kernel's ICMP errors are rate limited: one
// answering a resend much later says nothing about load), nor a service
// that keeps the connection without a word until identity_timeout.
void
Prober::Impl::adapt_window(const Probe& probe, const Finding& finding)
{
  if (finding.state != ProbeState::open || !finding.responder) return;
  auto started = probe.deadline - m_options.timeout;
  m_last_answer = Clock::now();
  auto latency = std::chrono::nanoseconds(m_last_answer - started);
  m_fastest = std::min(m_fastest, latency);
  m_latency_sum += latency;
  if (++m_latency_samples < k_window_samples) return;
  auto mean = m_latency_sum / m_latency_samples;
  m_latency_sum = {};
  m_latency_samples = 0;
  auto limit = std::max<std::size_t>(m_options.max_in_flight, 1);
  // Slow because answers queue up (not because the path is long: then a
  // smaller window would only lower the rate).
  if (mean > m_options.timeout * k_slow_share && mean > 2 * m_fastest) {
    m_window = std::max(std::min(k_min_window, limit), m_window * 2 / 3);
  } else if (mean < m_options.timeout * k_fast_share) {
    m_window = std::min(limit, m_window + m_window / 4 + 1);
  }
}

// Settles the probe in `slot`, frees the slot, and starts the next jobs.
// The caller must not touch the probe afterwards (the slot may be reused).
void
Prober::Impl::finish(std::uint32_t slot, Finding finding)
{
  auto& probe = m_probes[slot];
  auto job = probe.job;
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
    m_loop.forget(probe.fd.get());
    if (probe.phase == Phase::reading && !probe.peer_reset) reset_on_close(probe.fd.get());
    probe.fd.reset();
  } else if (auto it = m_udp_in_flight.find(probe.key); it != m_udp_in_flight.end()) {
    m_udp_in_flight.erase(it);
    m_udp_earlier_nonce[probe.key] = probe.nonce;
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
  if (opened) m_target_opened[job.target] = 1;
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
  for (std::uint32_t target = 0; target < m_outcomes.size(); ++target) {
    if (!m_addresses[target]) continue;
    auto& ports = m_outcomes[target].ports;
    // A long range of which nothing opened: a firewall's drop, final.
    bool silence_is_final = ports.size() >= k_silent_range
                            && std::none_of(ports.begin(), ports.end(),
                                            [](const PortOutcome& port) { return port.state == ProbeState::open; });
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

// A reading at most every k_table_read_interval while there is room (a
// probe launched in between adds one entry), and every k_table_recheck while
// the table is full. True: start nothing now.
bool
Prober::Impl::table_full()
{
  if (!m_options.conntrack || (m_deferred.empty() && m_next_target >= m_start_order.size())) return false;
  if (m_table_timer != 0) return true;
  auto now = Clock::now();
  if (!m_table_full && now - m_table_read < k_table_read_interval) return false;
  m_table_read = now;
  auto reading = m_options.conntrack();
  bool full = reading && reading->max > 0
              && double(reading->count) >= m_options.conntrack_ceiling * double(reading->max);
  if (!full) {
    release_table(now);
    return false;
  }
  if (!m_table_full) m_held_since = now;
  m_table_full = true;
  if (reading->count >= m_fullest.count) m_fullest = *reading;
  m_table_timer = m_loop.after(k_table_recheck, [this] {
    m_table_timer = 0;
    fill();
  });
  return true;
}

TableHold
Prober::Impl::held_for_conntrack() const
{
  auto held = m_held + (m_table_full ? Clock::now() - m_held_since : std::chrono::nanoseconds{0});
  return {std::chrono::duration_cast<std::chrono::milliseconds>(held), m_fullest};
}

// The hold (if any) ends now.
void
Prober::Impl::release_table(Clock::time_point now)
{
  if (m_table_full) m_held += now - m_held_since;
  m_table_full = false;
  if (m_table_timer != 0) m_loop.cancel(m_table_timer);
  m_table_timer = 0;
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
  close_udp_channels();
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
