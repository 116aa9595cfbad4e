// The counts behind the capture's and the responder's word: per (protocol,
// peer, port), limited to what came after a mark, bounded in memory with
// what it could not keep counted, never silently dropped.
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "agent/peer_port_counts.hpp"

namespace portmatrix {
namespace {

TEST(PeerPortCounts, CountsPerProtocolPeerAndPortSinceAMark)
{
  PeerPortCounts counts;
  auto a = *peer_bytes(AF_INET, "10.0.0.1");
  auto b = *peer_bytes(AF_INET, "10.0.0.2");
  counts.record(Protocol::udp, a, 8472);
  counts.record(Protocol::udp, a, 8472);
  auto mark = counts.mark();
  EXPECT_EQ(mark, 2u);
  counts.record(Protocol::tcp, b, 6443);
  EXPECT_EQ(counts.seen(Protocol::udp, a, 8472), 2u);
  EXPECT_EQ(counts.seen(Protocol::udp, a, 8472, mark), 0u) << "nothing since the mark";
  EXPECT_EQ(counts.seen(Protocol::tcp, b, 6443, mark), 1u);
  EXPECT_EQ(counts.seen(Protocol::tcp, a, 6443), 0u);
  EXPECT_EQ(counts.seen(Protocol::udp, b, 8472), 0u);
  EXPECT_EQ(counts.seen(Protocol::tcp, b, 6443, 1000), 1u) << "a mark beyond mark() is not ours: all count";
  counts.clear();
  EXPECT_EQ(counts.mark(), 0u);
  EXPECT_EQ(counts.seen(Protocol::udp, a, 8472), 0u);
}

TEST(PeerPortCounts, PastTheCapNewKeysAreCountedAsUnrecorded)
{
  PeerPortCounts counts(2);
  auto a = *peer_bytes(AF_INET6, "fd00::1");
  counts.record(Protocol::tcp, a, 1);
  counts.record(Protocol::tcp, a, 2);
  counts.record(Protocol::tcp, a, 3); // a third key: not kept
  counts.record(Protocol::tcp, a, 1); // a kept key still counts
  EXPECT_EQ(counts.unrecorded(), 1u);
  EXPECT_EQ(counts.mark(), 4u);
  EXPECT_EQ(counts.seen(Protocol::tcp, a, 1), 2u);
  EXPECT_EQ(counts.seen(Protocol::tcp, a, 3), 0u);
}

TEST(PeerPortCounts, PeerBytesTakeOnlyAnAddressOfTheFamily)
{
  EXPECT_TRUE(peer_bytes(AF_INET, "192.0.2.1"));
  EXPECT_FALSE(peer_bytes(AF_INET, "fd00::1"));
  EXPECT_FALSE(peer_bytes(AF_INET6, "192.0.2.1"));
  EXPECT_FALSE(peer_bytes(AF_UNSPEC, "192.0.2.1"));
  EXPECT_FALSE(peer_bytes(AF_INET, "not an address"));
  auto bytes = *peer_bytes(AF_INET, "192.0.2.1");
  EXPECT_EQ(bytes[0], 192);
  EXPECT_EQ(bytes[3], 1);
  EXPECT_EQ(bytes[4], 0);
}

} // namespace
} // namespace portmatrix
