// The control channel between `check` and an agent: OpenSSL's TLS 1.3 with
// an external pre-shared key, driven over memory buffers so that each side
// stays on its EventLoop (bytes in, messages out; messages in, bytes out).
//
//   PSK      = HKDF-SHA256(token, info = k_psk_label + NODE), 32 bytes
//   identity = k_psk_identity_prefix + NODE ("portmatrix-control-v1/worker1")
//   cipher   TLS_AES_128_GCM_SHA256 (or TLS_CHACHA20_POLY1305_SHA256), TLS 1.3 only
//   key exchange psk_dhe_ke: (EC)DHE with the PSK, so a token that leaks
//            later does not open connections recorded before
//   no certificate, no session tickets, no early data
//   message  = length (4 bytes, big-endian) | JSON text, inside TLS records
//
// NODE is the destination agent's node: a connection meant for another node
// offers an identity this agent does not know, or (renamed) a key it does
// not hold, and its handshake fails. Nothing of a request is read before
// the handshake completed, that is before the PSK binder and the client's
// Finished proved the peer holds this node's key; at most
// k_max_handshake_bytes are taken before that, and TLS bounds each record
// (16 KiB), the length prefix each message (the size given).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/hmac.hpp"
#include "util/expected.hpp"

namespace portmatrix {

inline constexpr std::string_view k_psk_label = "portmatrix control v1 psk/";
inline constexpr std::string_view k_psk_identity_prefix = "portmatrix-control-v1/";
inline constexpr std::size_t k_psk_size = 32;
// What a peer may send before its handshake completed (a ClientHello is a
// few hundred bytes; OpenSSL's own bound is 64 KiB).
inline constexpr std::size_t k_max_handshake_bytes = 16 << 10;
inline constexpr std::size_t k_message_header = 4;

// The key and identity of the channel to `node`'s agent.
std::string control_psk(const Token& token, std::string_view node);
std::string control_psk_identity(std::string_view node);

enum class ChannelSide { client, agent };

struct ChannelError
{
  enum class Kind {
    malformed,       // not TLS 1.3 as this channel speaks it (another protocol, version or cipher)
    oversized,       // a handshake or a message above its bound
    unauthenticated, // the PSK binder, a Finished or a record's tag does not verify: another token or node, or changed bytes
    alert,           // the peer refused with a TLS alert (the text names it)
    closed,          // the peer ended the TLS session
  };
  Kind kind;
  std::string message;
};

class ControlChannel
{
public:
  // `node` is the destination agent's node (the client's) or this agent's
  // own (the agent's). Messages received above `max_message` bytes are refused.
  ControlChannel(const Token& token, ChannelSide side, std::string_view node, std::size_t max_message);
  ~ControlChannel();
  ControlChannel(const ControlChannel&) = delete;
  ControlChannel& operator=(const ControlChannel&) = delete;

  // Appends received bytes.
  void feed(std::string_view bytes);

  // Advances the handshake, then returns the next whole message; nullopt
  // until enough bytes arrived. After an error the channel is done (every
  // later call returns it again); take_output() then holds the TLS alert
  // to send before closing, when there is one.
  Expected<std::optional<std::string>, ChannelError> next();

  // Queues `message`; it is encrypted once the handshake completed.
  void send(std::string_view message);

  // The bytes to write to the peer now (handshake, records, alerts); empties them.
  std::string take_output();

  // True once the handshake completed: the peer holds the PSK.
  bool keyed() const { return m_keyed; }

  // Agent side: true once the client's hello was accepted (its PSK binder
  // verified) and this side answered it, before the client's Finished. A
  // recorded hello sent again gets this far too, so it only ranks a
  // connection above one that has not (who is closed first when all slots
  // are taken); keyed() is what proves the peer.
  bool hello_accepted() const { return m_hello_accepted; }

private:
  struct Ssl;
  Expected<std::optional<std::string>, ChannelError> fail(ChannelError::Kind kind, std::string message);
  Expected<std::optional<std::string>, ChannelError> fail_ssl(int result, std::string_view doing);
  std::optional<std::string> take_message();
  void drain();

  ChannelSide m_side;
  std::string m_node;
  std::string m_identity;
  std::string m_psk;
  std::size_t m_max_message;
  std::unique_ptr<Ssl> m_ssl;
  std::size_t m_fed = 0;       // bytes fed in all
  std::string m_pending;       // framed messages queued before the handshake completed
  std::string m_plain;         // decrypted bytes of the message being received
  std::string m_out;           // bytes for the peer
  std::string m_offered;       // the PSK identity the client offered (agent side), for errors
  bool m_keyed = false;
  bool m_hello_accepted = false;
  std::optional<ChannelError> m_error;
};

} // namespace portmatrix
