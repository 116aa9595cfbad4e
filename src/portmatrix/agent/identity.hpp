// The data-plane exchange that proves which node answered a probe.
//
//   prober -> agent   "PMX1 <nonce>" padded with spaces to 160 bytes, "\n"
//                     (TCP after connect, or one UDP datagram)
//   agent  -> prober  "PMX1 <node> <port> <mac>\n"
//
// mac = HMAC-SHA256(token, "<nonce> <node> <protocol> <port>"). A reply with a
// valid mac for another node means the packet was answered elsewhere (NAT,
// a wrong VIP backend): `wrong-responder`. Nonces are 16 hex characters. The
// probe is padded to at least the reply's size, so an agent answering a
// spoofed UDP probe sends no more bytes than it received (no amplification).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/hmac.hpp"
#include "model/types.hpp"

namespace portmatrix {

inline constexpr std::size_t k_max_identity_line = 256;
inline constexpr std::size_t k_probe_payload_size = 160; // >= the longest reply (node names are at most 63 bytes)

std::string make_probe_payload(std::string_view nonce);
// The nonce of a probe payload, or nullopt for anything else.
std::optional<std::string> parse_probe_payload(std::string_view payload);

std::string make_identity_reply(const Token& token, std::string_view nonce, std::string_view node, Protocol protocol,
                                std::uint16_t port);

// What a UDP listener sends back for one datagram (or its first bytes, at
// least the shape's header and the payload: a full-size probe's padding may
// be cut off): the identity reply when it carries a
// probe, plain or shaped (in the probe's shape), never longer than what was
// read (no amplification for a spoofed source); nullopt for anything else,
// which gets no answer.
std::optional<std::string> answer_probe_datagram(const Token& token, std::string_view datagram, std::string_view node,
                                                 std::uint16_t port);

struct Identity
{
  std::string node;
  std::uint16_t port = 0;
  bool authentic = false; // the mac matched: one of our agents answered
};

// Parses a reply to the probe that carried `nonce`. nullopt when the bytes are
// not an identity line at all (a real service answered, or garbage).
std::optional<Identity> parse_identity_reply(const Token& token, std::string_view reply, std::string_view nonce,
                                             Protocol protocol);

} // namespace portmatrix
