#include <gtest/gtest.h>

#include <random>

#include <fmt/format.h>

#include "plan/address_set.hpp"

namespace portmatrix {
namespace {

AddressRange
range(std::string_view text)
{
  auto parsed = parse_address_range(text);
  if (!parsed) throw std::runtime_error(fmt::format("not an address or CIDR: {}", text));
  return *parsed;
}

std::vector<AddressRange>
cover(std::initializer_list<std::string_view> texts)
{
  std::vector<AddressRange> ranges;
  for (auto text : texts) ranges.push_back(range(text));
  return merge_address_ranges(std::move(ranges));
}

std::vector<std::string>
ranges_of(std::initializer_list<std::string_view> texts)
{
  return address_texts(cover(texts), AddressForm::ranges);
}

std::vector<std::string>
prefixes_of(std::initializer_list<std::string_view> texts)
{
  return address_texts(cover(texts), AddressForm::prefixes);
}

using Texts = std::vector<std::string>;

// A small space of 256 addresses: `base` is its first address (aligned at 256).
struct Space
{
  AddressFamily family;
  AddressValue base;
  AddressValue at(unsigned offset) const { return {base.high, base.low + offset}; }
  int width() const { return family == AddressFamily::v4 ? 32 : 128; }
};

// The fewest aligned prefixes holding exactly `members` (a 2^bits block at
// `offset`): 1 when all are in, 0 when none is, else the halves' sum. Any
// exact prefix cover cuts this tree, so this is the minimum.
std::size_t
min_prefixes(const std::vector<bool>& members, unsigned offset, unsigned size)
{
  std::size_t in = 0;
  for (unsigned i = offset; i < offset + size; ++i) in += members[i];
  if (in == 0) return 0;
  if (in == size) return 1;
  return min_prefixes(members, offset, size / 2) + min_prefixes(members, offset + size / 2, size / 2);
}

} // namespace

TEST(AddressSet, ParsesAddressesAndClearsHostBits)
{
  auto single = range("10.0.0.1");
  EXPECT_EQ(single.family, AddressFamily::v4);
  EXPECT_EQ(single.first, single.last);
  EXPECT_EQ(single.first.low, 0x0A000001u);
  auto network = range("10.0.0.5/24");
  EXPECT_EQ(to_string(network), "10.0.0.0/24");
  EXPECT_EQ(network.last.low, 0x0A0000FFu);
  EXPECT_EQ(to_string(range("fd00::1:2/112")), "fd00::1:0/112");
  EXPECT_EQ(range("fd00::1").family, AddressFamily::v6);
  for (auto bad : {"", "10.0.0", "10.0.0.1/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/2a", "x", "10.0.0.1-10.0.0.2"}) {
    EXPECT_FALSE(parse_address_range(bad)) << bad;
  }
}

TEST(AddressSet, EdgesOfTheAddressSpace)
{
  EXPECT_EQ(ranges_of({"0.0.0.0"}), Texts{"0.0.0.0"});
  EXPECT_EQ(ranges_of({"255.255.255.255"}), Texts{"255.255.255.255"});
  EXPECT_EQ(ranges_of({"0.0.0.0", "255.255.255.255"}), (Texts{"0.0.0.0", "255.255.255.255"}));
  EXPECT_EQ(ranges_of({"0.0.0.0/0"}), Texts{"0.0.0.0/0"});
  EXPECT_EQ(prefixes_of({"0.0.0.0/0", "10.0.0.1"}), Texts{"0.0.0.0/0"});
  EXPECT_EQ(ranges_of({"0.0.0.0/1", "128.0.0.0/1"}), Texts{"0.0.0.0/0"});
  EXPECT_EQ(ranges_of({"255.255.255.254", "255.255.255.255"}), Texts{"255.255.255.254/31"});
  EXPECT_EQ(prefixes_of({"0.0.0.1", "0.0.0.2"}), (Texts{"0.0.0.1", "0.0.0.2"}));
  EXPECT_EQ(ranges_of({"0.0.0.1", "0.0.0.2"}), Texts{"0.0.0.1-0.0.0.2"});
  // Everything but the first and the last address: 31 + 31 prefixes.
  AddressRange inner{AddressFamily::v4, {0, 1}, {0, 0xFFFFFFFEu}};
  EXPECT_EQ(to_string(inner), "0.0.0.1-255.255.255.254");
  EXPECT_EQ(to_prefixes(inner).size(), 62u);

  EXPECT_EQ(ranges_of({"::"}), Texts{"::"});
  EXPECT_EQ(ranges_of({"::/0"}), Texts{"::/0"});
  EXPECT_EQ(ranges_of({"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}), Texts{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"});
  EXPECT_EQ(ranges_of({"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}),
            Texts{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"});
  EXPECT_EQ(ranges_of({"::/1", "8000::/1"}), Texts{"::/0"});
  AddressRange all_but_ends{AddressFamily::v6, {0, 1}, {~0ull, ~0ull - 1}};
  EXPECT_EQ(to_prefixes(all_but_ends).size(), 254u);
  EXPECT_EQ(to_string(all_but_ends), "::1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
  // Across the 64-bit halves.
  EXPECT_EQ(ranges_of({"::ffff:ffff:ffff:ffff", "0:0:0:1::"}), Texts{"::ffff:ffff:ffff:ffff-0:0:0:1::"});
  EXPECT_EQ(prefixes_of({"::8000:0:0:0/65", "0:0:0:1::/65"}), (Texts{"::8000:0:0:0/65", "0:0:0:1::/65"}));
  EXPECT_EQ(ranges_of({"::/65", "::8000:0:0:0/65"}), Texts{"::/64"});
}

TEST(AddressSet, MergesDuplicatesOverlapsAndNeighbours)
{
  EXPECT_EQ(ranges_of({"10.0.0.1", "10.0.0.1", "10.0.0.2"}), Texts{"10.0.0.1-10.0.0.2"});
  EXPECT_EQ(ranges_of({"10.0.0.0/25", "10.0.0.128/25"}), Texts{"10.0.0.0/24"});
  EXPECT_EQ(ranges_of({"10.0.0.0/24", "10.0.0.7", "10.0.0.255", "10.0.0.0/26"}), Texts{"10.0.0.0/24"});
  EXPECT_EQ(ranges_of({"10.0.0.0/24", "10.0.1.0"}), Texts{"10.0.0.0-10.0.1.0"});
  EXPECT_EQ(prefixes_of({"10.0.0.0/24", "10.0.1.0"}), (Texts{"10.0.0.0/24", "10.0.1.0"}));
  EXPECT_EQ(ranges_of({"10.0.0.13", "10.0.0.11", "10.0.0.12"}), Texts{"10.0.0.11-10.0.0.13"});
  EXPECT_EQ(prefixes_of({"10.0.0.13", "10.0.0.11", "10.0.0.12"}), (Texts{"10.0.0.11", "10.0.0.12/31"}));
  EXPECT_EQ(prefixes_of({"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}),
            (Texts{"10.0.0.1", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6"}));
  // Consecutive across an octet: .255 and the next .0.
  EXPECT_EQ(ranges_of({"10.0.0.255", "10.0.1.0"}), Texts{"10.0.0.255-10.0.1.0"});
  // Families never merge, and IPv4 comes first.
  EXPECT_EQ(ranges_of({"::1", "0.0.0.1", "::2", "0.0.0.2"}), (Texts{"0.0.0.1-0.0.0.2", "::1-::2"}));
  EXPECT_EQ(ranges_of({"255.255.255.255", "::"}), (Texts{"255.255.255.255", "::"}));
  EXPECT_TRUE(merge_address_ranges({}).empty());
}

// Random sets of addresses and CIDRs in small spaces (some at the very edges
// of each family), checked against a membership test of every address of the
// space: the cover holds exactly the input's addresses, its ranges are
// sorted, disjoint and not adjacent (so as few as can be), and the prefixes
// are exactly as many as the fewest possible.
TEST(AddressSet, RandomSetsAreCoveredExactlyAndMinimally)
{
  const Space spaces[] = {
    {AddressFamily::v4, {0, 0}},                     // 0.0.0.0/24
    {AddressFamily::v4, {0, 0x0A000000u}},           // 10.0.0.0/24
    {AddressFamily::v4, {0, 0xFFFFFF00u}},           // 255.255.255.0/24
    {AddressFamily::v6, {0, 0}},                     // ::/120
    {AddressFamily::v6, {0xFD00000000000000u, 0}},   // fd00::/120
    {AddressFamily::v6, {~0ull, ~0ull - 0xFF}},      // ffff:...:ff00/120
  };
  std::mt19937 random(20240611);
  for (int round = 0; round < 3000; ++round) {
    const auto& space = spaces[round % std::size(spaces)];
    std::vector<bool> members(256, false);
    std::vector<AddressRange> input;
    int entries = 1 + int(random() % 12);
    for (int i = 0; i < entries; ++i) {
      unsigned offset = random() % 256;
      // Host bits (0..8 of them) left set in the text: they must be ignored.
      unsigned host_bits = random() % 3 == 0 ? random() % 9 : 0;
      int length = space.width() - int(host_bits);
      auto text = fmt::format("{}/{}", to_string(space.family, space.at(offset)), length);
      if (host_bits == 0 && random() % 2) text = to_string(space.family, space.at(offset));
      auto parsed = parse_address_range(text);
      ASSERT_TRUE(parsed) << text;
      input.push_back(*parsed);
      unsigned block = 1u << host_bits;
      for (unsigned a = offset / block * block; a < offset / block * block + block; ++a) members[a] = true;
    }
    auto merged = merge_address_ranges(input);
    std::string context = fmt::format("round {}", round);
    for (const auto& r : input) context += " " + to_string(r);

    // Exact: every address of the space is in the cover iff it was in the input.
    for (unsigned a = 0; a < 256; ++a) {
      auto address = space.at(a);
      bool in_ranges = false;
      for (const auto& r : merged) in_ranges |= r.family == space.family && r.contains(address);
      ASSERT_EQ(in_ranges, bool(members[a])) << context << ": address +" << a;
    }
    // Nothing outside the space crept in.
    for (const auto& r : merged) {
      ASSERT_EQ(r.family, space.family) << context;
      ASSERT_LE(space.at(0), r.first) << context;
      ASSERT_LE(r.last, space.at(255)) << context;
    }
    // Sorted, disjoint, non-adjacent: one range per run of members.
    std::size_t runs = 0;
    for (unsigned a = 0; a < 256; ++a) runs += members[a] && (a == 0 || !members[a - 1]);
    ASSERT_EQ(merged.size(), runs) << context;
    for (std::size_t i = 1; i < merged.size(); ++i) ASSERT_LT(merged[i - 1].last, merged[i].first) << context;

    // Prefixes: exact, aligned, in order, and as few as possible.
    std::vector<bool> from_prefixes(256, false);
    std::size_t count = 0;
    AddressValue previous_end{};
    bool first_prefix = true;
    for (const auto& r : merged) {
      for (const auto& prefix : to_prefixes(r)) {
        ++count;
        int host = space.width() - prefix.length;
        ASSERT_GE(host, 0);
        ASSERT_LE(host, 8) << context;
        unsigned start = unsigned(prefix.network.low - space.base.low);
        unsigned block = 1u << host;
        ASSERT_EQ(start % block, 0u) << context << ": " << to_string(prefix) << " is not aligned";
        ASSERT_TRUE(first_prefix || previous_end < prefix.network) << context;
        first_prefix = false;
        previous_end = space.at(start + block - 1);
        for (unsigned a = start; a < start + block; ++a) {
          ASSERT_FALSE(from_prefixes[a]) << context << ": prefixes overlap";
          from_prefixes[a] = true;
        }
        // The text form round-trips.
        auto reparsed = parse_address_range(to_string(prefix));
        ASSERT_TRUE(reparsed);
        ASSERT_EQ(reparsed->first, prefix.network);
      }
      // The range's text round-trips to the same addresses.
      auto text = to_string(r);
      if (auto dash = text.find('-'); dash != std::string::npos) {
        ASSERT_EQ(range(text.substr(0, dash)).first, r.first) << text;
        ASSERT_EQ(range(text.substr(dash + 1)).first, r.last) << text;
        ASSERT_GT(to_prefixes(r).size(), 1u) << text << " is one prefix, written as a range";
      } else {
        ASSERT_EQ(range(text), r) << text;
      }
    }
    ASSERT_EQ(from_prefixes, members) << context;
    ASSERT_EQ(count, min_prefixes(members, 0, 256)) << context;
  }
}

} // namespace portmatrix
