// The token's HMAC-SHA256 against RFC 4231's known answers, and copies of a
// token signing alike (they share one keyed context).
#include <gtest/gtest.h>

#include "crypto/hmac.hpp"

namespace portmatrix {
namespace {

TEST(TokenHmac, MatchesRfc4231TestCase1)
{
  auto token = Token::from_text(std::string(20, '\x0b'));
  ASSERT_TRUE(token);
  EXPECT_EQ(token->sign("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(TokenHmac, MatchesRfc4231TestCase6WithAKeyLongerThanABlock)
{
  auto token = Token::from_text(std::string(131, '\xaa'));
  ASSERT_TRUE(token);
  EXPECT_EQ(token->sign("Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(TokenHmac, EverySignatureStandsAloneAndCopiesAgree)
{
  auto token = Token::from_text("a-shared-secret-of-the-cluster");
  ASSERT_TRUE(token);
  auto first = token->sign("nonce node tcp 6443");
  auto copy = *token;
  EXPECT_EQ(token->sign("other data"), copy.sign("other data"));
  EXPECT_EQ(copy.sign("nonce node tcp 6443"), first) << "no state carried from one signature to the next";
  EXPECT_TRUE(copy.verify("nonce node tcp 6443", first));
  EXPECT_FALSE(copy.verify("nonce node tcp 6444", first));
  EXPECT_NE(Token::from_text("another-secret-of-16+")->sign("nonce node tcp 6443"), first);
}

} // namespace
} // namespace portmatrix
