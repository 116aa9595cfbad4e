// HKDF through EVP_KDF (OpenSSL 3).
#include "crypto/hkdf.hpp"

#include <memory>
#include <stdexcept>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

namespace portmatrix {
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

} // namespace portmatrix
