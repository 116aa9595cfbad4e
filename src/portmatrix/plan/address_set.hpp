// Exact covers of sets of addresses, for the source sets of host firewalls.
// A firewall must admit the addresses the inventory names and no others, so
// a cover holds exactly the addresses of its input (overlaps and duplicates
// merged, nothing widened), sorted, in the fewest entries of the shape a
// backend accepts: inclusive ranges (first-last) or aligned CIDR prefixes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portmatrix {

enum class AddressFamily { v4, v6 };

// An address as a 128-bit number, the high half first so that the defaulted
// ordering is the numeric one; an IPv4 address is the low 32 bits.
struct AddressValue
{
  std::uint64_t high = 0;
  std::uint64_t low = 0;

  friend auto operator<=>(const AddressValue&, const AddressValue&) = default;
};

// The addresses first..last, both included, of one family (first <= last).
// Ordered by family (v4 first), then first, then last.
struct AddressRange
{
  AddressFamily family = AddressFamily::v4;
  AddressValue first;
  AddressValue last;

  bool contains(const AddressValue& address) const { return first <= address && address <= last; }
  friend auto operator<=>(const AddressRange&, const AddressRange&) = default;
};

// An aligned prefix: the addresses whose first `length` bits are those of
// `network`, whose other bits are zero.
struct AddressPrefix
{
  AddressFamily family = AddressFamily::v4;
  AddressValue network;
  int length = 0;

  friend bool operator==(const AddressPrefix&, const AddressPrefix&) = default;
};

// The shape of a cover's entries in a backend's syntax.
enum class AddressForm {
  ranges,   // one entry per range: "a.b.c.d", "first-last", or the prefix when the range is exactly one
  prefixes, // the fewest aligned prefixes per range; a single address without "/32" or "/128"
};

// "10.0.0.1", "10.0.0.0/24", "fd00::1", "fd00::/64" -> the addresses named.
// Bits past the prefix length are ignored ("10.0.0.5/24" is 10.0.0.0/24), as
// nft, ipset, firewalld and ufw do. nullopt when `text` is none of these.
std::optional<AddressRange> parse_address_range(std::string_view text);

// The union of `ranges` as sorted (v4 before v6), disjoint, non-adjacent
// ranges: exactly the same addresses, in the fewest ranges that can hold them.
std::vector<AddressRange> merge_address_ranges(std::vector<AddressRange> ranges);

// The fewest aligned prefixes whose union is exactly `range`, in address order.
std::vector<AddressPrefix> to_prefixes(const AddressRange& range);

// "10.0.0.1", "fd00::1" (RFC 5952 form).
std::string to_string(AddressFamily family, const AddressValue& address);
// "10.0.0.0/24"; a single address (/32, /128) is written as the address alone.
std::string to_string(const AddressPrefix& prefix);
// "10.0.0.1-10.0.0.6"; a single address alone; a range that is exactly one
// aligned prefix as that prefix ("10.0.0.0/24").
std::string to_string(const AddressRange& range);

// The entries of `cover` (sorted, as merge_address_ranges returns) as texts
// of `form`, in address order.
std::vector<std::string> address_texts(const std::vector<AddressRange>& cover, AddressForm form);

} // namespace portmatrix
