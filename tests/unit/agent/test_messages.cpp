// The bodies that say what an agent's captures saw (hello, observed) carry
// what the captures lost and where they stood at hello: the counts survive
// the JSON, bodies of agents that do not send them still parse (as no loss,
// no mark), and a count that is not a non-negative integer is rejected, not
// guessed.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "agent/control_protocol.hpp"
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
  reply.answers = {{7, 3, 1, 2}, {0, 0, 0, 0}};
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
  EXPECT_EQ(parsed->answers[0].ports_answered, 2u);

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
  EXPECT_EQ(older->answers[0].ports_answered, 0u) << "no word on answers: nothing vouched for";
  EXPECT_FALSE(parse_observed_reply(R"({"capture": true, "answers": [
    {"packets": 2, "ports_seen": 1, "ports_listening": 0, "ports_answered": -1}]})"));
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

TEST(HelloReplyBody, CarriesTheLossesAndMarkSoFarAndParsesWithoutThem)
{
  HelloReply reply{"w1", "0.1.0", "0123456789abcdef0123456789abcdef", true, "", 12, {}, 99, 123456789012, 4242, 7};
  auto parsed = parse_hello_reply(to_json(reply));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->node, "w1");
  EXPECT_EQ(parsed->window, 7u);
  EXPECT_EQ(parsed->listeners, 12u);
  EXPECT_EQ(parsed->capture_lost, 99u);
  EXPECT_EQ(parsed->capture_mark, 123456789012u);
  EXPECT_EQ(parsed->answered_mark, 4242u);

  auto older = parse_hello_reply(
    R"({"node": "w1", "version": "0.1.0", "instance": "ab", "capture": true, "capture_error": "", "listeners": 3, "owners": []})");
  ASSERT_TRUE(older) << older.error();
  EXPECT_EQ(older->capture_lost, 0u);
  EXPECT_EQ(older->capture_mark, 0u);
  EXPECT_EQ(older->answered_mark, 0u);
  EXPECT_FALSE(parse_hello_reply(R"({"node": "w1", "version": "0.1.0", "instance": "ab", "capture": true, "capture_error": "",
    "listeners": 3, "owners": [], "capture_lost": -5})"));
}

// A VIP's connections that were accepted and never answered (issue 20):
// "silent" survives the JSON, is left out when 0 (and read as 0 when
// absent: an older agent's reply), and splits segments that differ in it.
TEST(ProbeReplyBody, CarriesTheSilentConnectionsOfAVip)
{
  TargetOutcome outcome{ProbeTarget{Protocol::tcp, "10.0.0.1", PortRange{30080, 30082}, 9}, {}};
  for (std::uint16_t port = 30080; port <= 30082; ++port) {
    PortOutcome one;
    one.port = port;
    one.state = ProbeState::open;
    one.responders = {"worker2", "worker3"};
    one.silent = port == 30082 ? 0 : 3;
    outcome.ports.push_back(one);
  }
  ProbeReply reply;
  reply.targets.push_back(compress(outcome));
  ASSERT_EQ(reply.targets[0].size(), 2u);
  EXPECT_EQ(reply.targets[0][0].range.max, 30081);
  auto text = to_json(reply);
  auto parsed = parse_probe_reply(text);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->targets[0][0].silent, 3u);
  EXPECT_EQ(parsed->targets[0][1].silent, 0u);
  EXPECT_EQ(text.find("\"silent\":0"), std::string::npos);
}

// A target to a node whose agent did not answer hello says so; absent,
// the default is an agent's node. Anything but a boolean is refused.
TEST(ProbeBodies, CarryWhetherTheDestinationsAgentAnswered)
{
  ProbeRequest request;
  request.targets.push_back({Protocol::tcp, "10.0.0.2", {30000, 32767}, 1});
  request.targets.back().identity = false;
  request.targets.push_back({Protocol::tcp, "10.0.0.3", {30000, 32767}, 1});
  auto text = to_json(request);
  EXPECT_EQ(text.find("\"identity\":true"), std::string::npos) << text;
  auto parsed = parse_probe_request(text);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_FALSE(parsed->targets[0].identity);
  EXPECT_TRUE(parsed->targets[1].identity);
  EXPECT_FALSE(parse_probe_request(R"({"timeout_ms": 100, "targets": [{"protocol": "tcp", "address": "10.0.0.2",
    "port_min": 1, "port_max": 1, "repeat": 1, "identity": "no"}]})"));
}

