// HKDF-SHA256 through OpenSSL: the keys derived from the token (the control
// channel's PSK per node, agent/control_channel.hpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace portmatrix {

// HKDF-SHA256 (RFC 5869): `size` bytes from the input keying material
// `secret`, with `salt` (may be empty) and `info` (the label). Throws
// std::runtime_error only when OpenSSL lacks HKDF.
std::string hkdf_sha256(std::string_view secret, std::string_view salt, std::string_view info, std::size_t size);

} // namespace portmatrix
