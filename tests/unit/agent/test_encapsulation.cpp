// Overlay-shaped probes (agent/encapsulation.hpp): their bytes against
// datagrams built independently (the fuzz corpus, written by a Python
// script from RFC 7348 and RFC 8926), the agent's answer in the same shape,
// and the prober over loopback: a shaped probe is proven only by an answer
// in its shape.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "agent/encapsulation.hpp"
#include "agent/identity.hpp"
#include "net/fd.hpp"
#include "probe/prober.hpp"

namespace portmatrix {
namespace {

using namespace std::chrono_literals;

const Token&
token()
{
  static const auto value = *Token::from_text("encapsulation-test-token-0123456789");
  return value;
}

std::string
corpus(const char* name)
{
  std::ifstream in(std::string(PORTMATRIX_TEST_DATA) + "/fuzz/corpus/identity/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

const std::string k_nonce = "0123456789abcdef";

std::uint16_t
ipv4_checksum(std::string_view header)
{
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < 20; i += 2) sum += std::uint32_t(std::uint8_t(header[i]) << 8 | std::uint8_t(header[i + 1]));
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return std::uint16_t(sum);
}

TEST(Encapsulation, AVxlanProbeIsTheRfc7348HeaderAndAnInnerFrame)
{
  auto probe = shape_probe({Encapsulation::vxlan, 1}, make_probe_payload(k_nonce));
  EXPECT_EQ(probe, corpus("probe-vxlan"));
  ASSERT_EQ(probe.size(), 210u);
  EXPECT_EQ(std::uint8_t(probe[0]), 0x08); // the I flag
  EXPECT_EQ(probe.substr(4, 3), std::string("\0\0\1", 3)); // VNI 1
  EXPECT_EQ(ipv4_checksum(std::string_view(probe).substr(22, 20)), 0xffff); // a valid inner IPv4 header
  EXPECT_EQ(shape_probe({Encapsulation::geneve, 1}, make_probe_payload(k_nonce)), corpus("probe-geneve"));
  EXPECT_EQ(shape_probe({Encapsulation::wireguard, 0}, make_probe_payload(k_nonce)), corpus("probe-wireguard"));
  EXPECT_EQ(shape_probe({Encapsulation::vxlan, 1}, make_probe_payload(k_nonce), 1472), corpus("probe-vxlan-full-size"));
}

TEST(Encapsulation, TheAgentAnswersEveryShapeInThatShapeAndNeverWithMoreBytes)
{
  const std::string node(63, 'n'); // the longest reply
  for (auto kind : {Encapsulation::none, Encapsulation::vxlan, Encapsulation::geneve, Encapsulation::wireguard}) {
    SCOPED_TRACE(std::string(to_string(kind)));
    auto probe = shape_probe({kind, 4096}, make_probe_payload(k_nonce));
    auto reply = answer_probe_datagram(token(), probe, node, 8472);
    ASSERT_TRUE(reply);
    EXPECT_LE(reply->size(), probe.size());
    auto shape = unwrap(*reply);
    ASSERT_TRUE(shape);
    EXPECT_EQ(shape->shape.kind, kind);
    if (kind == Encapsulation::vxlan || kind == Encapsulation::geneve) {
      EXPECT_EQ(shape->shape.vni, 4096u);
      EXPECT_EQ(ipv4_checksum(std::string_view(*reply).substr(22, 20)), 0xffff);
      EXPECT_EQ(reply->substr(22 + 12, 4), probe.substr(22 + 16, 4)); // the inner addresses swapped
    }
    if (kind == Encapsulation::wireguard) {
      EXPECT_EQ(reply->size() % 16, 0u);
    }
    auto line = reply_line(*reply, kind);
    ASSERT_TRUE(line);
    auto identity = parse_identity_reply(token(), *line, k_nonce, Protocol::udp);
    ASSERT_TRUE(identity);
    EXPECT_TRUE(identity->authentic);
    EXPECT_EQ(identity->node, node);
    // A reply of another shape is not this one's.
    for (auto other : {Encapsulation::none, Encapsulation::vxlan, Encapsulation::wireguard}) {
      if (other != kind) {
        EXPECT_FALSE(reply_line(*reply, other)) << to_string(other);
      }
    }
  }
}

TEST(Encapsulation, AFullSizeProbeIsAnsweredFromItsFirstBytes)
{
  auto probe = shape_probe({Encapsulation::vxlan, 1}, make_probe_payload(k_nonce), 1472);
  ASSERT_EQ(probe.size(), 1472u);
  auto reply = answer_probe_datagram(token(), std::string_view(probe).substr(0, k_max_identity_line + 1), "n1", 8472);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(parse_identity_reply(token(), *reply_line(*reply, Encapsulation::vxlan), k_nonce, Protocol::udp)->authentic);
  EXPECT_EQ(shape_probe({Encapsulation::wireguard, 0}, make_probe_payload(k_nonce), 1440).size() % 16, 0u);
}

TEST(Encapsulation, NothingElseIsTakenForAShapedProbe)
{
  auto vxlan = shape_probe({Encapsulation::vxlan, 1}, make_probe_payload(k_nonce));
  EXPECT_FALSE(answer_probe_datagram(token(), vxlan.substr(0, 120), "n1", 8472)); // cut inside the probe
  auto wrong_ethertype = vxlan;
  wrong_ethertype[20] = char(0x86);
  EXPECT_FALSE(unwrap(wrong_ethertype));
  EXPECT_FALSE(answer_probe_datagram(token(), wrong_ethertype, "n1", 8472));
  EXPECT_FALSE(unwrap(std::string(64, '\0')));
  EXPECT_FALSE(answer_probe_datagram(token(), std::string(300, '\x04'), "n1", 8472));
}

// A UDP server on loopback that answers probes as the agent does, or
// (`plain_only`) as an agent that does not know the shapes: the payload's
// nonce found anywhere, answered with a plain line.
class Server
{
public:
  explicit Server(bool plain_only) : m_fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0))
  {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{0, 100000};
    ::setsockopt(m_fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::bind(m_fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    ::getsockname(m_fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
    m_port = ntohs(address.sin_port);
    m_thread = std::thread([this, plain_only] {
      while (!m_stop) {
        char buffer[2048];
        sockaddr_storage from{};
        socklen_t from_length = sizeof from;
        auto count = ::recvfrom(m_fd.get(), buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from), &from_length);
        if (count <= 0) continue;
        std::string_view datagram(buffer, std::size_t(count));
        std::optional<std::string> reply;
        if (plain_only) {
          auto at = datagram.find("PMX1 ");
          if (at != std::string_view::npos) {
            auto nonce = parse_probe_payload(datagram.substr(at, k_probe_payload_size));
            if (nonce) reply = make_identity_reply(token(), *nonce, "n1", Protocol::udp, m_port);
          }
        } else {
          reply = answer_probe_datagram(token(), datagram, "n1", m_port);
        }
        if (reply) ::sendto(m_fd.get(), reply->data(), reply->size(), 0, reinterpret_cast<sockaddr*>(&from), from_length);
      }
    });
  }
  ~Server()
  {
    m_stop = true;
    m_thread.join();
  }
  std::uint16_t port() const { return m_port; }

private:
  Fd m_fd;
  std::uint16_t m_port = 0;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

std::vector<TargetOutcome>
probe_shapes(std::uint16_t port)
{
  std::vector<ProbeTarget> targets;
  for (auto kind : {Encapsulation::none, Encapsulation::vxlan, Encapsulation::geneve, Encapsulation::wireguard}) {
    targets.push_back({Protocol::udp, "127.0.0.1", {port, port}, 1, kind, 1});
  }
  ProbeOptions options;
  options.timeout = 500ms;
  options.udp_resend = 100ms;
  options.retries = 0;
  return Prober::run(token(), std::move(targets), options);
}

TEST(Encapsulation, TheProberProvesEachShapeOfOnePortByItsOwnAnswer)
{
  Server server(false);
  auto outcomes = probe_shapes(server.port());
  ASSERT_EQ(outcomes.size(), 4u);
  for (const auto& outcome : outcomes) {
    SCOPED_TRACE(std::string(to_string(outcome.target.encapsulation)));
    ASSERT_EQ(outcome.ports.size(), 1u);
    EXPECT_EQ(outcome.ports[0].state, ProbeState::open);
    ASSERT_TRUE(outcome.ports[0].responder);
    EXPECT_TRUE(outcome.ports[0].responder->authentic);
  }
}

TEST(Encapsulation, APlainAnswerDoesNotProveAShapedProbe)
{
  Server server(true);
  auto outcomes = probe_shapes(server.port());
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_EQ(outcomes[0].ports[0].state, ProbeState::open); // the plain probe
  for (std::size_t i = 1; i < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i].ports[0].state, ProbeState::filtered) << to_string(outcomes[i].target.encapsulation);
  }
}

} // namespace
} // namespace portmatrix
