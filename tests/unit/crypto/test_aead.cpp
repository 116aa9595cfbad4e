// HKDF-SHA256 against RFC 5869's known answer, and ChaCha20-Poly1305 with a
// counter nonce: what one side seals the other opens once, in order; a
// changed byte, another key, a replayed or reordered record do not open.
#include <gtest/gtest.h>

#include <string>

#include "crypto/aead.hpp"
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

TEST(Aead, OpensWhatTheOtherSideSealedInOrder)
{
  std::string key(32, 'k');
  AeadKey sender(key), receiver(key);
  auto first = sender.seal("head1", "first record");
  auto second = sender.seal("head2", "second record");
  EXPECT_EQ(first.size(), std::string("first record").size() + AeadKey::k_tag_size);
  EXPECT_EQ(first.find("first"), std::string::npos) << "encrypted";
  EXPECT_EQ(receiver.open("head1", first), "first record");
  EXPECT_EQ(receiver.open("head2", second), "second record");
}

TEST(Aead, RefusesChangedBytesAnotherKeyAndReplays)
{
  std::string key(32, 'k');
  AeadKey sender(key);
  auto sealed = sender.seal("head", "a record");
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    auto changed = sealed;
    changed[i] ^= 1;
    EXPECT_FALSE(AeadKey(key).open("head", changed)) << "byte " << i;
  }
  EXPECT_FALSE(AeadKey(key).open("other head", sealed)) << "the associated data is authenticated";
  EXPECT_FALSE(AeadKey(std::string(32, 'x')).open("head", sealed));
  AeadKey receiver(key);
  EXPECT_TRUE(receiver.open("head", sealed));
  EXPECT_FALSE(receiver.open("head", sealed)) << "the same record again: the nonce moved on";
  auto later = sender.seal("head", "a later record");
  AeadKey reordered(key);
  EXPECT_FALSE(reordered.open("head", later)) << "the second record first";
  EXPECT_FALSE(AeadKey(key).open("head", "short"));
}

} // namespace
} // namespace portmatrix
