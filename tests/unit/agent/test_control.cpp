// The agent's control channel, in-process on loopback: authenticated requests
// are served; unauthenticated, replayed, oversized and malformed ones are
// rejected with an error and the agent keeps serving; a probe target outside
// the inventory is refused, so the agent cannot be used as a scanner.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/agent.hpp"
#include "agent/control_protocol.hpp"
#include "agent/messages.hpp"

namespace portmatrix {
namespace {

// Two nodes on loopback addresses; ports chosen at random below the ephemeral range so
// concurrent runs and real services do not collide.
class ControlChannel : public ::testing::Test
{
protected:
  void SetUp() override
  {
    std::mt19937 random(std::random_device{}());
    m_base = std::uint16_t(20000 + random() % 12000); // below the ephemeral range (32768+)
    m_dir = std::filesystem::temp_directory_path() / fmt::format("pm-control-{}-{}", ::getpid(), m_base);
    std::filesystem::create_directories(m_dir);
    std::ofstream(m_dir / "profile.yaml") << fmt::format(R"(name: control-test
ports:
  api: {{port: {}, protocol: tcp}}
  overlay: {{port: {}, protocol: udp}}
requirements:
  - {{from: worker, to: master, ports: [api, overlay]}}
  - {{from: master, to: worker, ports: [overlay]}}
)",
                                                         m_base, m_base + 1);
    auto inventory = parse_inventory(fmt::format(R"(profile: {}
agent: {{control_port: {}}}
nodes:
  - {{name: m1, address: 127.0.0.1, roles: [master]}}
  - {{name: w1, address: 127.0.0.2, roles: [worker]}}
)",
                                                 (m_dir / "profile.yaml").string(), m_base + 2),
                                     "inventory.yaml");
    ASSERT_TRUE(inventory.has_value()) << to_string(inventory.error().front());
    auto profile = load_profile(inventory->profile);
    ASSERT_TRUE(profile.has_value()) << to_string(profile.error().front());
    m_plan = std::make_unique<Plan>(make_plan(std::move(*profile), std::move(*inventory)));

    m_agent = std::make_unique<Agent>(m_loop, *m_plan, m_plan->inventory.nodes[0], m_token, m_log);
    std::string error;
    ASSERT_TRUE(m_agent->start(error)) << error;
    m_thread = std::thread([this] {
      while (!m_stop) m_loop.run_once(std::chrono::milliseconds(20));
    });
  }

  void TearDown() override
  {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
    m_agent.reset();
    std::error_code error;
    std::filesystem::remove_all(m_dir, error);
  }

  int connect_control()
  {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(std::uint16_t(m_base + 2));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    return fd;
  }

  // Sends raw bytes on a fresh connection and reads one response frame
  // (nullopt when the agent closed without one).
  std::optional<std::string> exchange(const std::string& bytes, int* keep_fd = nullptr)
  {
    int fd = keep_fd && *keep_fd >= 0 ? *keep_fd : connect_control();
    if (keep_fd) *keep_fd = fd;
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    FrameReader reader(k_max_response_bytes);
    char buffer[65536];
    std::optional<std::string> payload;
    while (!payload) {
      auto n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      reader.feed({buffer, std::size_t(n)});
      payload = reader.next();
    }
    if (!keep_fd) ::close(fd);
    return payload;
  }

  Expected<ControlResponse, std::string> call(const Token& token, const ControlRequest& request)
  {
    auto payload = exchange(encode_request(token, request));
    if (!payload) return unexpected(std::string("closed without a response"));
    return decode_response(m_token, *payload);
  }

  std::string error_of(const std::string& bytes)
  {
    auto payload = exchange(bytes);
    if (!payload) return "closed without a response";
    auto json = nlohmann::json::parse(*payload, nullptr, false);
    if (!json.is_object() || json.value("status", "") != "error") return "not an error: " + *payload;
    return nlohmann::json::parse(json["body"].get<std::string>())["error"].get<std::string>();
  }

  void expect_still_serving()
  {
    auto hello = call(m_token, make_request("hello", "{}"));
    ASSERT_TRUE(hello.has_value()) << hello.error();
    EXPECT_TRUE(hello->ok);
    auto reply = parse_hello_reply(hello->body);
    ASSERT_TRUE(reply.has_value()) << reply.error();
    EXPECT_EQ(reply->node, "m1");
  }