// Issue 21: a target in an overlay's shape and at full size, the agent's
// interface MTU, the round trips per target; all optional on the wire.
TEST(ProbeBodies, CarryTheOverlaysShapeSizeMtuAndRoundTrips)
{
  ProbeRequest request;
  request.targets.push_back({Protocol::udp, "10.0.0.2", {8472, 8472}, 1, Encapsulation::vxlan, 4096, 1500});
  request.targets.push_back({Protocol::udp, "10.0.0.2", {8472, 8472}, 1});
  auto parsed = parse_probe_request(to_json(request));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->targets[0].encapsulation, Encapsulation::vxlan);
  EXPECT_EQ(parsed->targets[0].vni, 4096u);
  EXPECT_EQ(parsed->targets[0].size, 1500);
  EXPECT_EQ(parsed->targets[1].encapsulation, Encapsulation::none);
  EXPECT_EQ(parsed->targets[1].size, 0);
  EXPECT_EQ(to_json(ProbeRequest{}).find("encapsulation"), std::string::npos);
  EXPECT_FALSE(parse_probe_request(R"({"timeout_ms": 100, "targets": [{"protocol": "udp", "address": "10.0.0.2",
    "port_min": 1, "port_max": 1, "repeat": 1, "encapsulation": "gre", "vni": 1}]})"));

  ProbeReply reply;
  reply.targets = {{}, {}};
  reply.rtts = {{120, 95}, {}};
  auto back = parse_probe_reply(to_json(reply));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->rtts, reply.rtts);
  EXPECT_TRUE(parse_probe_reply(R"({"targets": []})")->rtts.empty());
  EXPECT_FALSE(parse_probe_reply(R"({"targets": [[]], "rtt_us": [[-1]]})"));

  HelloReply hello{"w1", "0.1.0", "ab", true, "", 3, {}, 0, 0, 0, 7, 1450};
  EXPECT_EQ(parse_hello_reply(to_json(hello))->mtu, 1450u);
  hello.mtu = 0;
  EXPECT_EQ(to_json(hello).find("mtu"), std::string::npos);
}

TEST(ObservedQueries, AskWhatArrivedSinceAMark)
{
  std::vector<ObservedQuery> queries{{Protocol::udp, "10.0.0.2", {8472, 8472}, false, 77, 31},
                                     {Protocol::tcp, "10.0.0.3", {30000, 32767}, true, 0}};
  auto parsed = parse_observed_queries(to_json(queries));
  ASSERT_TRUE(parsed) << parsed.error();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].peer, "10.0.0.2");
  EXPECT_FALSE((*parsed)[0].departed);
  EXPECT_EQ((*parsed)[0].since, 77u);
  EXPECT_EQ((*parsed)[0].answered_since, 31u);
  EXPECT_TRUE((*parsed)[1].departed);
  EXPECT_EQ((*parsed)[1].since, 0u);
  EXPECT_EQ((*parsed)[1].range.max, 32767);

  auto older = parse_observed_queries(
    R"({"queries": [{"protocol": "udp", "source": "10.0.0.2", "port_min": 1, "port_max": 2}]})");
  ASSERT_TRUE(older) << older.error();
  EXPECT_EQ((*older)[0].since, 0u) << "everything, as before";
  EXPECT_EQ((*older)[0].answered_since, 0u);
  EXPECT_FALSE(parse_observed_queries(
    R"({"queries": [{"protocol": "udp", "source": "10.0.0.2", "port_min": 1, "port_max": 2, "since": -1}]})"));
}

