// Fuzz target: the data plane's identity exchange, as an agent and a prober
// read it from the network. Arbitrary bytes go through the probe payload
// parser, the UDP datagram handling (answer_probe_datagram, plain or in an
// overlay's shape: a reply is never longer than the datagram, and comes in
// the probe's shape) and the identity reply parser; a probe payload
// found is answered and the answer must read back as authentic.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/encapsulation.hpp"
#include "agent/identity.hpp"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  using namespace portmatrix;
  static const auto token = *Token::from_text("fuzzing-token-0123456789abcdef");
  static const std::string longest_node(63, 'n');
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto reply = answer_probe_datagram(token, bytes, longest_node, 65535)) {
    if (reply->size() > bytes.size()) std::abort(); // amplification
    auto shape = unwrap(bytes);
    auto nonce = parse_probe_payload(bytes.substr(shape->header, k_probe_payload_size));
    auto line = reply_line(*reply, shape->shape.kind); // answered in the probe's shape
    if (!line) std::abort();
    auto back = parse_identity_reply(token, *line, *nonce, Protocol::udp);
    if (!back || !back->authentic || back->node != longest_node || back->port != 65535) std::abort();
  }
  for (auto protocol : {Protocol::tcp, Protocol::udp}) {
    if (auto identity = parse_identity_reply(token, bytes, "0123456789abcdef", protocol)) {
      if (identity->node.empty()) std::abort();
    }
  }
  return 0;
}
