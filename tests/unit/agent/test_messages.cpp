// The bodies that say what an agent's captures saw (hello, observed) carry
// what the captures lost: the counts survive the JSON, replies of agents that
// do not count still parse (as no loss), and a count that is not a
// non-negative integer is rejected, not guessed.
#include <gtest/gtest.h>

#include "agent/messages.hpp"

namespace portmatrix {
namespace {

TEST(ObservedReplyBody, CarriesWhatTheCapturesLost)
{
  ObservedReply reply;
  reply.capture = true;
  reply.departures = true;
  reply.capture_lost = 1234;
  reply.departures_lost = 5'000'000'000; // above 32 bits
  reply.answers = {{7, 3, 1}, {0, 0, 0}};
  auto parsed = parse_observed_reply(to_json(reply));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_TRUE(parsed->capture);
  EXPECT_TRUE(parsed->departures);
  EXPECT_EQ(parsed->capture_lost, 1234u);
  EXPECT_EQ(parsed->departures_lost, 5'000'000'000u);
  ASSERT_EQ(parsed->answers.size(), 2u);
  EXPECT_EQ(parsed->answers[0].packets, 7u);
  EXPECT_EQ(parsed->answers[0].ports_seen, 3u);
  EXPECT_EQ(parsed->answers[0].ports_listening, 1u);

  auto none = parse_observed_reply(to_json(ObservedReply{}));
  ASSERT_TRUE(none) << none.error();
  EXPECT_EQ(none->capture_lost, 0u);
  EXPECT_EQ(none->departures_lost, 0u);
}

TEST(ObservedReplyBody, WithoutLossCountsIsAnOlderAgentsReply)
{
  auto older = parse_observed_reply(R"({"capture": true, "departures": true, "answers": [
    {"packets": 2, "ports_seen": 1, "ports_listening": 0}]})");
  ASSERT_TRUE(older) << older.error();
  EXPECT_EQ(older->capture_lost, 0u);
  EXPECT_EQ(older->departures_lost, 0u);
  ASSERT_EQ(older->answers.size(), 1u);
}

TEST(ObservedReplyBody, RejectsLossCountsThatAreNotCounts)
{
  for (const char* bad : {R"({"capture": true, "capture_lost": -1, "answers": []})",
                          R"({"capture": true, "capture_lost": "12", "answers": []})",
                          R"({"capture": true, "capture_lost": 1.5, "answers": []})",
                          R"({"capture": true, "departures_lost": null, "answers": []})",
                          R"({"capture": true, "departures_lost": 18446744073709551615, "answers": []})"}) {
    auto parsed = parse_observed_reply(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_NE(parsed.error().find("_lost"), std::string::npos) << parsed.error();
  }
}

TEST(HelloReplyBody, CarriesTheLossesSoFarAndParsesWithoutThem)
{
  HelloReply reply{"w1", "0.1.0", true, "", 12, {}, 99};
  auto parsed = parse_hello_reply(to_json(reply));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->node, "w1");
  EXPECT_EQ(parsed->listeners, 12u);
  EXPECT_EQ(parsed->capture_lost, 99u);

  auto older = parse_hello_reply(
    R"({"node": "w1", "version": "0.1.0", "capture": true, "capture_error": "", "listeners": 3, "owners": []})");
  ASSERT_TRUE(older) << older.error();
  EXPECT_EQ(older->capture_lost, 0u);
  EXPECT_FALSE(parse_hello_reply(R"({"node": "w1", "version": "0.1.0", "capture": true, "capture_error": "",
    "listeners": 3, "owners": [], "capture_lost": -5})"));
}

} // namespace
} // namespace portmatrix
