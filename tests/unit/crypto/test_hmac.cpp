// The token's HMAC-SHA256 against RFC 4231's known answers, copies of a
// token signing alike (they share one keyed context), and the pooled random
// nonces: never repeated, not even by a fork()ed child.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

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

TEST(RandomHex, NoncesAreHexOfTheAskedLengthAndNeverRepeat)
{
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) { // several 4 KiB blocks of the pool
    auto nonce = random_hex(16);
    ASSERT_EQ(nonce.size(), 32u);
    ASSERT_EQ(nonce.find_first_not_of("0123456789abcdef"), std::string::npos) << nonce;
    ASSERT_TRUE(seen.insert(nonce).second) << "repeated: " << nonce;
  }
  EXPECT_EQ(random_hex(5000).size(), 10000u) << "larger than the pool: drawn directly";
}

TEST(RandomHex, AForkedChildNeverDrawsItsParentsNextBytes)
{
  random_hex(16); // the parent's pool now holds a block with bytes left
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  auto child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto nonce = random_hex(16);
    auto written = ::write(pipe_fds[1], nonce.data(), nonce.size());
    ::_exit(written == ssize_t(nonce.size()) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  auto parent_nonce = random_hex(16);
  char buffer[64] = {};
  auto length = ::read(pipe_fds[0], buffer, sizeof buffer);
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(length, 32);
  EXPECT_NE(std::string(buffer, std::size_t(length)), parent_nonce);
}

} // namespace
} // namespace portmatrix
