// Aligned text tables: columns line up whatever a cell holds, arrows
// (several UTF-8 bytes) and colour (escape sequences) included.
#include <gtest/gtest.h>

#include "util/text_table.hpp"

namespace portmatrix {
namespace {

TEST(TextTable, ColourTakesNoRoom)
{
  EXPECT_EQ(display_width("\033[1;31mfail\033[0m"), 4u);
  EXPECT_EQ(display_width("worker → master"), 15u);
  EXPECT_EQ(display_width("\033[K"), 0u);
}

TEST(TextTable, ColouredCellsKeepTheColumnsAligned)
{
  TextTable plain({"Verdict", "From"});
  plain.add({"fail", "worker1"});
  plain.add({"pass", "worker2"});
  TextTable coloured({"Verdict", "From"});
  coloured.add({"\033[1;31mfail\033[0m", "worker1"});
  coloured.add({"\033[32mpass\033[0m", "worker2"});
  auto strip = [](std::string text) {
    for (auto at = text.find('\033'); at != std::string::npos; at = text.find('\033')) {
      text.erase(at, text.find('m', at) - at + 1);
    }
    return text;
  };
  EXPECT_EQ(strip(coloured.render()), plain.render());
}

} // namespace
} // namespace portmatrix
