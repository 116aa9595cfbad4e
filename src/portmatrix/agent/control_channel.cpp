// The control channel over OpenSSL: one SSL object per connection between
// two memory BIOs (what the peer sent in, what goes to it out), stepped by
// next() as bytes arrive, so no socket is touched here and the caller's
// event loop decides when to read and write. The PSK callbacks hand OpenSSL
// a session whose master key is the node's PSK: the client offers it under
// the node's identity, the agent accepts only its own node's identity.
#include "agent/control_channel.hpp"

#include <mutex>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>

#include "crypto/hkdf.hpp"

namespace portmatrix {
namespace {

constexpr const char* k_ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";
constexpr unsigned char k_psk_cipher[] = {0x13, 0x01}; // TLS_AES_128_GCM_SHA256: the PSK's hash is SHA-256

// One context per side for the process: TLS 1.3 only, no certificate, no
// tickets (a PSK connection is never resumed), and its handshake reads
// only what it needs (no read-ahead).
SSL_CTX*
context(ChannelSide side)
{
  static std::once_flag once;
  static SSL_CTX* contexts[2] = {nullptr, nullptr};
  std::call_once(once, [] {
    for (int i = 0; i < 2; ++i) {
      SSL_CTX* ctx = SSL_CTX_new(i == 0 ? TLS_client_method() : TLS_server_method());
      if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1
          || SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1
          || SSL_CTX_set_ciphersuites(ctx, k_ciphersuites) != 1) {
        throw std::runtime_error("OpenSSL cannot set up TLS 1.3 for the control channel");
      }
      SSL_CTX_set_num_tickets(ctx, 0);
      SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
      contexts[i] = ctx;
    }
  });
  return contexts[side == ChannelSide::client ? 0 : 1];
}

// A TLS 1.3 session whose resumption secret is the PSK, as RFC 8446 4.2.11 and OpenSSL's s_client do it.
SSL_SESSION*
psk_session(SSL* ssl, const std::string& psk)
{
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, k_psk_cipher);
  SSL_SESSION* session = cipher ? SSL_SESSION_new() : nullptr;
  if (!session) return nullptr;
  if (SSL_SESSION_set1_master_key(session, reinterpret_cast<const unsigned char*>(psk.data()), psk.size()) != 1
      || SSL_SESSION_set_cipher(session, cipher) != 1 || SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION) != 1) {
    SSL_SESSION_free(session);
    return nullptr;
  }
  return session;
}

std::string
printable(std::string_view text, std::size_t limit = 80)
{
  std::string out;
  for (char c : text.substr(0, limit)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

} // namespace

std::string
control_psk(const Token& token, std::string_view node)
{
  return token.derive(std::string(k_psk_label) + std::string(node), k_psk_size);
}

std::string
control_psk_identity(std::string_view node)
{
  return std::string(k_psk_identity_prefix) + std::string(node);
}

struct ControlChannel::Ssl
{
  ~Ssl() { SSL_free(ssl); } // frees both BIOs too
  SSL* ssl = nullptr;
  BIO* in = nullptr;  // the peer's bytes, read by OpenSSL
  BIO* out = nullptr; // OpenSSL's bytes for the peer
};

ControlChannel::ControlChannel(const Token& token, ChannelSide side, std::string_view node, std::size_t max_message)
  : m_side(side), m_node(node), m_identity(control_psk_identity(node)), m_psk(control_psk(token, node)),
    m_max_message(max_message), m_ssl(std::make_unique<Ssl>())
{
  m_ssl->ssl = SSL_new(context(side));
  m_ssl->in = BIO_new(BIO_s_mem());
  m_ssl->out = BIO_new(BIO_s_mem());
  if (!m_ssl->ssl || !m_ssl->in || !m_ssl->out) {
    BIO_free(m_ssl->in);
    BIO_free(m_ssl->out);
    throw std::runtime_error("OpenSSL cannot make a TLS connection object");
  }
  BIO_set_mem_eof_return(m_ssl->in, -1); // empty: "read again later", not the end
  SSL_set_bio(m_ssl->ssl, m_ssl->in, m_ssl->out);
  SSL_set_app_data(m_ssl->ssl, this);
  if (side == ChannelSide::client) {
    SSL_set_psk_use_session_callback(m_ssl->ssl, [](SSL* ssl, const EVP_MD* md, const unsigned char** id,
                                                    std::size_t* id_length, SSL_SESSION** session) -> int {
      auto* self = static_cast<ControlChannel*>(SSL_get_app_data(ssl));
      *session = psk_session(ssl, self->m_psk);
      if (!*session) return 0;
      if (md && SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(*session)) != md) {
        // A second ClientHello for a hash the PSK is not for: offer nothing.
        SSL_SESSION_free(*session);
        *session = nullptr;
        *id = nullptr;
        *id_length = 0;
        return 1;
      }
      *id = reinterpret_cast<const unsigned char*>(self->m_identity.data());
      *id_length = self->m_identity.size();
      return 1;
    });
    SSL_set_connect_state(m_ssl->ssl);
    ERR_clear_error();
    SSL_do_handshake(m_ssl->ssl); // the ClientHello, into m_out
    drain();
  } else {
    SSL_set_psk_find_session_callback(m_ssl->ssl, [](SSL* ssl, const unsigned char* identity, std::size_t length,
                                                     SSL_SESSION** session) -> int {
      auto* self = static_cast<ControlChannel*>(SSL_get_app_data(ssl));
      self->m_offered.assign(reinterpret_cast<const char*>(identity), length);
      // Another node's identity finds no key: with no certificate either, the handshake fails.
      *session = self->m_offered == self->m_identity ? psk_session(ssl, self->m_psk) : nullptr;
      return 1;
    });
    SSL_set_accept_state(m_ssl->ssl);
  }
}

