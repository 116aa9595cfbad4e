// The control channel's record layer without sockets: keyed pairs exchange
// messages of any size; the other token, a changed byte, records replayed on
// another connection, oversized and foreign records are refused, and the
// refusal comes from the fixed header or the tag, before any plaintext.
#include <gtest/gtest.h>

#include "agent/control_channel.hpp"

namespace portmatrix {
namespace {

const Token k_token = *Token::from_text("record-layer-token-0123456789");
const Token k_other = *Token::from_text("not-the-same-token-0123456789");

struct Pair
{
  Pair(const Token& client_token = k_token, const Token& agent_token = k_token, std::size_t max = 1 << 20)
    : client(client_token, ChannelSide::client, max), agent(agent_token, ChannelSide::agent, max)
  {
    client.feed(agent.greeting());
    agent.feed(client.greeting());
    EXPECT_TRUE(client.next());
    EXPECT_TRUE(agent.next());
  }
  ControlChannel client;
  ControlChannel agent;
};

std::string
received(ControlChannel& channel)
{
  auto message = channel.next();
  if (!message) return "error: " + message.error().message;
  return *message ? **message : "nothing";
}

TEST(ControlChannelRecords, CarryMessagesBothWaysInAnySize)
{
  Pair pair;
  ASSERT_TRUE(pair.client.keyed());
  ASSERT_TRUE(pair.agent.keyed());
  for (std::size_t size : {std::size_t(0), std::size_t(1), k_max_record_plaintext, k_max_record_plaintext + 1,
                           std::size_t(300000)}) {
    std::string message(size, 'x');
    auto sealed = pair.client.seal(message);
    EXPECT_EQ(sealed.find("xxxx"), std::string::npos);
    // In pieces: a record is taken only when whole.
    for (std::size_t i = 0; i < sealed.size(); i += 997) {
      EXPECT_EQ(received(pair.agent), "nothing") << "before byte " << i;
      pair.agent.feed(std::string_view(sealed).substr(i, 997));
    }
    EXPECT_EQ(received(pair.agent), message) << size;
    auto back = pair.agent.seal("answer " + std::to_string(size));
    pair.client.feed(back);
    EXPECT_EQ(received(pair.client), "answer " + std::to_string(size));
  }
}

TEST(ControlChannelRecords, AnotherTokenIsUnauthenticated)
{
  Pair pair(k_other, k_token);
  pair.agent.feed(pair.client.seal("{\"type\": \"hello\"}"));
  auto message = pair.agent.next();
  ASSERT_FALSE(message);
  EXPECT_EQ(message.error().kind, ChannelError::Kind::unauthenticated);
  EXPECT_FALSE(pair.agent.next()) << "the channel stays refused";
}

TEST(ControlChannelRecords, ARecordedConnectionDoesNotOpenOnAnother)
{
  Pair recorded;
  auto sealed = recorded.client.seal("{\"type\": \"hello\"}");
  Pair replayed; // the same token; the agent's random is new
  replayed.agent.feed(sealed);
  auto message = replayed.agent.next();
  ASSERT_FALSE(message);
  EXPECT_EQ(message.error().kind, ChannelError::Kind::unauthenticated);
}

TEST(ControlChannelRecords, OversizedRecordsAndMessagesAreRefusedFromTheirHeader)
{
  Pair pair(k_token, k_token, 10000);
  pair.agent.feed(std::string("\x02\x01\x20\x00", 4)); // 8 KiB announced, none of it sent
  auto message = pair.agent.next();
  ASSERT_FALSE(message);
  EXPECT_EQ(message.error().kind, ChannelError::Kind::oversized);

  Pair small(k_token, k_token, 10000);
  small.agent.feed(small.client.seal(std::string(10001, ' ')));
  message = small.agent.next();
  ASSERT_FALSE(message);
  EXPECT_EQ(message.error().kind, ChannelError::Kind::oversized);
}

TEST(ControlChannelRecords, ForeignBytesAreMalformed)
{
  for (std::string bytes : {std::string("\0\x10\0\0[[[[", 8), std::string("GET / HTTP/1.1\r\n"),
                            std::string("\x02\x01\0\x20", 4) + std::string(32, 'a') /* data before a greeting */,
                            std::string("\x01\0\0\x48", 4) + std::string(72, 'z') /* not a greeting */}) {
    ControlChannel agent(k_token, ChannelSide::agent, 1 << 20);
    agent.feed(bytes);
    auto message = agent.next();
    ASSERT_FALSE(message) << bytes;
    EXPECT_EQ(message.error().kind, ChannelError::Kind::malformed) << message.error().message;
  }
}

TEST(ControlChannelRecords, AnAlertSaysWhyThePeerCloses)
{
  ControlChannel client(k_token, ChannelSide::client, 1 << 20);
  client.feed(ControlChannel::alert("unauthenticated request: bad record mac\n\x01"));
  auto message = client.next();
  ASSERT_FALSE(message);
  EXPECT_EQ(message.error().kind, ChannelError::Kind::alert);
  EXPECT_EQ(message.error().message, "unauthenticated request: bad record mac??");
}

} // namespace
} // namespace portmatrix
