// SHA-256 of a file (OpenSSL), to name what is uploaded by its content.
#pragma once

#include <optional>
#include <string>

namespace portmatrix {

// The lower-case hex SHA-256 (64 characters) of the file at `path`; nullopt
// with `error` set when it cannot be read.
std::optional<std::string> sha256_file(const std::string& path, std::string& error);

} // namespace portmatrix
