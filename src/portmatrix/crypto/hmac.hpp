// The shared secret that authenticates agents and check to each other, and
// the OpenSSL primitives used with it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace portmatrix {

class Token
{
public:
  // At least 16 bytes of secret; surrounding whitespace is trimmed.
  static std::optional<Token> from_text(std::string_view text);
  // Reads a token file; nullopt with `error` set when missing, unreadable,
  // shorter than 16 bytes, or readable by group or others (mode & 077).
  static std::optional<Token> load(const std::string& path, std::string& error);

  // HMAC-SHA256 of `data`, lower-case hex (64 characters).
  std::string sign(std::string_view data) const;
  // Constant-time comparison of `mac` with sign(data).
  bool verify(std::string_view data, std::string_view mac) const;

private:
  explicit Token(std::string secret) : m_secret(std::move(secret)) {}
  std::string m_secret;
};

// `bytes` random bytes from OpenSSL's CSPRNG, hex encoded.
std::string random_hex(std::size_t bytes);

} // namespace portmatrix
