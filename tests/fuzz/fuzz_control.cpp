// Fuzz target: the agent's control wire format. Arbitrary bytes go through
// the frame reader, request decoding (with a fixed token), replay check and
// every body parser the agent and check use. Nothing may crash or throw.
#include <cstdint>
#include <string_view>

#include "agent/control_protocol.hpp"
#include "agent/messages.hpp"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  static const auto token = *portmatrix::Token::from_text("fuzzing-token-0123456789");
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  portmatrix::FrameReader reader(4096);
  reader.feed(bytes);
  portmatrix::ReplayGuard replay(64);
  while (auto payload = reader.next()) {
    if (auto request = portmatrix::decode_request(token, *payload)) {
      std::string why;
      (void)replay.accept(*request, portmatrix::now_ms(), why);
    }
    (void)portmatrix::decode_response(token, *payload);
  }
  // The bodies, as an authenticated but buggy peer could send them.
  (void)portmatrix::parse_probe_request(bytes);
  (void)portmatrix::parse_probe_reply(bytes);
  (void)portmatrix::parse_observed_queries(bytes);
  (void)portmatrix::parse_observed_reply(bytes);
  (void)portmatrix::parse_hello_reply(bytes);
  (void)portmatrix::parse_egress_request(bytes);
  (void)portmatrix::parse_egress_reply(bytes);
  return 0;
}