ControlChannel::~ControlChannel()
{
  OPENSSL_cleanse(m_psk.data(), m_psk.size());
}

void
ControlChannel::feed(std::string_view bytes)
{
  if (m_error || bytes.empty()) return;
  BIO_write(m_ssl->in, bytes.data(), int(bytes.size()));
  m_fed += bytes.size();
}

void
ControlChannel::drain()
{
  char buffer[16384];
  int n;
  while ((n = BIO_read(m_ssl->out, buffer, sizeof buffer)) > 0) m_out.append(buffer, std::size_t(n));
}

std::string
ControlChannel::take_output()
{
  drain();
  std::string out;
  out.swap(m_out);
  return out;
}

void
ControlChannel::send(std::string_view message)
{
  auto size = std::uint32_t(message.size());
  std::string framed{char(size >> 24), char(size >> 16), char(size >> 8), char(size)};
  framed += message;
  if (!m_keyed || m_error) {
    m_pending += framed;
    return;
  }
  ERR_clear_error();
  if (SSL_write(m_ssl->ssl, framed.data(), int(framed.size())) <= 0) (void)fail_ssl(-1, "sending");
  drain();
}

Expected<std::optional<std::string>, ChannelError>
ControlChannel::fail(ChannelError::Kind kind, std::string message)
{
  m_error = ChannelError{kind, std::move(message)};
  m_pending.clear();
  m_plain.clear();
  drain(); // OpenSSL's alert, when it sent one
  return unexpected(*m_error);
}