// IP-in-IP travels as protocol "ipip" with ports 0-0 (it has none): in a
// probe request, its reply's segments and an observed query; a port other
// than 0 for it, port 0 for TCP or UDP, and vrrp or esp (no probe) are refused.
TEST(ProbeRequestBody, CarriesIpInIpWithPortZeroOnly)
{
  ProbeRequest request;
  request.targets.push_back({Protocol::ipip, "10.0.0.2", {0, 0}, 1});
  auto parsed = parse_probe_request(to_json(request));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->targets[0].protocol, Protocol::ipip);
  EXPECT_EQ(parsed->targets[0].range, (PortRange{0, 0}));

  PortOutcome answered;
  answered.state = ProbeState::open;
  answered.responder = Identity{"worker2", 0, true};
  TargetOutcome outcome{request.targets[0], {answered}};
  ProbeReply reply;
  reply.targets.push_back(compress(outcome));
  auto reply_parsed = parse_probe_reply(to_json(reply));
  ASSERT_TRUE(reply_parsed) << reply_parsed.error();
  EXPECT_EQ(reply_parsed->targets[0][0].range, (PortRange{0, 0}));
  EXPECT_EQ(reply_parsed->targets[0][0].responder, "worker2");

  auto queries = parse_observed_queries(to_json(std::vector<ObservedQuery>{{Protocol::ipip, "10.0.0.1", {0, 0}}}));
  ASSERT_TRUE(queries) << queries.error();
  EXPECT_EQ((*queries)[0].protocol, Protocol::ipip);

  auto body = [](const char* protocol, int port) {
    return fmt::format(R"({{"timeout_ms": 1000, "targets": [{{"protocol": "{}", "address": "10.0.0.2",
                           "port_min": {}, "port_max": {}, "repeat": 1}}]}})",
                       protocol, port, port);
  };
  EXPECT_TRUE(parse_probe_request(body("ipip", 0)));
  EXPECT_FALSE(parse_probe_request(body("ipip", 4)));
  EXPECT_FALSE(parse_probe_request(body("udp", 0)));
  EXPECT_FALSE(parse_probe_request(body("tcp", 0)));
  EXPECT_FALSE(parse_probe_request(body("esp", 0)));
  EXPECT_FALSE(parse_probe_request(body("vrrp", 0)));
}

} // namespace
} // namespace portmatrix

namespace portmatrix {
namespace {

// hello carries the check's deadline (optional: none means the longest);
// later requests carry the window it opened, in the envelope, only when nonzero.
TEST(HelloRequestBody, CarriesTheChecksDeadline)
{
  auto parsed = parse_hello_request(to_json(HelloRequest{std::chrono::milliseconds(30000)}));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->deadline, std::chrono::milliseconds(30000));
  auto none = parse_hello_request("{}");
  ASSERT_TRUE(none) << none.error();
  EXPECT_EQ(none->deadline, std::chrono::milliseconds(0));
  EXPECT_EQ(to_json(HelloRequest{}), "{}");
  for (const char* bad : {R"({"deadline_ms": -1})", R"({"deadline_ms": 86400000})", R"({"deadline_ms": "1s"})"}) {
    auto rejected = parse_hello_request(bad);
    ASSERT_FALSE(rejected) << bad;
    EXPECT_NE(rejected.error().find("deadline_ms"), std::string::npos) << rejected.error();
  }
}

TEST(ControlRequestEnvelope, CarriesTheWindowWhenThereIsOne)
{
  auto request = make_request("probe", "{}", "w1", "ab", 42);
  auto text = encode_request(request);
  auto decoded = decode_request(text);
  ASSERT_TRUE(decoded) << decoded.error();
  EXPECT_EQ(decoded->window, 42u);
  auto hello = encode_request(make_request("hello", "{}", "w1"));
  EXPECT_EQ(hello.find("window"), std::string::npos) << hello;
  auto without = decode_request(hello);
  ASSERT_TRUE(without) << without.error();
  EXPECT_EQ(without->window, 0u);
  auto negative = text;
  negative.replace(negative.find("\"window\":42"), 11, "\"window\":-4");
  EXPECT_FALSE(decode_request(negative)) << negative;
}

} // namespace
} // namespace portmatrix
