// The record layer of the control channel (see the header for the format).
// Its order of checks is the point: the fixed header first (type, length
// bound), then the tag over the whole record, and only then the plaintext,
// which goes to the caller, never to a parser here. An unauthenticated peer
// can make the agent read at most one header and one record of a few KiB
// per connection, and no JSON.
#include "agent/control_channel.hpp"

#include <fmt/format.h>

namespace portmatrix {
namespace {

constexpr std::uint8_t k_greeting = 1;
constexpr std::uint8_t k_data = 2;
constexpr std::uint8_t k_alert = 3;
constexpr std::uint8_t k_last = 1;
constexpr std::string_view k_greeting_magic = "PMCTL001";
constexpr std::size_t k_random_hex = 64;
constexpr std::string_view k_keys_label = "portmatrix control v1 keys";

std::string
header(std::uint8_t type, std::uint8_t flags, std::size_t length)
{
  return {char(type), char(flags), char(length >> 8), char(length & 0xff)};
}

bool
is_hex(std::string_view text)
{
  return text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

} // namespace

ControlChannel::ControlChannel(const Token& token, ChannelSide side, std::size_t max_message)
  : m_token(token), m_side(side), m_max_message(max_message), m_random(random_hex(k_random_hex / 2))
{
  std::string payload = std::string(k_greeting_magic) + m_random;
  m_greeting = header(k_greeting, 0, payload.size()) + payload;
}

Expected<std::optional<std::string>, ChannelError>
ControlChannel::fail(ChannelError::Kind kind, std::string message)
{
  m_error = ChannelError{kind, std::move(message)};
  m_buffer.clear();
  m_message.clear();
  return unexpected(*m_error);
}

std::optional<ChannelError>
ControlChannel::key_from(std::string_view payload)
{
  if (payload.size() != k_greeting_magic.size() + k_random_hex || payload.substr(0, k_greeting_magic.size()) != k_greeting_magic
      || !is_hex(payload.substr(k_greeting_magic.size()))) {
    return ChannelError{ChannelError::Kind::malformed, "not a portmatrix control greeting (another version?)"};
  }
  std::string peer(payload.substr(k_greeting_magic.size()));
  const auto& client = m_side == ChannelSide::client ? m_random : peer;
  const auto& agent = m_side == ChannelSide::client ? peer : m_random;
  if (client == agent) return ChannelError{ChannelError::Kind::malformed, "greeting reflected"};
  auto psk = m_token.derive(k_psk_label, 32);
  auto keys = hkdf_sha256(psk, client + agent, k_keys_label, 2 * AeadKey::k_key_size);
  AeadKey to_agent(keys.substr(0, AeadKey::k_key_size));
  AeadKey to_client(keys.substr(AeadKey::k_key_size));
  m_send.emplace(m_side == ChannelSide::client ? to_agent : to_client);
  m_receive.emplace(m_side == ChannelSide::client ? to_client : to_agent);
  return std::nullopt;
}

Expected<std::optional<std::string>, ChannelError>
ControlChannel::next()
{
  if (m_error) return unexpected(*m_error);
  for (;;) {
    if (m_buffer.size() < k_record_header) return std::optional<std::string>();
    auto type = std::uint8_t(m_buffer[0]);
    auto flags = std::uint8_t(m_buffer[1]);
    std::size_t length = (std::size_t(std::uint8_t(m_buffer[2])) << 8) | std::uint8_t(m_buffer[3]);
    // Bounded by the fixed header alone, before the payload is waited for.
    if (type == k_greeting) {
      if (keyed()) return fail(ChannelError::Kind::malformed, "a second greeting");
      if (length != k_greeting_magic.size() + k_random_hex || flags != 0) {
        return fail(ChannelError::Kind::malformed, "not a portmatrix control greeting (another version?)");
      }
    } else if (type == k_data) {
      if (!keyed()) return fail(ChannelError::Kind::malformed, "data before the greeting");
      if (length > k_max_record_plaintext + AeadKey::k_tag_size || length < AeadKey::k_tag_size || (flags & ~k_last)) {
        return fail(ChannelError::Kind::oversized,
                    fmt::format("a record of {} bytes (at most {})", length, k_max_record_plaintext + AeadKey::k_tag_size));
      }
    } else if (type == k_alert) {
      if (length > k_max_alert) return fail(ChannelError::Kind::malformed, "an oversized alert");
    } else {
      return fail(ChannelError::Kind::malformed, "not a portmatrix control record (another version, or not portmatrix?)");
    }
    if (m_buffer.size() < k_record_header + length) return std::optional<std::string>();
    std::string_view record(m_buffer.data(), k_record_header + length);
    auto payload = record.substr(k_record_header);
    if (type == k_alert) {
      std::string text;
      for (char c : payload) text += (c >= 0x20 && c < 0x7f) ? c : '?';
      return fail(ChannelError::Kind::alert, text);
    }
    if (type == k_greeting) {
      if (auto error = key_from(payload)) return fail(error->kind, error->message);
      m_buffer.erase(0, record.size());
      continue;
    }
    auto plaintext = m_receive->open(record.substr(0, k_record_header), payload);
    if (!plaintext) {
      return fail(ChannelError::Kind::unauthenticated, "bad record mac (the token differs, or the bytes were changed)");
    }
    m_buffer.erase(0, record.size());
    if (m_message.size() + plaintext->size() > m_max_message) {
      return fail(ChannelError::Kind::oversized, fmt::format("a message larger than {} bytes", m_max_message));
    }
    m_message += *plaintext;
    if (flags & k_last) {
      std::string message;
      message.swap(m_message);
      return std::optional<std::string>(std::move(message));
    }
  }
}

std::string
ControlChannel::seal(std::string_view message)
{
  std::string out;
  do {
    auto chunk = message.substr(0, k_max_record_plaintext);
    message.remove_prefix(chunk.size());
    auto head = header(k_data, message.empty() ? k_last : 0, chunk.size() + AeadKey::k_tag_size);
    out += head;
    out += m_send->seal(head, chunk);
  } while (!message.empty());
  return out;
}

std::string
ControlChannel::alert(std::string_view text)
{
  text = text.substr(0, k_max_alert);
  return header(k_alert, 0, text.size()) + std::string(text);
}

} // namespace portmatrix
