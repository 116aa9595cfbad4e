#include "crypto/hmac.hpp"

#include "crypto/hkdf.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

namespace portmatrix {
namespace {

// A token file larger than this is not a token (and is not read into memory).
constexpr std::size_t k_max_token_file = 1 << 20;
// A token of fewer distinct characters than this is a placeholder or a
// pattern ("aaaaaaaaaaaaaaaa", "0101..."), not a secret; 32 random bytes in
// hex have about 16.
constexpr std::size_t k_min_distinct_bytes = 8;
constexpr std::string_view k_make_token = "(umask 077; openssl rand -hex 32 > token)";

std::size_t
distinct_bytes(std::string_view text)
{
  bool seen[256] = {};
  std::size_t count = 0;
  for (unsigned char c : text) count += !std::exchange(seen[c], true);
  return count;
}

std::string
to_hex(const unsigned char* data, std::size_t size)
{
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  return out;
}

std::string_view
trim(std::string_view text)
{
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  return text;
}

} // namespace

std::optional<Token>
Token::from_text(std::string_view text)
{
  auto secret = trim(text);
  if (secret.size() < 16) return std::nullopt;
  return Token(std::string(secret));
}

std::optional<Token>
Token::load(const std::string& path, std::string& error)
{
  // Opened without blocking and checked on the open file: a FIFO or a device
  // would otherwise hold the agent (or check) on its first read forever. A
  // symlink is not followed: whoever may change where it points chooses the
  // token.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* open) {
    if (*open >= 0) ::close(*open);
  });
  struct stat info{};
  if (fd < 0 && errno == ELOOP) {
    error = "token file " + path + " is a symlink; name the file itself";
    return std::nullopt;
  }
  if (fd < 0 || ::fstat(fd, &info) != 0) {
    error = "cannot read token file " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (!S_ISREG(info.st_mode)) {
    error = "token file " + path + " is not a regular file";
    return std::nullopt;
  }
  if ((info.st_mode & 077) != 0) {
    error = "token file " + path + " is readable by group or others (chmod 600 it)";
    return std::nullopt;
  }
  if (info.st_uid != ::geteuid()) {
    error = "token file " + path + " is owned by uid " + std::to_string(info.st_uid) + ", not by the running user (uid " +
            std::to_string(::geteuid()) + "): chown it";
    return std::nullopt;
  }
  if (std::size_t(info.st_size) > k_max_token_file) {
    error = "token file " + path + " is larger than " + std::to_string(k_max_token_file) + " bytes: not a token";
    return std::nullopt;
  }
  std::string text;
  char buffer[4096];
  for (ssize_t count; (count = ::read(fd, buffer, sizeof buffer)) != 0;) {
    if (count < 0 && errno == EINTR) continue;
    if (count < 0 || text.size() + std::size_t(count) > k_max_token_file) {
      error = "cannot read token file " + path;
      return std::nullopt;
    }
    text.append(buffer, std::size_t(count));
  }
  auto token = from_text(text);
  if (!token) {
    error = "token in " + path + " is shorter than 16 characters; make one with: " + std::string(k_make_token);
  } else if (auto distinct = distinct_bytes(trim(text)); distinct < k_min_distinct_bytes) {
    error = "token in " + path + " has only " + std::to_string(distinct) +
            " distinct characters: guessable; make one with: " + std::string(k_make_token);
    return std::nullopt;
  }
  return token;
}

Token::Token(std::string secret) : m_secret(std::move(secret))
{
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* context = hmac ? EVP_MAC_CTX_new(hmac) : nullptr;
  EVP_MAC_free(hmac); // the context keeps its own reference
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (!context || !EVP_MAC_init(context, reinterpret_cast<const unsigned char*>(m_secret.data()), m_secret.size(), params)) {
    EVP_MAC_CTX_free(context);
    throw std::runtime_error("HMAC-SHA256 is not available");
  }
  m_keyed.reset(context, [](const EVP_MAC_CTX* keyed) { EVP_MAC_CTX_free(const_cast<EVP_MAC_CTX*>(keyed)); });
}

std::string
Token::sign(std::string_view data) const
{
  std::unique_ptr<EVP_MAC_CTX, void (*)(EVP_MAC_CTX*)> context(EVP_MAC_CTX_dup(m_keyed.get()), EVP_MAC_CTX_free);
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t length = 0;
  if (!context || !EVP_MAC_update(context.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size())
      || !EVP_MAC_final(context.get(), mac, &length, sizeof mac)) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return to_hex(mac, length);
}

bool
Token::verify(std::string_view data, std::string_view mac) const
{
  auto expected = sign(data);
  return mac.size() == expected.size() && CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) == 0;
}

std::string
Token::derive(std::string_view label, std::size_t size) const
{
  return hkdf_sha256(m_secret, {}, label, size);
}

namespace {

// Random bytes are drawn from OpenSSL in blocks: RAND_bytes costs a getpid()
// system call each time (its fork check), and the prober needs a nonce per
// probe. A child of fork() must never reuse its parent's block, so the block
// remembers the fork generation it was drawn in.
std::atomic<unsigned> g_fork_generation{0};

struct RandomPool
{
  static constexpr std::size_t k_size = 4096;
  unsigned char bytes[k_size];
  std::size_t used = k_size;
  unsigned generation = 0;

  void take(unsigned char* out, std::size_t count)
  {
    static std::once_flag registered;
    std::call_once(registered, [] { ::pthread_atfork(nullptr, nullptr, [] { ++g_fork_generation; }); });
    if (count > k_size) {
      draw(out, count);
      return;
    }
    auto current = g_fork_generation.load(std::memory_order_relaxed);
    if (generation != current || k_size - used < count) {
      draw(bytes, k_size);
      used = 0;
      generation = current;
    }
    std::memcpy(out, bytes + used, count);
    OPENSSL_cleanse(bytes + used, count); // handed out once, not kept
    used += count;
  }

  static void draw(unsigned char* out, std::size_t count)
  {
    if (RAND_bytes(out, int(count)) != 1) throw std::runtime_error("RAND_bytes failed");
  }
};

} // namespace

std::string
random_hex(std::size_t bytes)
{
  thread_local RandomPool pool;
  std::string raw(bytes, '\0');
  pool.take(reinterpret_cast<unsigned char*>(raw.data()), bytes);
  auto hex = to_hex(reinterpret_cast<const unsigned char*>(raw.data()), bytes);
  OPENSSL_cleanse(raw.data(), raw.size());
  return hex;
}

} // namespace portmatrix
