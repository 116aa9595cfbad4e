// SHA-256 (OpenSSL), to name what is uploaded by its content.
#pragma once

#include <string>
#include <string_view>

namespace portmatrix {

// The lower-case hex SHA-256 (64 characters) of `data`.
std::string sha256_hex(std::string_view data);

} // namespace portmatrix
