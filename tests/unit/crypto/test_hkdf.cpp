// HKDF-SHA256 against RFC 5869's known answer, and the token's keys per label.
#include <gtest/gtest.h>

#include <string>

#include "crypto/hkdf.hpp"
#include "crypto/hmac.hpp"

namespace portmatrix {
namespace {

std::string
unhex(std::string_view hex)
{
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += char(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

std::string
tohex(std::string_view bytes)
{
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

TEST(Hkdf, MatchesRfc5869TestCase1)
{
  auto okm = hkdf_sha256(std::string(22, '\x0b'), unhex("000102030405060708090a0b0c"), unhex("f0f1f2f3f4f5f6f7f8f9"), 42);
  EXPECT_EQ(tohex(okm), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(Hkdf, ATokenDerivesOneKeyPerLabel)
{
  auto token = *Token::from_text("a-shared-secret-of-the-cluster");
  auto other = *Token::from_text("another-secret-of-the-cluster");
  EXPECT_EQ(token.derive("label one", 32), token.derive("label one", 32));
  EXPECT_NE(token.derive("label one", 32), token.derive("label two", 32));
  EXPECT_NE(token.derive("label one", 32), other.derive("label one", 32));
  EXPECT_EQ(token.derive("label one", 32).find("a-shared-secret"), std::string::npos);
}

} // namespace
} // namespace portmatrix
