// Fuzz target: the agent's control wire format. Arbitrary bytes go
//  1. to an agent-side channel, as an unauthenticated client sends them
//     (after a client greeting, or without one): refused, never parsed;
//  2. through a keyed pair of channels, sealed by the client as one
//     message, so the agent side reassembles real records and the envelope
//     and body parsers get what an authenticated but buggy peer could send;
//  3. straight to the request and response envelopes and every body parser.
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
  (void)portmatrix::parse_hello_reply(bytes);
  (void)portmatrix::parse_egress_request(bytes);
  (void)portmatrix::parse_egress_reply(bytes);
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  using namespace portmatrix;
  static const auto token = *Token::from_text("fuzzing-token-0123456789");
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  ControlChannel raw(token, ChannelSide::agent, 4096);
  raw.feed(bytes);
  while (auto message = raw.next()) {
    if (!*message) break;
    parse_everything(**message);
  }

  ControlChannel client(token, ChannelSide::client, 1 << 20);
  ControlChannel agent(token, ChannelSide::agent, 1 << 20);
  client.feed(agent.greeting());
  (void)client.next();
  agent.feed(client.greeting());
  agent.feed(client.seal(bytes));
  auto message = agent.next();
  if (!message || !*message || **message != bytes) __builtin_trap(); // a sealed message comes back whole

  parse_everything(bytes);
  return 0;
}
