// The shared secret that authenticates agents and check to each other, and
// the OpenSSL primitives used with it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

typedef struct evp_mac_ctx_st EVP_MAC_CTX;

namespace portmatrix {

class Token
{
public:
  // At least 16 bytes of secret; surrounding whitespace is trimmed.
  static std::optional<Token> from_text(std::string_view text);
  // Reads a token file; nullopt with `error` set when missing, unreadable,
  // a symlink, owned by another user than the running one, readable by group
  // or others (mode & 077), shorter than 16 bytes, or of fewer than 8
  // distinct characters (the error names the command that makes a good one).
  static std::optional<Token> load(const std::string& path, std::string& error);

  // HMAC-SHA256 of `data`, lower-case hex (64 characters).
  std::string sign(std::string_view data) const;
  // Constant-time comparison of `mac` with sign(data).
  bool verify(std::string_view data, std::string_view mac) const;
  // `size` bytes derived from the secret for `label` (HKDF-SHA256, the
  // label as its info): a key for one purpose, never the token itself.
  std::string derive(std::string_view label, std::size_t size) const;

private:
  explicit Token(std::string secret);
  std::string m_secret;
  // HMAC-SHA256 keyed with the secret once; each sign() works on a copy
  // (EVP_MAC_CTX_dup), which costs far less than keying anew: the agent
  // signs and the prober verifies one MAC per probe.
  std::shared_ptr<const EVP_MAC_CTX> m_keyed;
};

// `bytes` random bytes from OpenSSL's CSPRNG, hex encoded. Drawn in blocks
// per thread (a fork()ed child draws its own), so a nonce per probe costs
// no system call.
std::string random_hex(std::size_t bytes);

} // namespace portmatrix