  Token m_token = *Token::from_text("control-test-token-0123456789");
  std::uint16_t m_base = 0;
  std::filesystem::path m_dir;
  std::unique_ptr<Plan> m_plan;
  EventLoop m_loop;
  std::ostringstream m_log;
  std::unique_ptr<Agent> m_agent;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};


TEST_F(ControlChannel, AnswersAnAuthenticatedHello)
{
  expect_still_serving();
}

TEST_F(ControlChannel, RejectsAWrongTokenAndKeepsServing)
{
  auto wrong = *Token::from_text("not-the-agents-token-000000");
  auto error = error_of(encode_request(wrong, make_request("hello", "{}")));
  EXPECT_NE(error.find("unauthenticated"), std::string::npos) << error;
  expect_still_serving();
}

TEST_F(ControlChannel, RejectsAReplayedRequest)
{
  auto frame = encode_request(m_token, make_request("hello", "{}"));
  auto first = exchange(frame);
  ASSERT_TRUE(first.has_value());
  EXPECT_NE(first->find("\"status\":\"ok\""), std::string::npos);
  EXPECT_NE(error_of(frame).find("replayed"), std::string::npos);
  expect_still_serving();
}

TEST_F(ControlChannel, RejectsStaleTimestamps)
{
  auto request = make_request("hello", "{}");
  request.timestamp_ms -= 10 * 60 * 1000;
  EXPECT_NE(error_of(encode_request(m_token, request)).find("replay window"), std::string::npos);
  expect_still_serving();
}

TEST_F(ControlChannel, RejectsOversizedAndMalformedFrames)
{
  std::string oversized("\xff\xff\xff\xff", 4);
  EXPECT_NE(error_of(oversized).find("larger than"), std::string::npos);
  std::string garbage = "{not json";
  std::string framed = std::string(1, '\0') + std::string(1, '\0') + std::string(1, '\0') + char(garbage.size()) + garbage;
  EXPECT_NE(error_of(framed).find("malformed"), std::string::npos);
  EXPECT_NE(error_of(encode_request(m_token, make_request("format-disk", "{}"))).find("unknown request type"),
            std::string::npos);
  EXPECT_NE(error_of(encode_request(m_token, make_request("probe", "[1,2]"))).find("not a JSON object"),
            std::string::npos);
  expect_still_serving();
}

TEST_F(ControlChannel, AnIdleClientDoesNotBlockOthers)
{
  int idle = connect_control();
  ::send(idle, "\0\0", 2, MSG_NOSIGNAL); // half a length prefix, then silence
  expect_still_serving();
  ::close(idle);
}

// Clients that never authenticate cannot hold the agent: with every slot
// taken by connections that trickle a byte now and then, a new client still
// gets its answer (it takes the oldest unauthenticated slot), and a trickling
// connection is closed k_control_auth_timeout after it came, bytes or not.
TEST_F(ControlChannel, TricklingUnauthenticatedClientsCannotHoldEverySlot)
{
  std::vector<int> trickling;
  for (std::size_t i = 0; i < k_max_control_connections; ++i) {
    int fd = connect_control();
    ::send(fd, "\0\0\x03\xe8{", 5, MSG_NOSIGNAL); // a frame of 1000 bytes, one of them sent
    trickling.push_back(fd);
  }
  expect_still_serving();
  int late = connect_control();
  auto started = std::chrono::steady_clock::now();
  ::send(late, "\0\0\x03\xe8", 4, MSG_NOSIGNAL); // a frame of 1000 bytes to come
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() - started < k_control_auth_timeout + std::chrono::seconds(3)) {
    ::send(late, "{", 1, MSG_NOSIGNAL); // a byte of it every 200 ms: never idle
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    char buffer[256];
    auto n = ::recv(late, buffer, sizeof buffer, MSG_DONTWAIT);
    closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    EXPECT_LE(n, 0) << "the agent answered a frame that never came";
  }
  auto lived = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(closed) << "a connection that never authenticated is still open";
  EXPECT_GE(lived, k_control_auth_timeout - std::chrono::milliseconds(300));
  for (int fd : trickling) ::close(fd);
  ::close(late);
  expect_still_serving();
}

