// BSON (bsonspec.org, version 1.1) and OP_MSG (MongoDB wire protocol,
// "OP_MSG" in the server's docs): little-endian lengths, elements of
// type byte + C-string name + value. Only what a hello/buildInfo reply holds
// is decoded into values; every other type is skipped by its size, and a
// type whose size cannot be known ends decoding as malformed.
#include "identify/bson.hpp"

#include <cstring>

namespace portmatrix::bson {

namespace {

void
put_int32(std::string& out, std::int32_t value)
{
  auto v = std::uint32_t(value);
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

std::int64_t
get_le(std::string_view bytes, std::size_t at, int size)
{
  std::uint64_t v = 0;
  for (int i = size - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + std::size_t(i)]);
  if (size == 4) return std::int32_t(std::uint32_t(v));
  return std::int64_t(v);
}

// Reads the C string at `at`; returns the position after its 0, or npos.
std::size_t
cstring(std::string_view bytes, std::size_t at, std::string& out)
{
  auto end = bytes.find('\0', at);
  if (end == std::string_view::npos) return end;
  out.assign(bytes.substr(at, end - at));
  return end + 1;
}

} // namespace

Builder&
Builder::add(std::string_view name, std::int32_t value)
{
  m_elements.push_back('\x10');
  m_elements.append(name).push_back('\0');
  put_int32(m_elements, value);
  return *this;
}

Builder&
Builder::add(std::string_view name, std::string_view value)
{
  m_elements.push_back('\x02');
  m_elements.append(name).push_back('\0');
  put_int32(m_elements, std::int32_t(value.size() + 1));
  m_elements.append(value).push_back('\0');
  return *this;
}

std::string
Builder::finish() const
{
  std::string out;
  put_int32(out, std::int32_t(4 + m_elements.size() + 1));
  out += m_elements;
  out.push_back('\0');
  return out;
}

std::optional<std::map<std::string, Value>>
decode(std::string_view bytes)
{
  if (bytes.size() < 5) return std::nullopt;
  auto length = get_le(bytes, 0, 4);
  if (length < 5 || std::size_t(length) != bytes.size() || bytes.back() != '\0') return std::nullopt;
  std::map<std::string, Value> fields;
  std::size_t at = 4;
  const std::size_t end = bytes.size() - 1; // the trailing 0
  auto need = [&](std::size_t n) { return n <= end && at <= end - n; };
  while (at < end) {
    auto type = static_cast<std::uint8_t>(bytes[at++]);
    std::string name;
    at = cstring(bytes.substr(0, end), at, name);
    if (at == std::string_view::npos) return std::nullopt;
    Value value;
    switch (type) {
    case 0x01: // double
      if (!need(8)) return std::nullopt;
      {
        auto bits = std::uint64_t(get_le(bytes, at, 8));
        double d;
        std::memcpy(&d, &bits, sizeof(d));
        value = d;
      }
      at += 8;
      break;
    case 0x02: // string: int32 size (with the 0) + bytes + 0
    case 0x0D: // JavaScript code, same shape
    case 0x0E: { // symbol, same shape
      if (!need(4)) return std::nullopt;
      auto size = get_le(bytes, at, 4);
      at += 4;
      if (size < 1 || !need(std::size_t(size)) || bytes[at + std::size_t(size) - 1] != '\0') return std::nullopt;
      if (type == 0x02) value = std::string(bytes.substr(at, std::size_t(size) - 1));
      else value = Other{type};
      at += std::size_t(size);
      break;
    }
    case 0x03: // embedded document
    case 0x04: { // array
      if (!need(4)) return std::nullopt;
      auto size = get_le(bytes, at, 4);
      if (size < 5 || !need(std::size_t(size))) return std::nullopt;
      value = Raw{std::string(bytes.substr(at, std::size_t(size)))};
      at += std::size_t(size);
      break;
    }
    case 0x05: { // binary: int32 size + subtype + bytes
      if (!need(5)) return std::nullopt;
      auto size = get_le(bytes, at, 4);
      if (size < 0 || !need(5 + std::size_t(size))) return std::nullopt;
      value = Other{type};
      at += 5 + std::size_t(size);
      break;
    }
    case 0x06: // undefined
    case 0x0A: // null
    case 0x7F: // max key
    case 0xFF: // min key
      value = std::monostate{};
      break;
    case 0x07: // ObjectId
      if (!need(12)) return std::nullopt;
      value = Other{type};
      at += 12;
      break;
    case 0x08: // bool
      if (!need(1)) return std::nullopt;
      value = bytes[at] != 0;
      at += 1;
      break;
    case 0x09: // UTC datetime
    case 0x11: // timestamp
      if (!need(8)) return std::nullopt;
      value = Other{type};
      at += 8;
      break;
    case 0x0B: { // regex: two C strings
      std::string skip;
      at = cstring(bytes.substr(0, end), at, skip);
      if (at == std::string_view::npos) return std::nullopt;
      at = cstring(bytes.substr(0, end), at, skip);
      if (at == std::string_view::npos) return std::nullopt;
      value = Other{type};
      break;
    }
    case 0x10: // int32
      if (!need(4)) return std::nullopt;
      value = std::int32_t(get_le(bytes, at, 4));
      at += 4;
      break;
    case 0x12: // int64
      if (!need(8)) return std::nullopt;
      value = get_le(bytes, at, 8);
      at += 8;
      break;
    case 0x13: // decimal128
      if (!need(16)) return std::nullopt;
      value = Other{type};
      at += 16;
      break;
    default: return std::nullopt; // (DBPointer, code with scope, unknown: not in a hello reply)
    }
    fields.emplace(std::move(name), std::move(value));
  }
  return fields;
}

std::optional<double>
number(const std::map<std::string, Value>& fields, const std::string& name)
{
  auto it = fields.find(name);
  if (it == fields.end()) return std::nullopt;
  if (auto* v = std::get_if<std::int32_t>(&it->second)) return double(*v);
  if (auto* v = std::get_if<std::int64_t>(&it->second)) return double(*v);
  if (auto* v = std::get_if<double>(&it->second)) return *v;
  return std::nullopt;
}

std::optional<std::string>
text(const std::map<std::string, Value>& fields, const std::string& name)
{
  auto it = fields.find(name);
  if (it == fields.end()) return std::nullopt;
  if (auto* v = std::get_if<std::string>(&it->second)) return *v;
  return std::nullopt;
}

std::optional<bool>
boolean(const std::map<std::string, Value>& fields, const std::string& name)
{
  auto it = fields.find(name);
  if (it == fields.end()) return std::nullopt;
  if (auto* v = std::get_if<bool>(&it->second)) return *v;
  if (auto n = number(fields, name)) return *n != 0;
  return std::nullopt;
}

std::string
op_msg(std::int32_t request_id, std::string_view document)
{
  std::string out;
  put_int32(out, std::int32_t(16 + 4 + 1 + document.size()));
  put_int32(out, request_id);
  put_int32(out, 0); // responseTo
  put_int32(out, k_op_msg);
  put_int32(out, 0); // flagBits
  out.push_back('\0'); // section kind 0: body
  out.append(document);
  return out;
}

std::optional<std::size_t>
message_length(std::string_view prefix)
{
  if (prefix.size() < 4) return std::nullopt;
  auto length = get_le(prefix, 0, 4);
  if (length < 21 || std::size_t(length) > k_max_message) return std::nullopt;
  return std::size_t(length);
}

std::optional<std::string>
op_msg_body(std::string_view message, std::int32_t request_id)
{
  auto length = message_length(message);
  if (!length || *length != message.size()) return std::nullopt;
  if (get_le(message, 8, 4) != request_id || get_le(message, 12, 4) != k_op_msg) return std::nullopt;
  auto flags = std::uint32_t(get_le(message, 16, 4));
  std::size_t end = message.size() - ((flags & 1) ? 4 : 0); // checksumPresent: a CRC-32C trails
  std::size_t at = 20;
  // Sections: kind 0 is the body; kind 1 (document sequence) is skipped.
  while (at < end) {
    auto kind = message[at++];
    if (at + 4 > end) return std::nullopt;
    auto size = get_le(message, at, 4);
    if (size < 5 || std::size_t(size) > end - at) return std::nullopt;
    if (kind == 0) return std::string(message.substr(at, std::size_t(size)));
    if (kind != 1) return std::nullopt;
    at += std::size_t(size);
  }
  return std::nullopt;
}

} // namespace portmatrix::bson
