// The control channel (TLS 1.3 with the node's PSK) without sockets: a pair
// for the same node and token completes its handshake and carries messages
// of any size; another token, a connection meant for another node, bytes
// recorded on another connection, oversized handshakes and messages and
// foreign bytes are refused, before any plaintext is handed out.
#include <gtest/gtest.h>

#include "agent/control_channel.hpp"

namespace portmatrix {
namespace {

const Token k_token = *Token::from_text("record-layer-token-0123456789");
const Token k_other = *Token::from_text("not-the-same-token-0123456789");

std::string
received(ControlChannel& channel)
{
  auto message = channel.next();
  if (!message) return "error: " + message.error().message;
  return *message ? **message : "nothing";
}

struct Pair
{
  Pair(const Token& client_token = k_token, const Token& agent_token = k_token, std::size_t max = 1 << 20,
       std::string_view client_node = "m1")
    : client(client_token, ChannelSide::client, client_node, max), agent(agent_token, ChannelSide::agent, "m1", max)
  {
    handshake();
  }

  // Moves bytes both ways until neither side has any to send; what each sent is kept.
  void handshake()
  {
    for (int round = 0; round < 10; ++round) {
      auto to_agent = client.take_output();
      client_sent += to_agent;
      agent.feed(to_agent);
      agent_error = agent.next() ? "" : agent.next().error().message;
      auto to_client = agent.take_output();
      client.feed(to_client);
      client_error = client.next() ? "" : client.next().error().message;
      if (to_agent.empty() && to_client.empty()) return;
    }
  }

