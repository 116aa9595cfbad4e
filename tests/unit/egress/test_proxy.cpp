#include <gtest/gtest.h>

#include <map>

#include "egress/proxy.hpp"

namespace portmatrix {

TEST(ProxyUrl, ParsesHostPortAndCredentials)
{
  auto url = parse_proxy_url("http://alice:s%40cret@proxy.example:3128/");
  ASSERT_TRUE(url.has_value()) << url.error();
  EXPECT_EQ(url->host, "proxy.example");
  EXPECT_EQ(url->port, 3128);
  EXPECT_EQ(url->user, "alice");
  EXPECT_EQ(url->password, "s@cret");
  EXPECT_EQ(url->display(), "proxy.example:3128");
  EXPECT_EQ(url->authorization(), "Basic YWxpY2U6c0BjcmV0");
}

TEST(ProxyUrl, SchemeLessDefaultPortAndIpv6)
{
  auto bare = parse_proxy_url("10.0.0.1");
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->port, 80);
  EXPECT_EQ(bare->authorization(), "");
  auto v6 = parse_proxy_url("http://[fd00::1]:8080");
  ASSERT_TRUE(v6.has_value()) << v6.error();
  EXPECT_EQ(v6->host, "fd00::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(v6->display(), "[fd00::1]:8080");
}

TEST(ProxyUrl, RejectsWhatItCannotUse)
{
  for (auto bad : {"https://proxy:3128", "socks5://proxy:1080", "http://proxy:0", "http://proxy:99999", "http://proxy:",
                   "http://:3128", "http://proxy:3128/path", "http://[fd00::1:3128", "http://u:%zz@proxy:1",
                   "http://:pw@proxy:1", "http://proxy:12ab"}) {
    auto url = parse_proxy_url(bad);
    EXPECT_FALSE(url.has_value()) << bad;
    if (!url) {
      EXPECT_NE(url.error().find(bad), std::string::npos) << url.error();
    }
  }
}

TEST(Base64, PadsLikeRfc4648)
{
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foob"), "Zm9vYg==");
}

TEST(NoProxy, ExactSuffixAndStar)
{
  NoProxy list("localhost, .corp.example,registry.local:5000  10.0.0.1,*.internal");
  EXPECT_TRUE(list.matches("localhost"));
  EXPECT_TRUE(list.matches("corp.example"));
  EXPECT_TRUE(list.matches("mirror.corp.example"));
  EXPECT_TRUE(list.matches("MIRROR.Corp.Example."));
  EXPECT_FALSE(list.matches("notcorp.example"));
  EXPECT_TRUE(list.matches("registry.local"));
  EXPECT_TRUE(list.matches("10.0.0.1"));
  EXPECT_FALSE(list.matches("10.0.0.11"));
  EXPECT_TRUE(list.matches("a.internal"));
  EXPECT_FALSE(list.matches("registry-1.docker.io"));
  EXPECT_TRUE(NoProxy("*").matches("anything.example"));
  EXPECT_TRUE(NoProxy("").empty());
  EXPECT_FALSE(NoProxy("").matches("x"));
}

TEST(ProxySettings, CommandLineWinsThenLowerCaseThenUpperCase)
{
  std::map<std::string, std::string> env{{"HTTPS_PROXY", "http://upper:3128"},
                                         {"https_proxy", "http://lower:3128"},
                                         {"HTTP_PROXY", "http://plain:8080"},
                                         {"NO_PROXY", ".corp"}};
  auto getenv = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto from_env = proxy_settings("", "", getenv);
  ASSERT_TRUE(from_env.has_value()) << from_env.error();
  EXPECT_EQ(from_env->https->host, "lower");
  EXPECT_EQ(from_env->http->host, "plain");
  EXPECT_EQ(from_env->source, "https_proxy");
  EXPECT_TRUE(from_env->no_proxy.matches("a.corp"));

  auto from_cli = proxy_settings("http://cli:1", "*", getenv);
  ASSERT_TRUE(from_cli.has_value());
  EXPECT_EQ(from_cli->https->host, "cli");
  EXPECT_EQ(from_cli->http->host, "cli");
  EXPECT_TRUE(from_cli->no_proxy.matches("a.example"));

  env["https_proxy"] = "ftp://bad";
  auto bad = proxy_settings("", "", getenv);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().rfind("https_proxy: ", 0), 0u) << bad.error();

  auto none = proxy_settings("", "", [](const char*) -> const char* { return nullptr; });
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->https || none->http);
}

} // namespace portmatrix
