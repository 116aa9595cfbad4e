// Address covers. An address is a 128-bit number (two 64-bit halves; IPv4 in
// the low 32 bits), so a range is two numbers and merging is one sort and one
// sweep. A range becomes prefixes greedily: from its first address, the
// largest block that is aligned there and does not pass the range's end.
// That is the fewest prefixes: each block taken is the largest aligned one
// starting where it starts, and any exact cover must start a block there too.
#include "plan/address_set.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>

#include <fmt/format.h>

namespace portmatrix {
namespace {

constexpr std::uint64_t k_all = ~std::uint64_t(0);

int
width(AddressFamily family)
{
  return family == AddressFamily::v4 ? 32 : 128;
}

// The number with its low `bits` bits set (0 <= bits <= 128).
AddressValue
ones(int bits)
{
  if (bits <= 0) return {};
  if (bits < 64) return {0, (std::uint64_t(1) << bits) - 1};
  if (bits == 64) return {0, k_all};
  if (bits < 128) return {(std::uint64_t(1) << (bits - 64)) - 1, k_all};
  return {k_all, k_all};
}

AddressValue
operator|(const AddressValue& a, const AddressValue& b)
{
  return {a.high | b.high, a.low | b.low};
}

AddressValue
operator&(const AddressValue& a, const AddressValue& b)
{
  return {a.high & b.high, a.low & b.low};
}

AddressValue
operator^(const AddressValue& a, const AddressValue& b)
{
  return {a.high ^ b.high, a.low ^ b.low};
}

AddressValue
operator~(const AddressValue& a)
{
  return {~a.high, ~a.low};
}

// a + 1, wrapping at 2^128 (callers never step past a family's last address).
AddressValue
next(const AddressValue& a)
{
  return a.low == k_all ? AddressValue{a.high + 1, 0} : AddressValue{a.high, a.low + 1};
}

bool
is_zero(const AddressValue& a)
{
  return a.high == 0 && a.low == 0;
}

// How many low bits of `a` are zero, at most `limit` (the family's width).
int
trailing_zeros(const AddressValue& a, int limit)
{
  int zeros = a.low != 0 ? std::countr_zero(a.low) : a.high != 0 ? 64 + std::countr_zero(a.high) : 128;
  return std::min(zeros, limit);
}

// The size (in bits) of the aligned block that starts at `first` and ends at
// `last`, or nullopt when first..last is no such block.
std::optional<int>
single_block(const AddressValue& first, const AddressValue& last, int limit)
{
  auto span = first ^ last;
  if (!is_zero(first & span) || !is_zero(next(span) & span)) return std::nullopt;
  int bits = span.high != 0 ? 64 + int(std::bit_width(span.high)) : int(std::bit_width(span.low));
  return std::min(bits, limit);
}

} // namespace

std::optional<AddressRange>
parse_address_range(std::string_view text)
{
  // inet_pton reads a C string: it would stop at an embedded NUL.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  auto slash = text.find('/');
  std::string address(text.substr(0, slash));
  std::array<unsigned char, 16> bytes{};
  AddressRange range;
  if (::inet_pton(AF_INET, address.c_str(), bytes.data()) == 1) {
    range.family = AddressFamily::v4;
    for (int i = 0; i < 4; ++i) range.first.low = range.first.low << 8 | bytes[i];
  } else if (::inet_pton(AF_INET6, address.c_str(), bytes.data()) == 1) {
    range.family = AddressFamily::v6;
    for (int i = 0; i < 8; ++i) range.first.high = range.first.high << 8 | bytes[i];
    for (int i = 8; i < 16; ++i) range.first.low = range.first.low << 8 | bytes[i];
  } else {
    return std::nullopt;
  }
  int bits = width(range.family);
  int length = bits;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || length < 0 || length > bits) {
      return std::nullopt;
    }
  }
  auto host = ones(bits - length);
  range.first = range.first & ~host & ones(bits);
  range.last = range.first | host;
  return range;
}

std::vector<AddressRange>
merge_address_ranges(std::vector<AddressRange> ranges)
{
  std::sort(ranges.begin(), ranges.end());
  std::vector<AddressRange> merged;
  for (const auto& range : ranges) {
    if (!merged.empty()) {
      auto& back = merged.back();
      // Overlapping or adjacent: back.last + 1 cannot overflow below the family's last address.
      if (back.family == range.family &&
          (back.last == ones(width(back.family)) || range.first <= next(back.last))) {
        back.last = std::max(back.last, range.last);
        continue;
      }
    }
    merged.push_back(range);
  }
  return merged;
}

std::vector<AddressPrefix>
to_prefixes(const AddressRange& range)
{
  std::vector<AddressPrefix> prefixes;
  int bits = width(range.family);
  auto first = range.first;
  while (true) {
    // The largest block aligned at `first` that ends at or before range.last.
    int size = trailing_zeros(first, bits);
    while (size > 0 && (first | ones(size)) > range.last) --size;
    prefixes.push_back({range.family, first, bits - size});
    auto end = first | ones(size);
    if (end >= range.last) break;
    first = next(end);
  }
  return prefixes;
}

std::string
to_string(AddressFamily family, const AddressValue& address)
{
  if (family == AddressFamily::v4) {
    auto v = address.low;
    return fmt::format("{}.{}.{}.{}", v >> 24 & 0xFF, v >> 16 & 0xFF, v >> 8 & 0xFF, v & 0xFF);
  }
  std::array<unsigned char, 16> bytes{};
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(address.high >> (56 - 8 * i));
    bytes[8 + i] = static_cast<unsigned char>(address.low >> (56 - 8 * i));
  }
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, bytes.data(), text, sizeof text);
  return text;
}

std::string
to_string(const AddressPrefix& prefix)
{
  auto address = to_string(prefix.family, prefix.network);
  if (prefix.length == width(prefix.family)) return address;
  return fmt::format("{}/{}", address, prefix.length);
}

std::string
to_string(const AddressRange& range)
{
  int bits = width(range.family);
  if (auto size = single_block(range.first, range.last, bits)) return to_string(AddressPrefix{range.family, range.first, bits - *size});
  return fmt::format("{}-{}", to_string(range.family, range.first), to_string(range.family, range.last));
}

std::vector<std::string>
address_texts(const std::vector<AddressRange>& cover, AddressForm form)
{
  std::vector<std::string> texts;
  texts.reserve(cover.size());
  for (const auto& range : cover) {
    if (form == AddressForm::ranges) {
      texts.push_back(to_string(range));
      continue;
    }
    for (const auto& prefix : to_prefixes(range)) texts.push_back(to_string(prefix));
  }
  return texts;
}

} // namespace portmatrix
