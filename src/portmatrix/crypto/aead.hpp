// The primitives of the encrypted control channel (agent/control_channel.*):
// HKDF-SHA256 to derive keys, and ChaCha20-Poly1305 with a counter nonce for
// one direction of one connection. OpenSSL does the work.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portmatrix {

// HKDF-SHA256 (RFC 5869): `size` bytes from the input keying material
// `secret`, with `salt` (may be empty) and `info` (the label). Throws
// std::runtime_error only when OpenSSL lacks HKDF.
std::string hkdf_sha256(std::string_view secret, std::string_view salt, std::string_view info, std::size_t size);

// ChaCha20-Poly1305 keyed for one direction: the nonce is a counter (64 bits,
// big-endian, in the last 8 of 12 bytes) that advances with every record
// sealed or opened, so a key must never be used by two senders, and a record
// replayed, dropped or reordered fails to open.
class AeadKey
{
public:
  static constexpr std::size_t k_key_size = 32;
  static constexpr std::size_t k_tag_size = 16;

  // `key` must hold k_key_size bytes.
  explicit AeadKey(std::string key);

  // `plaintext` encrypted and, with `aad`, authenticated: ciphertext then tag.
  std::string seal(std::string_view aad, std::string_view plaintext);
  // The plaintext of `sealed`, or nullopt when its tag does not match (a
  // wrong key, a changed byte, the wrong nonce). Nothing of an unauthenticated
  // record is returned.
  std::optional<std::string> open(std::string_view aad, std::string_view sealed);

private:
  std::string m_key;
  std::uint64_t m_counter = 0;
};

} // namespace portmatrix