// Names what OpenSSL refused, by the reason it gives.
Expected<std::optional<std::string>, ChannelError>
ControlChannel::fail_ssl(int result, std::string_view doing)
{
  auto error = SSL_get_error(m_ssl->ssl, result);
  if (error == SSL_ERROR_ZERO_RETURN) return fail(ChannelError::Kind::closed, "the peer closed the TLS session");
  auto code = ERR_peek_last_error();
  int reason = ERR_GET_REASON(code);
  using Kind = ChannelError::Kind;
  std::string text = code ? printable(ERR_reason_error_string(code) ? ERR_reason_error_string(code) : "unknown")
                          : fmt::format("OpenSSL error {}", error);
  if (ERR_GET_LIB(code) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET) {
    auto alert = reason - SSL_AD_REASON_OFFSET;
    std::string name = SSL_alert_desc_string_long(alert);
    std::string hint;
    // What OpenSSL's server says to a PSK binder that does not verify
    // (illegal parameter, in 3.0) and to an identity it does not know
    // (handshake failure: no PSK and no certificate).
    if (!m_keyed && (alert == SSL_AD_ILLEGAL_PARAMETER || alert == SSL_AD_DECRYPT_ERROR || alert == SSL_AD_HANDSHAKE_FAILURE)) {
      hint = ": unauthenticated, wrong token? (or a connection meant for another node)";
    }
    return fail(Kind::alert, fmt::format("TLS alert '{}' while {}{}", name, doing, hint));
  }
  if (m_side == ChannelSide::agent && !m_keyed && !m_offered.empty() && m_offered != m_identity) {
    return fail(Kind::unauthenticated, fmt::format("unauthenticated: a connection for PSK identity '{}', this is {}",
                                                   printable(m_offered), m_identity));
  }
  switch (reason) {
  case SSL_R_BINDER_DOES_NOT_VERIFY:
  case SSL_R_DIGEST_CHECK_FAILED:
  case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
    return fail(Kind::unauthenticated, fmt::format("unauthenticated: {} while {} (the token differs, or the bytes were "
                                                   "changed or recorded on another connection)",
                                                   text, doing));
  case SSL_R_PACKET_LENGTH_TOO_LONG:
  case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
  case SSL_R_DATA_LENGTH_TOO_LONG:
  case SSL_R_EXCESSIVE_MESSAGE_SIZE:
    return fail(Kind::oversized, fmt::format("{} while {}", text, doing));
  default: return fail(Kind::malformed, fmt::format("not TLS 1.3 as the control channel speaks it: {} while {}", text, doing));
  }
}

std::optional<std::string>
ControlChannel::take_message()
{
  if (m_plain.size() < k_message_header) return std::nullopt;
  std::size_t size = 0;
  for (std::size_t i = 0; i < k_message_header; ++i) size = (size << 8) | std::uint8_t(m_plain[i]);
  if (m_plain.size() < k_message_header + size) return std::nullopt;
  std::string message = m_plain.substr(k_message_header, size);
  m_plain.erase(0, k_message_header + size);
  return message;
}

Expected<std::optional<std::string>, ChannelError>
ControlChannel::next()
{
  if (m_error) return unexpected(*m_error);
  if (!m_keyed) {
    ERR_clear_error();
    auto answered = m_out.size();
    int result = SSL_do_handshake(m_ssl->ssl);
    drain();
    if (result != 1) {
      auto error = SSL_get_error(m_ssl->ssl, result);
      if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) return fail_ssl(result, "in the handshake");
      // The agent answers a hello only once its binder verified (a wrong one is an error above).
      if (m_side == ChannelSide::agent && m_out.size() > answered) m_hello_accepted = true;
      // Bounded by what OpenSSL took in, not by what waits behind it (a
      // request may follow the client's Finished in the same read).
      if (m_fed - BIO_ctrl_pending(m_ssl->in) > k_max_handshake_bytes) {
        return fail(ChannelError::Kind::oversized,
                    fmt::format("more than {} bytes before the handshake completed", k_max_handshake_bytes));
      }
      return std::optional<std::string>();
    }
    m_keyed = true;
    if (!m_pending.empty()) {
      std::string pending;
      pending.swap(m_pending);
      ERR_clear_error();
      if (SSL_write(m_ssl->ssl, pending.data(), int(pending.size())) <= 0) return fail_ssl(-1, "sending");
      drain();
    }
  }
  for (;;) {
    if (auto message = take_message()) return std::optional<std::string>(std::move(message));
    if (m_plain.size() >= k_message_header) {
      std::size_t size = 0;
      for (std::size_t i = 0; i < k_message_header; ++i) size = (size << 8) | std::uint8_t(m_plain[i]);
      if (size > m_max_message) {
        return fail(ChannelError::Kind::oversized, fmt::format("a message larger than {} bytes", m_max_message));
      }
    }
    char buffer[16384];
    ERR_clear_error();
    int n = SSL_read(m_ssl->ssl, buffer, sizeof buffer);
    drain();
    if (n > 0) {
      m_plain.append(buffer, std::size_t(n));
      continue;
    }
    auto error = SSL_get_error(m_ssl->ssl, n);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return std::optional<std::string>();
    return fail_ssl(n, "reading a message");
  }
}

} // namespace portmatrix
