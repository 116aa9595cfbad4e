// Fuzz target: the agent's control wire format. Arbitrary bytes go
//  1. to an agent-side channel, as an unauthenticated client sends them
//     instead of a handshake: refused, and never a message (nothing is read
//     before a handshake with the node's PSK completed);
//  2. to an agent-side channel behind a real ClientHello, in place of the
//     client's Finished: the same;
//  3. through a pair of channels that completed their handshake, sent by the
//     client as one message, so the agent side reassembles real records and
//     the envelope and body parsers get what an authenticated but buggy peer
//     could send;
//  4. straight to the request and response envelopes and every body parser.
// Nothing may crash or throw.
#include <cstdint>
#include <string_view>

#include "agent/control_channel.hpp"
#include "agent/control_protocol.hpp"
#include "agent/messages.hpp"

namespace {

void
parse_everything(std::string_view bytes)
{
  if (auto request = portmatrix::decode_request(bytes)) {
    portmatrix::ReplayGuard replay(64);
    std::string why;
    (void)replay.accept(*request, portmatrix::now_ms(), why);
  }
  (void)portmatrix::decode_response(bytes);
  (void)portmatrix::parse_probe_request(bytes);
  (void)portmatrix::parse_probe_reply(bytes);
  (void)portmatrix::parse_observed_queries(bytes);
  (void)portmatrix::parse_observed_reply(bytes);
  (void)portmatrix::parse_hello_request(bytes);
  (void)portmatrix::parse_hello_reply(bytes);
  (void)portmatrix::parse_egress_request(bytes);
  (void)portmatrix::parse_egress_reply(bytes);
}

// Feeds `bytes` to `agent`: a message from bytes no PSK holder sent is a bug.
void
never_a_message(portmatrix::ControlChannel& agent, std::string_view bytes)
{
  agent.feed(bytes);
  for (int i = 0; i < 4; ++i) {
    auto message = agent.next();
    (void)agent.take_output();
    if (!message) return;
    if (*message) __builtin_trap();
  }
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  using namespace portmatrix;
  static const auto token = *Token::from_text("fuzzing-token-0123456789");
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  ControlChannel raw(token, ChannelSide::agent, "node1", 4096);
  never_a_message(raw, bytes);

  ControlChannel greeter(token, ChannelSide::client, "node1", 1 << 20);
  ControlChannel hello(token, ChannelSide::agent, "node1", 1 << 20);
  hello.feed(greeter.take_output());
  (void)hello.next();
  never_a_message(hello, bytes);

  ControlChannel client(token, ChannelSide::client, "node1", 1 << 20);

  ControlChannel agent(token, ChannelSide::agent, "node1", 1 << 20);
  agent.feed(client.take_output());
  (void)agent.next();
  client.feed(agent.take_output());
  (void)client.next();
  client.send(bytes);
  agent.feed(client.take_output());
  auto message = agent.next();
  if (!message || !*message || **message != bytes) __builtin_trap(); // a message sent comes back whole

  parse_everything(bytes);
  return 0;
}
