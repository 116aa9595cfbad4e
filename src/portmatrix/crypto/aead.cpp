// HKDF through EVP_KDF and ChaCha20-Poly1305 through EVP_CIPHER (OpenSSL 3).
// A fresh cipher context per record keeps AeadKey copyable and free of
// OpenSSL state between records; a record is at most a few KiB, so the
// context's setup is a small part of its cost.
#include "crypto/aead.hpp"

#include <array>
#include <memory>
#include <stdexcept>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

namespace portmatrix {
namespace {

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, void (*)(EVP_CIPHER_CTX*)>;

const unsigned char*
bytes(std::string_view text)
{
  return reinterpret_cast<const unsigned char*>(text.data());
}

} // namespace

std::string
hkdf_sha256(std::string_view secret, std::string_view salt, std::string_view info, std::size_t size)
{
  std::unique_ptr<EVP_KDF, void (*)(EVP_KDF*)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr), EVP_KDF_free);
  std::unique_ptr<EVP_KDF_CTX, void (*)(EVP_KDF_CTX*)> context(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr,
                                                               EVP_KDF_CTX_free);
  char digest[] = "SHA256";
  // OSSL_PARAM takes non-const pointers; HKDF only reads them.
  auto octets = [](const char* name, std::string_view value) {
    return OSSL_PARAM_construct_octet_string(name, const_cast<char*>(value.data()), value.size());
  };
  // An empty salt is left out (HKDF then uses zeros): OpenSSL refuses an empty octet string.
  std::vector<OSSL_PARAM> params{OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                                 octets(OSSL_KDF_PARAM_KEY, secret), octets(OSSL_KDF_PARAM_INFO, info)};
  if (!salt.empty()) params.push_back(octets(OSSL_KDF_PARAM_SALT, salt));
  params.push_back(OSSL_PARAM_construct_end());
  std::string out(size, '\0');
  if (!context || EVP_KDF_derive(context.get(), reinterpret_cast<unsigned char*>(out.data()), size, params.data()) != 1) {
    throw std::runtime_error("HKDF-SHA256 is not available");
  }
  return out;
}

AeadKey::AeadKey(std::string key) : m_key(std::move(key))
{
  if (m_key.size() != k_key_size) throw std::invalid_argument("an AEAD key is 32 bytes");
}

namespace {

std::array<unsigned char, 12>
counter_nonce(std::uint64_t counter)
{
  std::array<unsigned char, 12> nonce{};
  for (int i = 0; i < 8; ++i) nonce[11 - i] = static_cast<unsigned char>(counter >> (8 * i));
  return nonce;
}

} // namespace

std::string
AeadKey::seal(std::string_view aad, std::string_view plaintext)
{
  auto nonce = counter_nonce(m_counter++);
  CipherContext context(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  std::string out(plaintext.size() + k_tag_size, '\0');
  auto* data = reinterpret_cast<unsigned char*>(out.data());
  int length = 0;
  int final_length = 0;
  if (!context || EVP_EncryptInit_ex(context.get(), EVP_chacha20_poly1305(), nullptr, bytes(m_key), nonce.data()) != 1
      || EVP_EncryptUpdate(context.get(), nullptr, &length, bytes(aad), int(aad.size())) != 1
      || EVP_EncryptUpdate(context.get(), data, &length, bytes(plaintext), int(plaintext.size())) != 1
      || EVP_EncryptFinal_ex(context.get(), data + length, &final_length) != 1
      || EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_AEAD_GET_TAG, int(k_tag_size), data + plaintext.size()) != 1) {
    throw std::runtime_error("ChaCha20-Poly1305 failed");
  }
  return out;
}

std::optional<std::string>
AeadKey::open(std::string_view aad, std::string_view sealed)
{
  if (sealed.size() < k_tag_size) return std::nullopt;
  auto nonce = counter_nonce(m_counter++);
  auto ciphertext = sealed.substr(0, sealed.size() - k_tag_size);
  std::string tag(sealed.substr(ciphertext.size()));
  CipherContext context(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  std::string out(ciphertext.size(), '\0');
  auto* data = reinterpret_cast<unsigned char*>(out.data());
  int length = 0;
  int final_length = 0;
  if (!context || EVP_DecryptInit_ex(context.get(), EVP_chacha20_poly1305(), nullptr, bytes(m_key), nonce.data()) != 1
      || EVP_DecryptUpdate(context.get(), nullptr, &length, bytes(aad), int(aad.size())) != 1
      || EVP_DecryptUpdate(context.get(), data, &length, bytes(ciphertext), int(ciphertext.size())) != 1
      || EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_AEAD_SET_TAG, int(k_tag_size), tag.data()) != 1
      || EVP_DecryptFinal_ex(context.get(), data + length, &final_length) != 1) {
    OPENSSL_cleanse(out.data(), out.size()); // decrypted before the tag was known: never handed out
    return std::nullopt;
  }
  return out;
}

} // namespace portmatrix
