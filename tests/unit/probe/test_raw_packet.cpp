// The IP-in-IP probe's packet (pure) and the raw socket's filter, run by the
// capture's user-space BPF interpreter.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/capture_filter.hpp"
#include "agent/identity.hpp"
#include "model/provable.hpp"
#include "probe/raw_packet.hpp"

namespace portmatrix {
namespace {

using Bytes = std::vector<std::uint8_t>;

// What a raw IPPROTO_IPIP socket reads: an outer IPv4 header (protocol 4,
// `options` bytes of options) and the encapsulated packet.
Bytes
arrived(const std::string& inner, std::size_t options = 0, std::uint8_t protocol = 4)
{
  Bytes packet(20 + options, 0);
  packet[0] = std::uint8_t(0x40 | ((20 + options) / 4));
  packet[9] = protocol;
  packet[12] = 10, packet[13] = 0, packet[14] = 0, packet[15] = 7; // from 10.0.0.7
  packet[16] = 10, packet[17] = 0, packet[18] = 0, packet[19] = 2;
  packet.insert(packet.end(), inner.begin(), inner.end());
  return packet;
}

bool
kept(const Bytes& packet)
{
  auto program = ipip_socket_filter();
  return run_filter(program, packet, 0x0800, 0) > 0;
}

TEST(IpipPacket, IsAnInnerHeaderToLoopbackOfProtocol253WithTtl1AndAValidChecksum)
{
  auto payload = make_probe_payload("0123456789abcdef");
  auto inner = make_ipip_packet({10, 0, 0, 7}, payload);
  ASSERT_EQ(inner.size(), 20 + payload.size());
  auto byte = [&](std::size_t i) { return std::uint8_t(inner[i]); };
  EXPECT_EQ(byte(0), 0x45);
  EXPECT_EQ((byte(2) << 8) | byte(3), int(inner.size()));
  EXPECT_EQ(byte(6) & 0x40, 0x40) << "DF";
  EXPECT_EQ(byte(8), 1) << "TTL 1: a decapsulated probe is never forwarded";
  EXPECT_EQ(byte(9), 253) << "RFC 3692: experimentation";
  EXPECT_EQ(std::vector<std::uint8_t>(inner.begin() + 12, inner.begin() + 16), (Bytes{10, 0, 0, 7}));
  EXPECT_EQ(std::vector<std::uint8_t>(inner.begin() + 16, inner.begin() + 20), (Bytes{127, 0, 0, 1}));
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < 20; i += 2) sum += std::uint32_t((byte(i) << 8) | byte(i + 1));
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  EXPECT_EQ(sum, 0xFFFFu) << "the header checksums to all ones";
  EXPECT_EQ(inner.substr(20), payload);
}

TEST(IpipPacket, ParsesWhatItBuildsBehindAnyOuterHeader)
{
  auto payload = make_probe_payload("0123456789abcdef");
  for (std::size_t options : {0, 4, 40}) {
    auto packet = arrived(make_ipip_packet({10, 0, 0, 7}, payload), options);
    auto parsed = parse_ipip_packet(packet);
    ASSERT_TRUE(parsed) << options;
    EXPECT_EQ(parsed->payload, payload);
    EXPECT_EQ(parsed->outer_source, (Ipv4Bytes{10, 0, 0, 7}));
    EXPECT_TRUE(kept(packet)) << options;
    EXPECT_EQ(parse_probe_payload(parsed->payload), "0123456789abcdef");
  }
}

TEST(IpipPacket, LeavesOutATunnelsTrafficAndMalformedPackets)
{
  auto probe = make_ipip_packet({10, 0, 0, 7}, "PMX1 x\n");
  auto pod_traffic = probe;
  pod_traffic[9] = 6; // an inner TCP segment
  pod_traffic[16] = char(192), pod_traffic[17] = char(168), pod_traffic[18] = 1, pod_traffic[19] = 9;
  auto to_pod = probe;
  to_pod[16] = 10; // protocol 253, but not to 127.0.0.1
  auto fragment = probe;
  fragment[7] = 8; // a later fragment
  auto too_long = probe;
  too_long[3] = char(std::uint8_t(too_long[3]) + 1); // says one byte more than there is
  std::vector<Bytes> dropped = {
    arrived(pod_traffic), arrived(to_pod), arrived(probe.substr(0, 19)), Bytes{0x45, 0, 0},
  };
  for (const auto& packet : dropped) {
    EXPECT_FALSE(parse_ipip_packet(packet));
    EXPECT_FALSE(kept(packet));
  }
  // The filter keeps what only user space tells apart: a fragment, a bad
  // length, another outer protocol (a raw IPPROTO_IPIP socket gets none).
  EXPECT_FALSE(parse_ipip_packet(arrived(fragment)));
  EXPECT_FALSE(parse_ipip_packet(arrived(too_long)));
  EXPECT_FALSE(parse_ipip_packet(arrived(probe, 0, 17)));
}

TEST(IpipPacket, TheProbesProtocolsAreTcpUdpAndIpip)
{
  EXPECT_TRUE(has_probe(Protocol::tcp));
  EXPECT_TRUE(has_probe(Protocol::udp));
  EXPECT_TRUE(has_probe(Protocol::ipip));
  EXPECT_FALSE(has_probe(Protocol::vrrp));
  EXPECT_FALSE(has_probe(Protocol::esp));
}

} // namespace
} // namespace portmatrix
