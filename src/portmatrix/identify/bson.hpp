// The little of BSON and of MongoDB's OP_MSG that identifying a MongoDB
// server needs: encode a flat command document ({hello: 1, $db: "admin"}),
// frame it as an OP_MSG, and decode the reply's top-level fields. Decoding
// reads untrusted bytes from the network: every length is checked, nothing
// is read past the buffer, and a malformed message is nullopt, never a crash.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace portmatrix::bson {

// A top-level value. Embedded documents and arrays are kept as their raw
// bytes (decode them with decode() when needed); other types as Other.
struct Raw
{
  std::string bytes;
};
struct Other
{
  std::uint8_t type = 0;
};
using Value = std::variant<double, std::string, bool, std::int32_t, std::int64_t, Raw, std::monostate, Other>;

// A command document, fields in order (the first field names the command).
class Builder
{
public:
  Builder& add(std::string_view name, std::int32_t value);
  Builder& add(std::string_view name, std::string_view value);
  std::string finish() const; // the whole document: length, elements, trailing 0

private:
  std::string m_elements;
};

// Top-level fields of a document; nullopt when the bytes are not one whole,
// well-formed document. Nested documents are bounded by the input's size.
std::optional<std::map<std::string, Value>> decode(std::string_view bytes);

// A number field as a double (BSON int32, int64 or double), or nullopt.
std::optional<double> number(const std::map<std::string, Value>& fields, const std::string& name);
// A string field, or nullopt.
std::optional<std::string> text(const std::map<std::string, Value>& fields, const std::string& name);
// A bool field (numbers count: 1 is true), or nullopt.
std::optional<bool> boolean(const std::map<std::string, Value>& fields, const std::string& name);

inline constexpr std::int32_t k_op_msg = 2013;
inline constexpr std::size_t k_max_message = 1 << 20; // more is not an identification reply

// An OP_MSG request carrying `document` as its body section (kind 0).
std::string op_msg(std::int32_t request_id, std::string_view document);

// The message length announced by a 16-byte header prefix, or nullopt when
// fewer than 4 bytes are there or the length is impossible (< 21, > k_max_message).
std::optional<std::size_t> message_length(std::string_view prefix);

// The body document of a whole OP_MSG reply (header, flags, kind-0 section)
// answering `request_id`, or nullopt when it is anything else.
std::optional<std::string> op_msg_body(std::string_view message, std::int32_t request_id);

} // namespace portmatrix::bson
