// One EVP digest call over the whole buffer.
#include "crypto/digest.hpp"

#include <openssl/evp.h>

#include <stdexcept>

#include <fmt/format.h>

namespace portmatrix {

std::string
sha256_hex(std::string_view data)
{
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr)) {
    throw std::runtime_error("SHA-256 is not available");
  }
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

} // namespace portmatrix
