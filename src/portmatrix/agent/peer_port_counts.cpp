#include "agent/peer_port_counts.hpp"

#include <arpa/inet.h>
#include <malloc.h>
#include <sys/socket.h>

#include <functional>
#include <string_view>

namespace portmatrix {
namespace {

// Keys forgotten at once past which the memory is given back to the system.
constexpr std::size_t k_trim_after = 4096;

} // namespace

std::optional<PeerBytes>
peer_bytes(int family, const std::string& text)
{
  PeerBytes bytes{};
  if ((family != AF_INET && family != AF_INET6) || inet_pton(family, text.c_str(), bytes.data()) != 1) {
    return std::nullopt;
  }
  return bytes;
}

std::size_t
PeerPortCounts::KeyHash::operator()(const Key& key) const
{
  return std::hash<std::string_view>()(std::string_view(reinterpret_cast<const char*>(&key), sizeof(key)));
}

void
PeerPortCounts::record(Protocol protocol, const PeerBytes& peer, std::uint16_t port)
{
  ++m_records;
  Key key{peer, port, std::uint8_t(protocol)};
  Count* count = nullptr;
  if (m_counts.size() < m_max_keys) {
    count = &m_counts[key];
  } else if (auto it = m_counts.find(key); it != m_counts.end()) {
    count = &it->second;
  }
  if (!count) {
    ++m_unrecorded;
    return;
  }
  ++count->records;
  count->last = m_records;
}

std::uint32_t
PeerPortCounts::seen(Protocol protocol, const PeerBytes& peer, std::uint16_t port, std::uint64_t since) const
{
  if (since > m_records) since = 0;
  auto it = m_counts.find(Key{peer, port, std::uint8_t(protocol)});
  return it == m_counts.end() || it->second.last <= since ? 0 : it->second.records;
}

void
PeerPortCounts::forget_through(std::uint64_t mark)
{
  auto forgotten = std::erase_if(m_counts, [mark](const auto& entry) { return entry.second.last <= mark; });
  if (forgotten == 0) return;
  // An unordered_map keeps its buckets: a fresh one gives them back.
  std::unordered_map<Key, Count, KeyHash> kept(m_counts.begin(), m_counts.end());
  m_counts.swap(kept);
  // Thousands of small nodes freed sit in malloc's free lists, below what
  // is still in use: without a trim the process keeps them (262,140 keys
  // forgotten left the agent at 28 of its 31 MB).
  if (forgotten >= k_trim_after) ::malloc_trim(0);
}

void
PeerPortCounts::clear()
{
  m_counts.clear();
  m_records = 0;
  m_unrecorded = 0;
}

} // namespace portmatrix