  ControlChannel client;
  ControlChannel agent;
  std::string client_sent;
  std::string agent_error;
  std::string client_error;
};

TEST(ControlChannelRecords, CarryMessagesBothWaysInAnySize)
{
  Pair pair;
  ASSERT_TRUE(pair.client.keyed()) << pair.client_error;
  ASSERT_TRUE(pair.agent.keyed()) << pair.agent_error;
  for (std::size_t size : {std::size_t(0), std::size_t(1), std::size_t(16380), std::size_t(16385), std::size_t(300000)}) {
    std::string message(size, 'x');
    pair.client.send(message);
    pair.client.send("second");
    auto sealed = pair.client.take_output();
    EXPECT_EQ(sealed.find("xxxx"), std::string::npos) << "encrypted";
    // In pieces: a message is taken only when whole.
    for (std::size_t i = 0; i < sealed.size(); i += 997) {
      EXPECT_EQ(received(pair.agent), "nothing") << "before byte " << i;
      pair.agent.feed(std::string_view(sealed).substr(i, 997));
    }
    EXPECT_EQ(received(pair.agent), message) << size;
    EXPECT_EQ(received(pair.agent), "second");
    pair.agent.send("answer " + std::to_string(size));
    pair.client.feed(pair.agent.take_output());
    EXPECT_EQ(received(pair.client), "answer " + std::to_string(size));
  }
}

// A message queued before the handshake goes out once it completed, never before.
TEST(ControlChannelRecords, AMessageWaitsForTheHandshake)
{
  ControlChannel client(k_token, ChannelSide::client, "m1", 1 << 20);
  ControlChannel agent(k_token, ChannelSide::agent, "m1", 1 << 20);
  client.send("the request");
  auto hello = client.take_output();
  ASSERT_FALSE(hello.empty()) << "the ClientHello";
  EXPECT_EQ(hello[0], '\x16') << "a TLS handshake record";
  agent.feed(hello);
  EXPECT_EQ(received(agent), "nothing");
  EXPECT_FALSE(agent.keyed());
  client.feed(agent.take_output());
  EXPECT_EQ(received(client), "nothing");
  EXPECT_TRUE(client.keyed());
  agent.feed(client.take_output()); // the client's Finished and the request behind it
  EXPECT_EQ(received(agent), "the request");
  EXPECT_TRUE(agent.keyed());
}

TEST(ControlChannelRecords, AnotherTokenFailsTheHandshake)
{
  Pair pair(k_other, k_token);
  EXPECT_FALSE(pair.agent.keyed());
  EXPECT_FALSE(pair.client.keyed());
  EXPECT_NE(pair.agent_error.find("unauthenticated"), std::string::npos) << pair.agent_error;
  EXPECT_NE(pair.client_error.find("wrong token?"), std::string::npos) << pair.client_error;
  auto message = pair.agent.next();
  ASSERT_FALSE(message) << "the channel stays refused";
  EXPECT_EQ(message.error().kind, ChannelError::Kind::unauthenticated);
  EXPECT_EQ(pair.client.next().error().kind, ChannelError::Kind::alert) << "the agent's TLS alert";
}

TEST(ControlChannelRecords, AConnectionForAnotherNodeFailsTheHandshake)
{
  Pair pair(k_token, k_token, 1 << 20, "w1"); // the client meant w1; m1's agent answered
  EXPECT_FALSE(pair.agent.keyed());
  EXPECT_FALSE(pair.client.keyed());
  EXPECT_NE(pair.agent_error.find("a connection for PSK identity 'portmatrix-control-v1/w1'"), std::string::npos)
    << pair.agent_error;
  EXPECT_EQ(pair.agent.next().error().kind, ChannelError::Kind::unauthenticated);
  EXPECT_EQ(pair.client.next().error().kind, ChannelError::Kind::alert) << pair.client_error;
  EXPECT_NE(pair.client_error.find("wrong token?"), std::string::npos) << pair.client_error;
  EXPECT_NE(control_psk(k_token, "w1"), control_psk(k_token, "m1")) << "one key per node";
  EXPECT_EQ(control_psk(k_token, "m1").size(), k_psk_size);
}

TEST(ControlChannelRecords, ARecordedConnectionDoesNotOpenOnAnother)
{
  Pair recorded;
  recorded.client.send("{\"type\": \"hello\"}");
  auto request = recorded.client.take_output();
  recorded.client_sent += request;
  recorded.agent.feed(request);
  ASSERT_EQ(received(recorded.agent), "{\"type\": \"hello\"}") << "where it was sent, it opens";
  ControlChannel replayed(k_token, ChannelSide::agent, "m1", 1 << 20); // the same node; its key share is new
  replayed.feed(recorded.client_sent);
  auto message = replayed.next();
  ASSERT_FALSE(message);
  EXPECT_EQ(message.error().kind, ChannelError::Kind::unauthenticated) << message.error().message;
  EXPECT_FALSE(replayed.keyed());
}

TEST(ControlChannelRecords, OversizedHandshakesAndMessagesAreRefused)
{
  {
    // A ClientHello that announces 100,000 bytes (OpenSSL would take up to 128 KiB): cut at k_max_handshake_bytes.
    ControlChannel agent(k_token, ChannelSide::agent, "m1", 1 << 20);
    std::string body = std::string("\x01\x01\x86\xa0", 4) + std::string(16380, 'a');
    for (int record = 0; record < 2; ++record) {
      agent.feed(std::string("\x16\x03\x01\x40\x00", 5) + body.substr(0, 16384));
      body = std::string(16384, 'b');
    }
    auto message = agent.next();
    ASSERT_FALSE(message);
    EXPECT_EQ(message.error().kind, ChannelError::Kind::oversized) << message.error().message;
  }
  {
    ControlChannel agent(k_token, ChannelSide::agent, "m1", 1 << 20);
    agent.feed(std::string("\x16\x03\x01\xff\xff", 5)); // a record above TLS's 16 KiB, announced
    auto message = agent.next();
    ASSERT_FALSE(message);
    EXPECT_NE(message.error().kind, ChannelError::Kind::unauthenticated) << message.error().message;
  }
  {
    Pair small(k_token, k_token, 10000);
    ASSERT_TRUE(small.agent.keyed());
    small.client.send(std::string(100000, ' '));
    auto sealed = small.client.take_output();
    // The first record (16 KiB, a 5-byte header, a type byte and a 16-byte tag) holds the
    // length: refused before the rest came.
    small.agent.feed(sealed.substr(0, 16384 + 5 + 1 + 16));
    auto message = small.agent.next();
    ASSERT_FALSE(message);
    EXPECT_EQ(message.error().kind, ChannelError::Kind::oversized);
  }
}

TEST(ControlChannelRecords, ForeignBytesAreMalformed)
{
  for (std::string bytes : {std::string("\0\x10\0\0[[[[", 8), std::string("GET / HTTP/1.1\r\n"),
                            std::string("\x17\x03\x03\0\x20", 5) + std::string(32, 'a') /* data before a handshake */,
                            std::string("\x01\0\0\x48PMCTL001", 12) + std::string(64, 'a') /* the earlier format */}) {
    ControlChannel agent(k_token, ChannelSide::agent, "m1", 1 << 20);
    agent.feed(bytes);
    auto message = agent.next();
    ASSERT_FALSE(message) << bytes;
    EXPECT_EQ(message.error().kind, ChannelError::Kind::malformed) << message.error().message;
  }
}

} // namespace
} // namespace portmatrix
