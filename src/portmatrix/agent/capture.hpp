// Watches an interface with an AF_PACKET socket (needs CAP_NET_RAW) and
// records probe packets, keyed by (protocol, the other end's address,
// destination port).
//
// Inbound (the default): TCP SYNs and UDP datagrams that arrived for this
// node's address. AF_PACKET sees a packet before the host firewall, so a
// probe seen here but not answered was dropped by this host; one not seen
// never arrived.
// Outbound: TCP SYNs that left from this node's address. AF_PACKET sees them
// after the host's output rules, so a SYN our prober sent that is not seen
// here was dropped by this host's own firewall (connect() never says so; a
// UDP send gets EPERM instead).
// Inbound, only the peers set_peers() names are kept, in the kernel's filter
// (capture_filter.hpp): traffic from elsewhere is never counted, not even as
// lost. Memory is bounded: past the cap, new keys are counted only. And it
// is held per check: each check opens a window (its hello) and closes it
// when it ends (`done`), or the window expires with the check's deadline.
// Inbound records are kept only while some window is open, and records
// older than the oldest open window are forgotten, so the memory a check
// used is released when its window closes.
// A capture that falls behind loses packets (the kernel drops what its full
// socket buffer cannot take; past the key cap a new key is not recorded), and
// a lost packet would read as "not seen": lost() counts them, so a diagnosis
// never rests on a capture that lost packets.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/capture_filter.hpp"
#include "model/types.hpp"
#include "net/event_loop.hpp"
#include "net/fd.hpp"

namespace portmatrix {

// The longest a window stays open: check's longest --deadline (3600 s) and
// the agent's grace after it, with room to spare.
inline constexpr std::chrono::minutes k_max_window_lifetime{65};
// Windows open at once (checks running against one agent at once).
inline constexpr std::size_t k_max_windows = 16;

class Capture
{
public:
  // `address` is this node's address (IPv4 or IPv6): only packets to it
  // (inbound) or from it (outbound) count.
  Capture(EventLoop& loop, std::string address, Direction direction = Direction::inbound,
          std::size_t max_keys = 1 << 20);
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Inbound: keep only packets from these addresses or networks
  // ("192.0.2.7", "10.0.0.0/8"; empty: every source). Takes effect at
  // start(). Returns what went wrong (a bad entry; more networks than the
  // filter holds, which keeps every source), else empty.
  std::string set_peers(const std::vector<std::string>& peers);

  // Opens the socket on every interface (or `interface`, if not empty).
  // Returns false with a reason (no CAP_NET_RAW, ...): diagnosis then
  // degrades to `filtered`.
  bool start(const std::string& interface, std::string& error);
  bool active() const;
  // Reads what is queued, then closes the socket; the counts stay.
  void stop();
  // Reads everything queued now and the kernel's drop counter, so seen(),
  // packets() and lost() cover every packet that reached the socket so far
  // (the loop reads in bounded batches and may be behind). Call it before
  // answering what the capture saw. Nothing happens when not active.
  void catch_up();
  // Forgets every count, lost() included, and what is queued now (a new
  // window starts).
  void clear_counts();

  // Packets seen between `peer` (inbound: from it; outbound: to it) and
  // `port` (0: never), or 0 when the last of them came before `since` (a
  // mark()): what the capture saw before a check began is no evidence for it.
  // A `since` beyond mark() is no mark of this capture's: all counts.
  std::uint32_t seen(Protocol protocol, const std::string& peer, std::uint16_t port, std::uint64_t since = 0) const;
  std::uint64_t packets() const;
  // A point in what the capture records: a packet recorded later is seen
  // since it. Valid until clear_counts().
  std::uint64_t mark() const;

  // A check's window: while it is open, what arrives is kept for the check
  // to ask about (seen() since `mark`).
  struct Window
  {
    std::uint64_t id = 0; // never 0; new for every window of this capture
    std::uint64_t mark = 0;
  };
  // A check begins (hello): reads what is queued (it came before the
  // check), and opens a window that closes by itself after `lifetime` (at
  // most k_max_window_lifetime). nullopt when k_max_windows are open.
  std::optional<Window> open_window(std::chrono::milliseconds lifetime);
  // How long window `id` stays open; zero when it is closed, expired or unknown.
  std::chrono::milliseconds window_left(std::uint64_t id) const;
  // The check ended: its window closes (an unknown or closed one is ignored),
  // and records no open window can ask about are forgotten, their memory given back.
  void close_window(std::uint64_t id);
  // Windows open now.
  std::size_t windows() const;
  // Keys held now (memory in use).
  std::size_t keys() const;
  // Packets this capture lost since it was made or last cleared: dropped by
  // the kernel because the socket's buffer was full (PACKET_STATISTICS
  // tp_drops, as of the last catch_up() or stop()), plus probes not recorded
  // because the key map was full. Nonzero: "not seen" proves nothing.
  std::uint64_t lost() const;

  // For tests: the receive buffer start() asks for, in bytes (default 4 MiB;
  // the kernel rounds a tiny one up to its minimum). Takes effect at start().
  void set_receive_buffer(int bytes);

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// One probe packet as Capture's socket delivers it: `packet` starts at the
// network header, `ethertype` (host order) says IPv4 or IPv6. Pure, so the
// parsing is testable without CAP_NET_RAW.
struct ArrivedProbe
{
  Protocol protocol = Protocol::tcp;
  std::array<std::uint8_t, 16> peer{}; // the other end (source, or destination outbound); network order, IPv4 in the first 4 bytes
  std::uint16_t port = 0;              // destination port
};
// The probe in `packet` if it is a TCP SYN without ACK, a UDP datagram (a
// first fragment; not outbound) or an IP-in-IP probe (IPv4, inbound; port 0:
// probe/raw_packet.hpp) addressed to (inbound) or sent from
// (outbound) `node` (4 or 16 address bytes), else nullopt (other traffic,
// truncated or malformed headers).
std::optional<ArrivedProbe> parse_arrived_probe(std::span<const std::uint8_t> packet, std::uint16_t ethertype,
                                                std::span<const std::uint8_t> node,
                                                Direction direction = Direction::inbound);

struct Inventory;
// The sources an agent's capture keeps: every node's address and the
// inventory's client_cidrs (probes come from nothing else).
std::vector<std::string> capture_peers(const Inventory& inventory);

} // namespace portmatrix
