// The token's HMAC-SHA256 against RFC 4231's known answers, copies of a
// token signing alike (they share one keyed context), and the pooled random
// nonces: never repeated, not even by a fork()ed child.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "crypto/hmac.hpp"
#include "../skip.hpp"

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

// A token file in a fresh directory, mode 600, owned by the test's user.
class TokenFile : public ::testing::Test
{
protected:
  void SetUp() override
  {
    char pattern[] = "/tmp/portmatrix-token-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    m_dir = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(m_dir); }

  std::string write(const std::string& name, const std::string& text)
  {
    auto path = m_dir + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0600);
    return path;
  }

  std::string m_dir;
};

TEST_F(TokenFile, AGoodTokenLoads)
{
  std::string error;
  EXPECT_TRUE(Token::load(write("token", random_hex(32) + "\n"), error)) << error;
}

TEST_F(TokenFile, ASymlinkIsRefused)
{
  auto target = write("token", random_hex(32) + "\n");
  auto link = m_dir + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  std::string error;
  EXPECT_FALSE(Token::load(link, error));
  EXPECT_NE(error.find("is a symlink"), std::string::npos) << error;
}

TEST_F(TokenFile, AFileOfAnotherUserIsRefused)
{
  auto path = write("token", random_hex(32) + "\n");
  auto other = ::geteuid() == 65534 ? 65533 : 65534;
  if (::chown(path.c_str(), uid_t(other), gid_t(-1)) != 0) {
    if (std::getenv("CI")) FAIL() << "chown needs root (CI runs the tests as root)";
    PORTMATRIX_SKIP() << "chown needs root";
  }
  std::string error;
  EXPECT_FALSE(Token::load(path, error));
  EXPECT_NE(error.find("not by the running user"), std::string::npos) << error;
}

TEST_F(TokenFile, ALowEntropyTokenIsRefusedWithTheCommandThatMakesAGoodOne)
{
  for (const auto* text : {"aaaaaaaaaaaaaaaa\n", "abababababababababababab\n", "0123012301230123"}) {
    std::string error;
    EXPECT_FALSE(Token::load(write("token", text), error)) << text;
    EXPECT_NE(error.find("distinct characters"), std::string::npos) << error;
    EXPECT_NE(error.find("openssl rand -hex 32"), std::string::npos) << error;
  }
}

} // namespace
} // namespace portmatrix
