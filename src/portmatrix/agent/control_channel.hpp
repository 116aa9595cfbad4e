// The control channel's record layer: what travels between `check` and an
// agent, encrypted and authenticated before anything in it is parsed.
//
// Each side opens with a greeting record that carries 32 random bytes (hex).
// From the token, HKDF derives a pre-shared key (label k_psk_label); from it
// and both sides' randoms, one ChaCha20-Poly1305 key per direction
// (crypto/aead.hpp). Every later record is sealed with its direction's key
// and a counter nonce, so a record recorded on one connection opens on no
// other (another node's, or the same agent after a restart, draws another
// random), and a record replayed, dropped or reordered within a connection
// fails to open.
//
//   record  = type (1 byte) | flags (1 byte) | length (2 bytes, big-endian) | payload
//   greeting: type 1, payload "PMCTL001" + 64 hex digits (length 72, exactly)
//   data:     type 2, payload = ciphertext + 16-byte tag, at most k_max_record_plaintext + 16;
//             the 4-byte header is the AEAD's associated data; flags bit 0: last record of a message
//   alert:    type 3, payload = ASCII text, at most 128 bytes, unauthenticated (why the peer closes)
//
// A record's length is checked from its fixed header before its payload is
// read; a data record is authenticated before a byte of it is used; a message
// (records up to the one flagged last) is bounded by the size given. The
// receiver refuses everything else and the connection ends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/aead.hpp"
#include "crypto/hmac.hpp"
#include "util/expected.hpp"

namespace portmatrix {

inline constexpr std::size_t k_record_header = 4;
inline constexpr std::size_t k_max_record_plaintext = 4096;
inline constexpr std::size_t k_max_alert = 128;
inline constexpr std::string_view k_psk_label = "portmatrix control v1 psk";

enum class ChannelSide { client, agent };

struct ChannelError
{
  enum class Kind {
    malformed,       // not a record of this protocol (unknown type, bad greeting, bad length)
    oversized,       // a record or a message above its bound
    unauthenticated, // a data record whose tag does not match: another token, or changed bytes
    alert,           // the peer said why it closes
  };
  Kind kind;
  std::string message;
};

class ControlChannel
{
public:
  // `token` must outlive the channel. Messages received above `max_message`
  // bytes are refused.
  ControlChannel(const Token& token, ChannelSide side, std::size_t max_message);

  // This side's greeting record: send it first.
  const std::string& greeting() const { return m_greeting; }

  // Appends received bytes.
  void feed(std::string_view bytes) { m_buffer.append(bytes); }

  // The next whole message, decrypted; nullopt until enough bytes arrived.
  // After an error the channel is done (every later call returns it again).
  Expected<std::optional<std::string>, ChannelError> next();

  // True once the peer's greeting arrived: seal() may be called.
  bool keyed() const { return m_send.has_value(); }

  // `message` as data records, ready to write. Requires keyed().
  std::string seal(std::string_view message);

  // An alert record (text cut at k_max_alert): the last thing sent before closing.
  static std::string alert(std::string_view text);

  std::size_t buffered() const { return m_buffer.size(); }

private:
  Expected<std::optional<std::string>, ChannelError> fail(ChannelError::Kind kind, std::string message);
  std::optional<ChannelError> key_from(std::string_view payload);

  const Token& m_token;
  ChannelSide m_side;
  std::size_t m_max_message;
  std::string m_random; // 64 hex digits
  std::string m_greeting;
  std::string m_buffer;
  std::string m_message; // records of the message being received
  std::optional<AeadKey> m_send;
  std::optional<AeadKey> m_receive;
  std::optional<ChannelError> m_error;
};

} // namespace portmatrix
