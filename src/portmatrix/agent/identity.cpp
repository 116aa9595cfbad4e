#include "agent/identity.hpp"

#include <charconv>

#include <fmt/format.h>

#include "agent/encapsulation.hpp"

namespace portmatrix {
namespace {

constexpr std::string_view k_magic = "PMX1 ";

bool
is_hex(std::string_view text)
{
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !text.empty();
}

std::string
mac_input(std::string_view nonce, std::string_view node, Protocol protocol, std::uint16_t port)
{
  return fmt::format("{} {} {} {}", nonce, node, to_string(protocol), port);
}

} // namespace

std::string
make_probe_payload(std::string_view nonce)
{
  auto payload = fmt::format("{}{}", k_magic, nonce);
  payload.resize(k_probe_payload_size - 1, ' ');
  return payload + "\n";
}

std::optional<std::string>
parse_probe_payload(std::string_view payload)
{
  if (payload.size() != k_probe_payload_size || !payload.starts_with(k_magic)) return std::nullopt;
  payload.remove_prefix(k_magic.size());
  if (payload.ends_with('\n')) payload.remove_suffix(1);
  while (payload.ends_with(' ')) payload.remove_suffix(1);
  if (payload.size() != 16 || !is_hex(payload)) return std::nullopt;
  return std::string(payload);
}

std::string
make_identity_reply(const Token& token, std::string_view nonce, std::string_view node, Protocol protocol,
                    std::uint16_t port)
{
  return fmt::format("{}{} {} {}\n", k_magic, node, port, token.sign(mac_input(nonce, node, protocol, port)));
}

std::optional<std::string>
answer_probe_datagram(const Token& token, std::string_view datagram, std::string_view node, std::uint16_t port)
{
  auto shape = unwrap(datagram);
  if (!shape) return std::nullopt;
  // A plain probe is the payload alone; a shaped or full-size one has it
  // after the shape's header (and padding after it, maybe cut off here).
  auto nonce = parse_probe_payload(datagram.substr(shape->header, k_probe_payload_size));
  if (!nonce) return std::nullopt;
  auto reply = shape_reply(datagram, *shape, make_identity_reply(token, *nonce, node, Protocol::udp, port));
  if (reply.size() > datagram.size()) return std::nullopt; // a node name past 63 bytes: no amplification
  return reply;
}

std::optional<Identity>
parse_identity_reply(const Token& token, std::string_view reply, std::string_view nonce, Protocol protocol)
{
  if (reply.size() > k_max_identity_line || !reply.starts_with(k_magic)) return std::nullopt;
  reply.remove_prefix(k_magic.size());
  if (reply.ends_with('\n')) reply.remove_suffix(1);
  auto first = reply.find(' ');
  auto second = first == std::string_view::npos ? first : reply.find(' ', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  auto node = reply.substr(0, first);
  auto port_text = reply.substr(first + 1, second - first - 1);
  auto mac = reply.substr(second + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (node.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 || !is_hex(mac)) {
    return std::nullopt;
  }
  Identity identity{std::string(node), std::uint16_t(port), false};
  identity.authentic = token.verify(mac_input(nonce, node, protocol, identity.port), mac);
  return identity;
}

} // namespace portmatrix
