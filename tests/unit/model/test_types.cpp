#include <gtest/gtest.h>

#include "model/types.hpp"

namespace portmatrix {

TEST(PortRange, ParsesSinglePortsRangesAndTheGuidesSlashForm)
{
  EXPECT_EQ(parse_port_range("6443").range, (PortRange{6443, 6443}));
  EXPECT_EQ(parse_port_range("2379-2380").range, (PortRange{2379, 2380}));
  EXPECT_EQ(parse_port_range("51820/51821").range, (PortRange{51820, 51821}));
}

TEST(PortRange, RejectsOutOfRangeReversedAndGarbage)
{
  EXPECT_FALSE(parse_port_range("0").range);
  EXPECT_FALSE(parse_port_range("65536").range);
  EXPECT_NE(parse_port_range("65536").error.find("outside 1-65535"), std::string::npos);
  EXPECT_FALSE(parse_port_range("2380-2379").range);
  EXPECT_NE(parse_port_range("2380-2379").error.find("first port above its last"), std::string::npos);
  EXPECT_FALSE(parse_port_range("http").range);
  EXPECT_FALSE(parse_port_range("").range);
  EXPECT_FALSE(parse_port_range("-5").range);
  EXPECT_FALSE(parse_port_range("99999999999").range);
}

TEST(Role, AcceptsControlPlaneAsMaster)
{
  EXPECT_EQ(parse_role("control-plane"), Role::master);
  EXPECT_EQ(parse_role("worker"), Role::worker);
  EXPECT_FALSE(parse_role("wizard"));
}

TEST(Diagnostic, PrintsFileLineColumn)
{
  EXPECT_EQ(to_string(Diagnostic{"inv.yaml", 3, 7, "bad"}), "inv.yaml:3:7: error: bad");
  EXPECT_EQ(to_string(Diagnostic{"inv.yaml", 0, 0, "bad"}), "inv.yaml: error: bad");
}

TEST(Printable, EscapesControlCharacters)
{
  using namespace std::string_view_literals;
  EXPECT_EQ(printable("a\0b\tc\nd\x1b"sv), "a\\0b\\tc\\nd\\x1b");
}

TEST(Printable, CutsLongValuesAndSaysHowLongTheyWere)
{
  EXPECT_EQ(printable(std::string(64, 'x')), std::string(64, 'x'));
  EXPECT_EQ(printable(std::string(5'000'000, 'x')), std::string(64, 'x') + "... (5000000 bytes)");
  // Never in the middle of a UTF-8 character: "é" is 2 bytes, the 64th would be its first.
  EXPECT_EQ(printable(std::string(63, 'x') + "\xc3\xa9" + "tail"), std::string(63, 'x') + "... (69 bytes)");
}

} // namespace portmatrix