// With every slot taken by connections that have not authenticated, a new
// connection takes the slot of the oldest of them: that one is closed, the
// others stay open.
TEST_F(ControlChannel, AFullTableEvictsTheOldestUnauthenticatedConnection)
{
  std::vector<int> waiting;
  for (std::size_t i = 0; i < k_max_control_connections; ++i) {
    int fd = connect_control();
    ::send(fd, "\0\0\x03\xe8{", 5, MSG_NOSIGNAL); // a frame of 1000 bytes, one of them sent
    waiting.push_back(fd);
  }
  expect_still_serving(); // the newcomer
  pollfd oldest{waiting.front(), POLLIN, 0};
  ASSERT_EQ(::poll(&oldest, 1, 10000), 1) << "the oldest connection was not closed";
  char byte;
  auto n = ::recv(waiting.front(), &byte, 1, MSG_DONTWAIT);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << "the oldest connection got " << n << " bytes";
  std::size_t open = 0;
  for (std::size_t i = 1; i < waiting.size(); ++i) {
    open += ::recv(waiting[i], &byte, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
  }
  EXPECT_EQ(open, waiting.size() - 1) << "a newer connection was closed instead of (or besides) the oldest";
  for (int fd : waiting) ::close(fd);
}

TEST_F(ControlChannel, RefusesTargetsOutsideTheInventory)
{
  ProbeRequest scan;
  scan.targets.push_back({Protocol::tcp, "127.0.0.9", {1, 1024}, 1});
  auto error = error_of(encode_request(m_token, make_request("probe", to_json(scan))));
  EXPECT_NE(error.find("is not a flow from m1"), std::string::npos) << error;
  // A real flow's address but a port the flow does not have is refused too.
  ProbeRequest wrong_port;
  wrong_port.targets.push_back({Protocol::udp, "127.0.0.2", {22, 22}, 1});
  EXPECT_NE(error_of(encode_request(m_token, make_request("probe", to_json(wrong_port)))).find("not a flow"),
            std::string::npos);
  expect_still_serving();
}

TEST_F(ControlChannel, ProbesAFlowOfItsNode)
{
  ProbeRequest request;
  request.timeout = std::chrono::milliseconds(500);
  request.targets.push_back({Protocol::udp, "127.0.0.2", {std::uint16_t(m_base + 1), std::uint16_t(m_base + 1)}, 1});
  auto response = call(m_token, make_request("probe", to_json(request)));
  ASSERT_TRUE(response.has_value()) << response.error();
  ASSERT_TRUE(response->ok) << response->body;
  auto reply = parse_probe_reply(response->body);
  ASSERT_TRUE(reply.has_value()) << reply.error();
  ASSERT_EQ(reply->targets.size(), 1u);
  ASSERT_EQ(reply->targets[0].size(), 1u);
  // Nothing runs on w1: the datagram is refused (ICMP port unreachable on loopback).
  EXPECT_EQ(reply->targets[0][0].state, ProbeState::refused);
}

} // namespace
} // namespace portmatrix

namespace portmatrix {
namespace {

TEST(ProbeRequestBody, CarriesRetriesAndDefaultsToOneWithoutThem)
{
  ProbeRequest request;
  request.retries = 0;
  request.targets.push_back({Protocol::udp, "10.0.0.2", {30000, 32767}, 1});
  auto parsed = parse_probe_request(to_json(request));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->retries, 0);
  auto older = parse_probe_request(R"({"timeout_ms": 1000, "targets": []})");
  ASSERT_TRUE(older) << older.error();
  EXPECT_EQ(older->retries, 1) << "a request without the field: one retry";
  EXPECT_FALSE(parsed->continues) << "a new check's probing, unless it says otherwise";
  EXPECT_FALSE(older->continues);
  auto too_many = parse_probe_request(R"({"timeout_ms": 1000, "retries": 9, "targets": []})");
  ASSERT_FALSE(too_many);
  EXPECT_NE(too_many.error().find("retries"), std::string::npos) << too_many.error();
}

TEST(ProbeRequestBody, CarriesABudgetAndHasNoneWithoutIt)
{
  ProbeRequest request;
  request.budget = std::chrono::milliseconds(4321);
  auto parsed = parse_probe_request(to_json(request));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->budget, std::chrono::milliseconds(4321));
  auto older = parse_probe_request(R"({"timeout_ms": 1000, "targets": []})");
  ASSERT_TRUE(older) << older.error();
  EXPECT_EQ(older->budget, std::chrono::milliseconds(0)) << "a request without the field: no limit";
  for (const char* bad : {R"({"timeout_ms": 1000, "budget_ms": -5, "targets": []})",
                          R"({"timeout_ms": 1000, "budget_ms": "4s", "targets": []})"}) {
    auto rejected = parse_probe_request(bad);
    ASSERT_FALSE(rejected) << bad;
    EXPECT_NE(rejected.error().find("budget_ms"), std::string::npos) << rejected.error();
  }
}

