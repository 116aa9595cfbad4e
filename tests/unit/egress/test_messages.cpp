// The agent's egress request and reply survive the control channel's JSON,
// and a reply with an unknown verdict is rejected, not guessed.
#include <gtest/gtest.h>

#include "agent/messages.hpp"

namespace portmatrix {

TEST(EgressMessages, RequestAndReplyRoundTrip)
{
  EgressRequest request{std::chrono::milliseconds(1500), std::chrono::milliseconds(8000)};
  auto parsed = parse_egress_request(to_json(request));
  ASSERT_TRUE(parsed.has_value()) << parsed.error();
  EXPECT_EQ(parsed->timeout.count(), 1500);
  EXPECT_EQ(parsed->deadline.count(), 8000);

  EgressReply reply;
  EgressResult result;
  result.target = {"archive.ubuntu.com", {80, EgressScheme::http}, "archive.ubuntu.com", "Ubuntu packages"};
  result.verdict = EgressVerdict::tls_name_mismatch;
  result.detail = "subject /CN=x";
  result.addresses = {"192.0.2.1", "2001:db8::1"};
  result.proxy = "proxy:3128";
  result.elapsed = std::chrono::milliseconds(42);
  reply.results = {result};
  auto back = parse_egress_reply(to_json(reply));
  ASSERT_TRUE(back.has_value()) << back.error();
  ASSERT_EQ(back->results.size(), 1u);
  const auto& r = back->results[0];
  EXPECT_EQ(r.target.host, "archive.ubuntu.com");
  EXPECT_EQ(r.target.port, (EgressPort{80, EgressScheme::http}));
  EXPECT_EQ(r.verdict, EgressVerdict::tls_name_mismatch);
  EXPECT_EQ(r.addresses, result.addresses);
  EXPECT_EQ(r.proxy, "proxy:3128");
  EXPECT_EQ(r.elapsed.count(), 42);
}

TEST(EgressMessages, RejectsWhatItCannotTrust)
{
  EXPECT_FALSE(parse_egress_request(R"({"timeout_ms": 5, "deadline_ms": 1000})").has_value());
  EXPECT_FALSE(parse_egress_request(R"({"timeout_ms": 500})").has_value());
  // The proxy is the agent's to choose (finding 3: a named proxy made the
  // agent connect anywhere, its own loopback services included).
  auto named = parse_egress_request(R"({"timeout_ms": 500, "deadline_ms": 1000, "proxy": "http://127.0.0.1:8080"})");
  ASSERT_FALSE(named.has_value());
  EXPECT_NE(named.error().find("cannot name a proxy"), std::string::npos) << named.error();
  EXPECT_FALSE(parse_egress_request(R"({"timeout_ms": 500, "deadline_ms": 1000, "no_proxy": "*"})").has_value());
  auto unknown = parse_egress_reply(R"({"error": "", "results": [{"host": "h", "port": 443, "scheme": "https",
    "entry": "h", "purpose": "", "verdict": "maybe", "detail": "", "addresses": [], "proxy": "", "elapsed_ms": 1}]})");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().find("unknown egress verdict"), std::string::npos) << unknown.error();
  for (auto verdict : {"ok", "dns-failure", "refused", "timeout", "tls-untrusted", "tls-name-mismatch", "proxy-denied",
                       "proxy-unreachable"}) {
    auto parsed = parse_egress_verdict(verdict);
    ASSERT_TRUE(parsed.has_value()) << verdict;
    EXPECT_EQ(to_string(*parsed), verdict);
  }
}

} // namespace portmatrix
