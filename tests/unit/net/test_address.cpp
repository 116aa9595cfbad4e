#include <gtest/gtest.h>

#include "net/address.hpp"

namespace portmatrix {

TEST(SocketAddress, TextWithAnEmbeddedNulIsNoAddress)
{
  using namespace std::string_view_literals;
  EXPECT_TRUE(SocketAddress::parse("10.0.0.1"sv, 7946));
  EXPECT_FALSE(SocketAddress::parse("10.0.0.1\0garbage"sv, 7946));
  EXPECT_FALSE(SocketAddress::parse("fd00::1\0"sv, 7946));
}

} // namespace portmatrix