TEST(ProbeReplyBody, CarriesPortsLeftUnprobed)
{
  ProbeReply reply;
  reply.targets.push_back({Segment{{30000, 30999}, ProbeState::open, 0, "w1", true, {}},
                           Segment{{31000, 32767}, ProbeState::unprobed, 0, "", false, {}}});
  auto parsed = parse_probe_reply(to_json(reply));
  ASSERT_TRUE(parsed) << parsed.error();
  ASSERT_EQ(parsed->targets.size(), 1u);
  ASSERT_EQ(parsed->targets[0].size(), 2u);
  EXPECT_EQ(parsed->targets[0][0].state, ProbeState::open);
  EXPECT_EQ(parsed->targets[0][1].state, ProbeState::unprobed);
  EXPECT_EQ(parsed->targets[0][1].range.min, 31000);
}

TEST(ProbeRequestBody, CarriesTheConntrackCeilingOrTheDefault)
{
  ProbeRequest request;
  EXPECT_EQ(to_json(request).find("conntrack_ceiling"), std::string::npos) << "the default is not sent";
  request.conntrack_ceiling = 50;
  auto parsed = parse_probe_request(to_json(request));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->conntrack_ceiling, 50);
  auto older = parse_probe_request(R"({"timeout_ms": 1000, "targets": []})");
  ASSERT_TRUE(older) << older.error();
  EXPECT_EQ(older->conntrack_ceiling, k_default_conntrack_ceiling);
  for (const char* bad : {R"({"timeout_ms": 1000, "conntrack_ceiling": 0, "targets": []})",
                          R"({"timeout_ms": 1000, "conntrack_ceiling": 101, "targets": []})",
                          R"({"timeout_ms": 1000, "conntrack_ceiling": "75", "targets": []})"}) {
    auto rejected = parse_probe_request(bad);
    ASSERT_FALSE(rejected) << bad;
    EXPECT_NE(rejected.error().find("conntrack_ceiling"), std::string::npos) << rejected.error();
  }
}

TEST(ProbeReplyBody, SaysHowLongTheConntrackTableHeldTheProbesBack)
{
  ProbeReply reply;
  reply.targets.push_back({Segment{{8472, 8472}, ProbeState::open, 0, "w1", true, {}}});
  EXPECT_EQ(to_json(reply).find("held_ms"), std::string::npos) << "nothing held: nothing said";
  reply.held = {std::chrono::milliseconds(2500), {98304, 131072}};
  auto parsed = parse_probe_reply(to_json(reply));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->held.time, std::chrono::milliseconds(2500));
  EXPECT_EQ(parsed->held.fullest.count, 98304u);
  EXPECT_EQ(parsed->held.fullest.max, 131072u);
  auto older = parse_probe_reply(R"({"targets": []})");
  ASSERT_TRUE(older) << older.error();
  EXPECT_EQ(older->held.time, std::chrono::milliseconds(0));
  EXPECT_FALSE(parse_probe_reply(R"({"targets": [], "held_ms": -1})"));
}

TEST(ProbeRequestBody, SaysWhenItContinuesTheChecksProbing)
{
  ProbeRequest request;
  request.continues = true;
  auto parsed = parse_probe_request(to_json(request));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_TRUE(parsed->continues);
  auto bad = parse_probe_request(R"({"timeout_ms": 1000, "continues": 1, "targets": []})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("continues"), std::string::npos) << bad.error();
}

} // namespace
} // namespace portmatrix
