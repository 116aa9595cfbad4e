// What an agent saw of probes, counted per (protocol, peer address, port):
// the capture counts the packets that reached the interface (or left it), the
// responder the probes that reached its sockets. The check asks about a
// failing flow's ports from its source (agent_requests.cpp, "observed").
//
// Every record() is numbered; each key keeps the number of its last record,
// so a question can leave out what was recorded before a mark() (an earlier
// check's probes prove nothing now). Memory is bounded: past max_keys, a new
// key is not recorded but counted in unrecorded(), because a record lost
// would read as "not seen".
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "model/types.hpp"

namespace portmatrix {

// An IPv4 (first 4 bytes) or IPv6 address as raw bytes, the rest zero.
using PeerBytes = std::array<std::uint8_t, 16>;

// `text` in `family` (AF_INET, AF_INET6) as PeerBytes; nullopt when it is not one.
std::optional<PeerBytes> peer_bytes(int family, const std::string& text);

class PeerPortCounts
{
public:
  explicit PeerPortCounts(std::size_t max_keys = std::size_t(1) << 20) : m_max_keys(max_keys) {}

  void record(Protocol protocol, const PeerBytes& peer, std::uint16_t port);

  // Records of (protocol, peer, port) made after `since` (0: all); 0 when
  // its last one came before. A `since` beyond mark() is no mark of these
  // counts (they were cleared since it was given): all count.
  std::uint32_t seen(Protocol protocol, const PeerBytes& peer, std::uint16_t port, std::uint64_t since = 0) const;

  // Records so far, kept or not: a record made later is seen by a question
  // that passes this mark.
  std::uint64_t mark() const { return m_records; }
  // Records of a new key past max_keys.
  std::uint64_t unrecorded() const { return m_unrecorded; }
  void clear();
  // Forgets the keys whose last record is at or before `mark` (no question
  // with a later `since` counts them) and gives their memory back. Marks
  // stay valid: mark() goes on from where it was.
  void forget_through(std::uint64_t mark);
  std::size_t size() const { return m_counts.size(); }

private:
  struct Key
  {
    PeerBytes peer;
    std::uint16_t port;
    std::uint8_t protocol;
    std::uint8_t unused = 0; // no padding: the key hashes as plain bytes

    friend bool operator==(const Key&, const Key&) = default;
  };
  static_assert(sizeof(Key) == 20);

  struct KeyHash
  {
    std::size_t operator()(const Key& key) const;
  };

  struct Count
  {
    std::uint32_t records = 0;
    std::uint64_t last = 0; // m_records when the last one was made
  };

  std::size_t m_max_keys;
  std::unordered_map<Key, Count, KeyHash> m_counts;
  std::uint64_t m_records = 0;
  std::uint64_t m_unrecorded = 0;
};

} // namespace portmatrix
