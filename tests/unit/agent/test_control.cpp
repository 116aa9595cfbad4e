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

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/agent.hpp"
#include "agent/control_channel.hpp"
#include "agent/control_protocol.hpp"
#include "agent/messages.hpp"

namespace portmatrix {
namespace {

// Two nodes on loopback addresses; ports chosen at random below the ephemeral range so
// concurrent runs and real services do not collide.
class ControlServer : public ::testing::Test
{
protected:
  // The agent binds eleven ports from a random base; another test (or a
  // TIME_WAIT of one) may hold one of them, so a failed start tries another
  // base, a few times, before it fails the test.
  void SetUp() override
  {
    std::mt19937 random(std::random_device{}());
    std::string error;
    for (int attempt = 0; attempt < 8; ++attempt) {
      m_base = std::uint16_t(20000 + random() % 12000); // below the ephemeral range (32768+)
      error.clear();
      if (start_agent(error)) break;
      if (HasFailure()) return;
      m_agent.reset();
      m_log.str("");
      std::error_code ignored;
      std::filesystem::remove_all(m_dir, ignored);
    }
    ASSERT_TRUE(m_agent != nullptr) << error;
    m_thread = std::thread([this] {
      while (!m_stop) m_loop.run_once(std::chrono::milliseconds(20));
    });
  }

  bool start_agent(std::string& error)
  {
    m_dir = std::filesystem::temp_directory_path() / fmt::format("pm-control-{}-{}", ::getpid(), m_base);
    std::filesystem::create_directories(m_dir);
    std::ofstream(m_dir / "profile.yaml") << fmt::format(R"(name: control-test
ports:
  api: {{port: {}, protocol: tcp}}
  overlay: {{port: {}, protocol: udp}}
  spread: {{port: {}-{}, protocol: tcp}}
requirements:
  - {{from: worker, to: master, ports: [api, overlay]}}
  - {{from: master, to: worker, ports: [overlay, spread]}}
)",
                                                         m_base, m_base + 1, m_base + 3, m_base + 10);
    auto inventory = parse_inventory(fmt::format(R"(profile: {}
agent: {{control_port: {}}}
nodes:
  - {{name: m1, address: 127.0.0.1, roles: [master]}}
  - {{name: w1, address: 127.0.0.2, roles: [worker]}}
)",
                                                 (m_dir / "profile.yaml").string(), m_base + 2),
                                     "inventory.yaml");
    EXPECT_TRUE(inventory.has_value()) << to_string(inventory.error().front());
    if (!inventory) return false;
    auto profile = load_profile(inventory->profile);
    EXPECT_TRUE(profile.has_value()) << to_string(profile.error().front());
    if (!profile) return false;
    m_plan = std::make_unique<Plan>(make_plan(std::move(*profile), std::move(*inventory)));

    m_agent = std::make_unique<Agent>(m_loop, *m_plan, m_plan->inventory.nodes[0], m_token, m_log);
    return m_agent->start(error);
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

  // One connection's client side, blocking (5 s receive timeout): the TLS
  // handshake with `node`'s PSK on construction, then whole messages.
  struct Session
  {
    Session(int fd, const Token& token, std::string_view node = "m1")
      : fd(fd), channel(token, ChannelSide::client, node, k_max_response_bytes)
    {
      send_raw(channel.take_output()); // the ClientHello
      char buffer[16384];
      while (!channel.keyed()) {
        auto n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        channel.feed({buffer, std::size_t(n)});
        auto early = channel.next(); // the handshake only: nothing else comes before our request
        send_raw(channel.take_output());
        if (!early) break;
      }
    }
    ~Session() { ::close(fd); }

    void send_raw(std::string_view bytes)
    {
      sent += bytes;
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    }
    void send_message(std::string_view message)
    {
      channel.send(message);
      send_raw(channel.take_output());
    }

    // The next message, the channel's error, or "closed" when the agent closed without either.
    Expected<std::string, std::string> receive()
    {
      char buffer[65536];
      for (;;) {
        auto message = channel.next();
        send_raw(channel.take_output());
        if (!message) return unexpected(message.error().message);
        if (*message) return std::move(**message);
        auto n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) return unexpected(std::string("closed"));
        channel.feed({buffer, std::size_t(n)});
      }
    }

    int fd;
    ControlChannel channel;
    std::string sent; // every byte this client sent, its handshake included
  };

  // How many control requests the agent rejected so far, by its log.
  std::size_t rejections()
  {
    auto log = m_log.str();
    std::size_t count = 0;
    for (auto at = log.find("rejected a control request"); at != std::string::npos;
         at = log.find("rejected a control request", at + 1)) {
      ++count;
    }
    return count;
  }

  // The agent's last log line about a rejected request ("none" when there is none).
  std::string last_rejection()
  {
    auto log = m_log.str();
    auto at = log.rfind("rejected a control request");
    return at == std::string::npos ? "none" : log.substr(at, log.find('\n', at) - at);
  }

  // A non-blocking UDP socket on w1's side of m1's flow (127.0.0.2, the
  // overlay port): it takes the probes and never answers. -1 when it cannot bind.
  int bind_flow_port()
  {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(std::uint16_t(m_base + 1));
    ::inet_pton(AF_INET, "127.0.0.2", &address.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // A request for m1, for its present run and the window of the last hello.
  ControlRequest request(std::string type, std::string body)
  {
    return make_request(std::move(type), std::move(body), "m1", m_instance, m_window);
  }

  // Sends `request` on a fresh connection keyed with `token`; the response,
  // or what the agent said instead (its alert, or "closed").
  Expected<ControlResponse, std::string> call(const Token& token, const ControlRequest& request)
  {
    Session session(connect_control(), token);
    session.send_message(encode_request(request));
    auto message = session.receive();
    if (!message) return unexpected(message.error());
    return decode_response(*message);
  }

  // The error the agent gives for `request` (an error response's text, or its alert).
  std::string error_of(const ControlRequest& request, const Token* token = nullptr)
  {
    auto response = call(token ? *token : m_token, request);
    if (!response) return response.error();
    if (response->ok) return "not an error: " + response->body;
    return nlohmann::json::parse(response->body)["error"].get<std::string>();
  }

  // Raw bytes sent instead of a handshake: what the agent logged when it
  // closed the connection (a TLS alert carries no text).
  std::string error_of_raw(std::string_view bytes)
  {
    auto before = rejections();
    int fd = connect_control();
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    char buffer[4096];
    while (::recv(fd, buffer, sizeof buffer, 0) > 0) {
    }
    ::close(fd);
    return rejections() > before ? last_rejection() : "not rejected";
  }

  // A hello (a check of `deadline`; 0: none given); m1's instance and the
  // check's window are kept for request().
  HelloReply expect_still_serving(std::chrono::milliseconds deadline = std::chrono::milliseconds(0))
  {
    auto hello = call(m_token, make_request("hello", to_json(HelloRequest{deadline}), "m1"));
    EXPECT_TRUE(hello.has_value()) << hello.error();
    if (!hello) return {};
    EXPECT_TRUE(hello->ok);
    auto reply = parse_hello_reply(hello->body);
    EXPECT_TRUE(reply.has_value()) << reply.error();
    if (!reply) return {};
    EXPECT_EQ(reply->node, "m1");
    EXPECT_NE(reply->window, 0u);
    m_instance = reply->instance;
    m_window = reply->window;
    return *reply;
  }

  Token m_token = *Token::from_text("control-test-token-0123456789");
  std::string m_instance; // m1's, from its last hello
  std::uint64_t m_window = 0; // the window its last hello opened
  std::uint16_t m_base = 0;
  std::filesystem::path m_dir;
  std::unique_ptr<Plan> m_plan;
  EventLoop m_loop;
  std::ostringstream m_log;
  std::unique_ptr<Agent> m_agent;
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};


TEST_F(ControlServer, AnswersAnAuthenticatedHello)
{
  auto hello = expect_still_serving();
  EXPECT_EQ(hello.instance.size(), 32u) << "a random nonce per run of the agent";
}

TEST_F(ControlServer, RejectsAWrongTokenAndKeepsServing)
{
  auto wrong = *Token::from_text("not-the-agents-token-000000");
  auto error = error_of(make_request("hello", "{}", "m1"), &wrong);
  EXPECT_NE(error.find("wrong token?"), std::string::npos) << error;
  EXPECT_NE(m_log.str().find("rejected a control request: unauthenticated"), std::string::npos) << m_log.str();
  expect_still_serving();
}

// Bytes that do not authenticate never reach the JSON parser: with another
// token the handshake fails (the PSK binder), so text that is no JSON at all
// is never read; one bit changed in an encrypted record fails its tag and
// the connection ends there. The same text from the token's holder is
// parsed (and is malformed).
TEST_F(ControlServer, ABadMacNeverReachesTheParser)
{
  auto wrong = *Token::from_text("not-the-agents-token-000000");
  {
    Session session(connect_control(), wrong);
    EXPECT_FALSE(session.channel.keyed());
    session.send_message("[[[[{not json");
    auto answer = session.receive();
    ASSERT_FALSE(answer);
    EXPECT_NE(answer.error().find("wrong token?"), std::string::npos) << answer.error();
  }
  EXPECT_NE(last_rejection().find("unauthenticated"), std::string::npos) << last_rejection();
  {
    Session session(connect_control(), m_token);
    ASSERT_TRUE(session.channel.keyed());
    session.channel.send("[[[[{not json");
    auto record = session.channel.take_output();
    record[5 + 3] ^= 0x20; // one bit of the ciphertext, behind TLS's 5-byte record header
    session.send_raw(record);
    auto answer = session.receive();
    ASSERT_FALSE(answer);
    EXPECT_NE(answer.error().find("bad record mac"), std::string::npos) << answer.error();
  }
  EXPECT_NE(last_rejection().find("unauthenticated"), std::string::npos) << last_rejection();
  EXPECT_EQ(m_log.str().find("malformed"), std::string::npos) << "the parser saw it: " << m_log.str();
  {
    Session session(connect_control(), m_token);
    session.send_message("[[[[{not json");
    auto answer = session.receive();
    ASSERT_TRUE(answer) << answer.error();
    auto response = decode_response(*answer);
    ASSERT_TRUE(response) << response.error();
    EXPECT_FALSE(response->ok);
    EXPECT_NE(response->body.find("malformed"), std::string::npos) << response->body;
  }
  expect_still_serving();
}

// A connection recorded on its way to the agent and sent again, whole, is
// refused in its handshake: the agent's key share is new, so the recorded
// Finished does not verify and no request of it is read.
TEST_F(ControlServer, RejectsARecordedConnectionReplayed)
{
  std::string recorded;
  {
    Session session(connect_control(), m_token);
    session.send_message(encode_request(make_request("hello", "{}", "m1")));
    auto answer = session.receive();
    ASSERT_TRUE(answer) << answer.error();
    recorded = session.sent;
  }
  auto before = rejections();
  int fd = connect_control();
  ::send(fd, recorded.data(), recorded.size(), MSG_NOSIGNAL);
  char buffer[4096];
  while (::recv(fd, buffer, sizeof buffer, 0) > 0) {
  }
  ::close(fd);
  EXPECT_EQ(rejections(), before + 1);
  EXPECT_NE(last_rejection().find("unauthenticated"), std::string::npos) << last_rejection();
  expect_still_serving();
}

// A connection keyed for w1 that reaches m1's agent fails its handshake
// (m1 knows no PSK identity but its own), with a message naming the node.
TEST_F(ControlServer, AConnectionMeantForAnotherNodeFailsItsHandshake)
{
  Session session(connect_control(), m_token, "w1");
  EXPECT_FALSE(session.channel.keyed());
  session.send_message(encode_request(make_request("hello", "{}", "w1")));
  auto answer = session.receive();
  ASSERT_FALSE(answer);
  EXPECT_NE(answer.error().find("TLS alert"), std::string::npos) << answer.error();
  EXPECT_NE(last_rejection().find("a connection for PSK identity 'portmatrix-control-v1/w1'"), std::string::npos)
    << last_rejection();
  expect_still_serving();
}

// The channel is standard TLS 1.3: OpenSSL's own client, given m1's PSK and
// identity, completes the handshake and gets hello's answer.
TEST_F(ControlServer, OpensslSClientWithThePskGetsAnAnswer)
{
  auto framed = [](const std::string& message) {
    auto size = std::uint32_t(message.size());
    return std::string{char(size >> 24), char(size >> 16), char(size >> 8), char(size)} + message;
  };
  expect_still_serving(); // m1's instance
  // A hello, then a request of no known type: answered with an error, and the agent closes.
  std::ofstream(m_dir / "requests", std::ios::binary)
    << framed(encode_request(make_request("hello", "{}", "m1")))
    << framed(encode_request(request("nothing", "{}")));
  std::string psk_hex;
  for (unsigned char c : control_psk(m_token, "m1")) psk_hex += fmt::format("{:02x}", c);
  auto command = fmt::format("timeout 20 openssl s_client -connect 127.0.0.1:{} -tls1_3 -psk {} -psk_identity {} "
                             "-ign_eof -nocommands <{} 2>&1",
                             m_base + 2, psk_hex, control_psk_identity("m1"), (m_dir / "requests").string());
  std::string output;
  if (auto* pipe = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
    ::pclose(pipe);
  }
  EXPECT_NE(output.find("TLSv1.3"), std::string::npos) << output;
  EXPECT_NE(output.find("Server Temp Key: X25519"), std::string::npos) << "(EC)DHE with the PSK: " << output;
  EXPECT_NE(output.find("\"status\":\"ok\""), std::string::npos) << "hello's answer: " << output;
  EXPECT_NE(output.find("unknown request type"), std::string::npos) << output;
  // The wrong key: no answer.
  psk_hex[0] = psk_hex[0] == 'a' ? 'b' : 'a';
  command = fmt::format("timeout 20 openssl s_client -connect 127.0.0.1:{} -tls1_3 -psk {} -psk_identity {} "
                        "-ign_eof -nocommands <{} 2>&1",
                        m_base + 2, psk_hex, control_psk_identity("m1"), (m_dir / "requests").string());
  output.clear();
  if (auto* pipe = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
    ::pclose(pipe);
  }
  EXPECT_EQ(output.find("\"status\""), std::string::npos) << output;
  EXPECT_NE(output.find("alert"), std::string::npos) << output;
  expect_still_serving();
}

// The same request id twice, each on a connection of its own (a client's
// bug, or a replay by one holding the token): the second is refused.
TEST_F(ControlServer, RejectsAReplayedRequestId)
{
  auto request = make_request("hello", "{}", "m1");
  auto first = call(m_token, request);
  ASSERT_TRUE(first) << first.error();
  EXPECT_TRUE(first->ok);
  EXPECT_NE(error_of(request).find("replayed"), std::string::npos);
  expect_still_serving();
}

// A request names its node and the agent's run: one for another node, or
// for the run before a restart, is refused.
TEST_F(ControlServer, RefusesARequestForAnotherNodeOrAnEarlierRun)
{
  expect_still_serving();
  auto other = error_of(make_request("hello", "{}", "w1"));
  EXPECT_NE(other.find("for node 'w1' reached the agent on m1"), std::string::npos) << other;
  ProbeRequest probe;
  probe.targets.push_back({Protocol::udp, "127.0.0.2", {std::uint16_t(m_base + 1), std::uint16_t(m_base + 1)}, 1});
  auto earlier = error_of(make_request("probe", to_json(probe), "m1", std::string(32, 'a')));
  EXPECT_NE(earlier.find("earlier run of the agent on m1"), std::string::npos) << earlier;
  auto none = error_of(make_request("observed", R"({"queries": []})", "m1"));
  EXPECT_NE(none.find("earlier run"), std::string::npos) << "a request without the instance: " << none;
  auto current = call(m_token, request("observed", R"({"queries": []})"));
  ASSERT_TRUE(current) << current.error();
  EXPECT_TRUE(current->ok) << current->body;
}

TEST_F(ControlServer, RejectsStaleTimestamps)
{
  auto stale = make_request("hello", "{}", "m1");
  stale.timestamp_ms -= 10 * 60 * 1000;
  EXPECT_NE(error_of(stale).find("replay window"), std::string::npos);
  expect_still_serving();
}

TEST_F(ControlServer, RejectsOversizedAndMalformedFrames)
{
  expect_still_serving();
  // Refused from TLS's record header, before the payload came (and before it could be authenticated).
  auto oversized = error_of_raw(std::string("\x16\x03\x01\xff\xff", 5));
  EXPECT_NE(oversized.find("refused: "), std::string::npos) << oversized;
  auto framed = error_of_raw(std::string("\0\x10\0\0[[[[", 8));
  EXPECT_NE(framed.find("refused: not TLS 1.3"), std::string::npos) << "the frames of the protocol before TLS: " << framed;
  {
    // A message above k_max_request_bytes, in records that each authenticate:
    // refused from its length, and the agent closes.
    Session session(connect_control(), m_token);
    session.send_message(std::string(k_max_request_bytes + 1, ' '));
    auto answer = session.receive();
    ASSERT_FALSE(answer);
    EXPECT_NE(last_rejection().find("larger than"), std::string::npos) << last_rejection();
  }
  EXPECT_NE(error_of(request("format-disk", "{}")).find("unknown request type"), std::string::npos);
  EXPECT_NE(error_of(request("probe", "[1,2]")).find("not a JSON object"), std::string::npos);
  // Authenticated, but nested deeper than any control message: refused before it is parsed.
  auto deep = request("observed", std::string(100000, '['));
  EXPECT_NE(error_of(deep).find("nests too deep"), std::string::npos);
  expect_still_serving();
}

TEST_F(ControlServer, AnIdleClientDoesNotBlockOthers)
{
  int idle = connect_control();
  ::send(idle, "\x16\x03", 2, MSG_NOSIGNAL); // half a record header, then silence
  expect_still_serving();
  ::close(idle);
}

// Clients that never authenticate cannot hold the agent: with every slot
// taken by connections that trickle a byte now and then, a new client still
// gets its answer (it takes the oldest unauthenticated slot), and a trickling
// connection is closed k_control_auth_timeout after it came, bytes or not.
TEST_F(ControlServer, TricklingUnauthenticatedClientsCannotHoldEverySlot)
{
  // The first 12 bytes of a real ClientHello (a few hundred bytes).
  std::string hello_head = ControlChannel(m_token, ChannelSide::client, "m1", 1024).take_output().substr(0, 12);
  std::vector<int> trickling;
  for (std::size_t i = 0; i < k_max_control_connections; ++i) {
    int fd = connect_control();
    ::send(fd, hello_head.data(), hello_head.size(), MSG_NOSIGNAL);
    trickling.push_back(fd);
  }
  expect_still_serving();
  int late = connect_control();
  auto started = std::chrono::steady_clock::now();
  ::send(late, hello_head.data(), hello_head.size(), MSG_NOSIGNAL);
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() - started < k_control_auth_timeout + std::chrono::seconds(3)) {
    ::send(late, "a", 1, MSG_NOSIGNAL); // a byte of it every 200 ms: never idle
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    char buffer[256];
    auto n = ::recv(late, buffer, sizeof buffer, MSG_DONTWAIT);
    closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    EXPECT_LE(n, 0) << "the agent answered a ClientHello that never came whole";
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
TEST_F(ControlServer, AFullTableEvictsTheOldestUnauthenticatedConnection)
{
  std::vector<int> waiting;
  for (std::size_t i = 0; i < k_max_control_connections; ++i) {
    int fd = connect_control();
    ::send(fd, "\x01", 1, MSG_NOSIGNAL); // one byte of a greeting record
    waiting.push_back(fd);
  }
  expect_still_serving(); // the newcomer
  // Every connection got the agent's greeting on accept; the oldest then
  // ends (read to its end, 5 s receive timeout), the others stay open (read
  // what is there, then nothing more is pending).
  char buffer[512];
  ssize_t n;
  while ((n = ::recv(waiting.front(), buffer, sizeof buffer, 0)) > 0) {}
  EXPECT_TRUE(n == 0 || errno == ECONNRESET) << "the oldest connection was not closed (errno " << errno << ")";
  std::size_t open = 0;
  for (std::size_t i = 1; i < waiting.size(); ++i) {
    while ((n = ::recv(waiting[i], buffer, sizeof buffer, MSG_DONTWAIT)) > 0) {}
    open += n < 0 && errno == EAGAIN;
  }
  EXPECT_EQ(open, waiting.size() - 1) << "a newer connection was closed instead of (or besides) the oldest";
  for (int fd : waiting) ::close(fd);
}

TEST_F(ControlServer, RefusesTargetsOutsideTheInventory)
{
  expect_still_serving();
  ProbeRequest scan;
  scan.targets.push_back({Protocol::tcp, "127.0.0.9", {1, 1024}, 1});
  auto error = error_of(request("probe", to_json(scan)));
  EXPECT_NE(error.find("is not a flow from m1"), std::string::npos) << error;
  // A real flow's address but a port the flow does not have is refused too.
  ProbeRequest wrong_port;
  wrong_port.targets.push_back({Protocol::udp, "127.0.0.2", {22, 22}, 1});
  EXPECT_NE(error_of(request("probe", to_json(wrong_port))).find("not a flow"), std::string::npos);
  expect_still_serving();
}

TEST_F(ControlServer, ProbesAFlowOfItsNode)
{
  expect_still_serving();
  ProbeRequest probe;
  probe.timeout = std::chrono::milliseconds(500);
  probe.targets.push_back({Protocol::udp, "127.0.0.2", {std::uint16_t(m_base + 1), std::uint16_t(m_base + 1)}, 1});
  auto response = call(m_token, request("probe", to_json(probe)));
  ASSERT_TRUE(response.has_value()) << response.error();
  ASSERT_TRUE(response->ok) << response->body;
  auto reply = parse_probe_reply(response->body);
  ASSERT_TRUE(reply.has_value()) << reply.error();
  ASSERT_EQ(reply->targets.size(), 1u);
  ASSERT_EQ(reply->targets[0].size(), 1u);
  // Nothing runs on w1: the datagram is refused (ICMP port unreachable on loopback).
  EXPECT_EQ(reply->targets[0][0].state, ProbeState::refused);
}

// 50 copies of a flow's target are probed once (one datagram reaches the
// port), and each copy gets the answer.
TEST_F(ControlServer, MergesDuplicateTargets)
{
  expect_still_serving();
  int port = bind_flow_port();
  ASSERT_GE(port, 0) << std::strerror(errno);
  ProbeRequest probe;
  probe.timeout = std::chrono::milliseconds(300);
  probe.retries = 0;
  ProbeTarget target{Protocol::udp, "127.0.0.2", {std::uint16_t(m_base + 1), std::uint16_t(m_base + 1)}, 1};
  for (int i = 0; i < 50; ++i) probe.targets.push_back(target);
  auto response = call(m_token, request("probe", to_json(probe)));
  ASSERT_TRUE(response.has_value()) << response.error();
  ASSERT_TRUE(response->ok) << response->body;
  auto reply = parse_probe_reply(response->body);
  ASSERT_TRUE(reply.has_value()) << reply.error();
  ASSERT_EQ(reply->targets.size(), 50u);
  for (const auto& segments : reply->targets) {
    ASSERT_EQ(segments.size(), 1u);
    EXPECT_EQ(segments[0].state, ProbeState::filtered) << "the port took the datagram and said nothing";
  }
  int datagrams = 0;
  char buffer[2048];
  while (::recv(port, buffer, sizeof buffer, 0) >= 0) ++datagrams;
  EXPECT_EQ(datagrams, 1) << "probes of the port";
  ::close(port);
  expect_still_serving();
}

// Probings that last (a UDP port that takes the datagrams and never
// answers): k_max_probings run at once, the next is refused, its connection kept.
TEST_F(ControlServer, CapsTheNumberOfProbingsAtOnce)
{
  expect_still_serving();
  int silent = bind_flow_port();
  ASSERT_GE(silent, 0) << std::strerror(errno);
  ProbeRequest probe;
  probe.timeout = std::chrono::milliseconds(20000);
  probe.retries = 0;
  probe.targets.push_back({Protocol::udp, "127.0.0.2", {std::uint16_t(m_base + 1), std::uint16_t(m_base + 1)}, 1});
  std::vector<std::unique_ptr<Session>> running;
  for (std::size_t i = 0; i < k_max_probings; ++i) {
    running.push_back(std::make_unique<Session>(connect_control(), m_token));
    running.back()->send_message(encode_request(request("probe", to_json(probe))));
  }
  std::string error;
  for (int attempt = 0; attempt < 50 && error.find("running already") == std::string::npos; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // until the agent took the others
    error = error_of(request("probe", to_json(probe)));
  }
  EXPECT_NE(error.find(fmt::format("{} probings are running already", k_max_probings)), std::string::npos) << error;
  expect_still_serving();
  ::close(silent);
}

// The total-probe cap: distinct targets (not merged as duplicates) may not
// ask for more probes than the node's flows hold, each within a flow or not.
TEST_F(ControlServer, RefusesMoreProbesThanItsFlowsHold)
{
  expect_still_serving();
  ProbeRequest probe;
  probe.timeout = std::chrono::milliseconds(100);
  // m1's flows hold 9 probes: the overlay port and the 8 ports of `spread`.
  probe.targets.push_back({Protocol::tcp, "127.0.0.2", {std::uint16_t(m_base + 3), std::uint16_t(m_base + 10)}, 1});
  probe.targets.push_back({Protocol::tcp, "127.0.0.2", {std::uint16_t(m_base + 3), std::uint16_t(m_base + 9)}, 1});
  auto error = error_of(request("probe", to_json(probe)));
  EXPECT_NE(error.find("asks for 15 probes, more than the flows from m1 in the inventory hold (9)"), std::string::npos)
    << error;
  probe.targets.pop_back();
  probe.targets.push_back({Protocol::udp, "127.0.0.2", {std::uint16_t(m_base + 1), std::uint16_t(m_base + 1)}, 1});
  auto response = call(m_token, request("probe", to_json(probe)));
  ASSERT_TRUE(response.has_value()) << response.error();
  EXPECT_TRUE(response->ok) << "every port of the flows once: " << response->body;
}

// A check's hello opens a window; its `done` closes it, and the probe and
// observed requests of that check are refused from then on (as are requests
// that name no window, or one that never was).
TEST_F(ControlServer, RefusesTheRequestsOfACheckThatSaidDone)
{
  expect_still_serving(std::chrono::seconds(30));
  ProbeRequest probe;
  probe.timeout = std::chrono::milliseconds(300);
  probe.targets.push_back({Protocol::udp, "127.0.0.2", {std::uint16_t(m_base + 1), std::uint16_t(m_base + 1)}, 1});
  std::vector<ObservedQuery> queries{{Protocol::udp, "127.0.0.2", {std::uint16_t(m_base + 1), std::uint16_t(m_base + 1)},
                                      false, 0, 0}};
  auto probed = call(m_token, request("probe", to_json(probe)));
  ASSERT_TRUE(probed.has_value()) << probed.error();
  EXPECT_TRUE(probed->ok) << probed->body;
  auto done = call(m_token, request("done", "{}"));
  ASSERT_TRUE(done.has_value()) << done.error();
  EXPECT_TRUE(done->ok) << done->body;
  auto closed = fmt::format("window {} of the agent on m1 is closed", m_window);
  auto error = error_of(request("probe", to_json(probe)));
  EXPECT_NE(error.find(closed), std::string::npos) << error;
  error = error_of(request("observed", to_json(queries)));
  EXPECT_NE(error.find(closed), std::string::npos) << error;
  error = error_of(make_request("probe", to_json(probe), "m1", m_instance));
  EXPECT_NE(error.find("window 0 of the agent on m1 is closed"), std::string::npos) << error;
  error = error_of(make_request("probe", to_json(probe), "m1", m_instance, m_window + 1000));
  EXPECT_NE(error.find("is closed"), std::string::npos) << error;
  // Another check's window is its own.
  expect_still_serving(std::chrono::seconds(30));
  auto other = call(m_token, request("probe", to_json(probe)));
  ASSERT_TRUE(other.has_value()) << other.error();
  EXPECT_TRUE(other->ok) << other->body;
}

// A probing asked for without a budget (or a longer one) ends with the
// deadline of the check that asked, and the agent's grace after it, not an
// hour later: here a silent port with a 20 s timeout, in a check of 0.5 s.
TEST_F(ControlServer, AProbingEndsWithItsChecksDeadline)
{
  int silent = bind_flow_port();
  ASSERT_GE(silent, 0) << std::strerror(errno);
  expect_still_serving(std::chrono::milliseconds(500));
  ProbeRequest probe;
  probe.timeout = std::chrono::milliseconds(20000);
  probe.retries = 0;
  probe.targets.push_back({Protocol::udp, "127.0.0.2", {std::uint16_t(m_base + 1), std::uint16_t(m_base + 1)}, 1});
  int fd = connect_control();
  timeval patient{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patient, sizeof(patient));
  Session session(fd, m_token);
  auto started = std::chrono::steady_clock::now();
  session.send_message(encode_request(request("probe", to_json(probe))));
  auto answer = session.receive();
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(answer) << answer.error();
  auto response = decode_response(*answer);
  ASSERT_TRUE(response && response->ok);
  auto reply = parse_probe_reply(response->body);
  ASSERT_TRUE(reply) << reply.error();
  ASSERT_EQ(reply->targets.size(), 1u);
  ASSERT_EQ(reply->targets[0].size(), 1u);
  EXPECT_EQ(reply->targets[0][0].state, ProbeState::unprobed) << "ended before its outcome";
  EXPECT_GT(took, k_window_grace);
  EXPECT_LT(took, k_window_grace + std::chrono::seconds(4)) << "the probing outlived its check's window";
  ::close(silent);
}

// `done` ends the check's probings still running at once.
TEST_F(ControlServer, DoneEndsTheChecksProbings)
{
  int silent = bind_flow_port();
  ASSERT_GE(silent, 0) << std::strerror(errno);
  expect_still_serving(std::chrono::seconds(60));
  ProbeRequest probe;
  probe.timeout = std::chrono::milliseconds(20000);
  probe.retries = 0;
  probe.targets.push_back({Protocol::udp, "127.0.0.2", {std::uint16_t(m_base + 1), std::uint16_t(m_base + 1)}, 1});
  Session probing(connect_control(), m_token);
  auto started = std::chrono::steady_clock::now();
  probing.send_message(encode_request(request("probe", to_json(probe))));
  std::this_thread::sleep_for(std::chrono::milliseconds(200)); // the probe is out
  auto done = call(m_token, request("done", "{}"));
  ASSERT_TRUE(done && done->ok);
  auto answer = probing.receive();
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  auto reply = parse_probe_reply(decode_response(*answer)->body);
  ASSERT_TRUE(reply) << reply.error();
  EXPECT_EQ(reply->targets.at(0).at(0).state, ProbeState::unprobed);
  ::close(silent);
}

// An observed request over every port is answered in slices: a hello sent
// while it is worked out is answered within a small bound of the hello's
// time without it (measured here first), not after it.
TEST_F(ControlServer, ALargeObservedRequestDoesNotHoldUpAHello)
{
  expect_still_serving();
  auto time_hello = [&] {
    auto started = std::chrono::steady_clock::now();
    auto hello = call(m_token, make_request("hello", "{}", "m1"));
    EXPECT_TRUE(hello && hello->ok);
    return std::chrono::steady_clock::now() - started;
  };
  auto baseline = time_hello();
  for (int i = 0; i < 4; ++i) baseline = std::min(baseline, time_hello());
  // Queries over 1-65535 from many sources: seconds of work at once before.
  std::vector<ObservedQuery> queries;
  for (int source = 0; source < 200; ++source) {
    queries.push_back({Protocol::tcp, fmt::format("10.9.{}.{}", source / 250, source % 250 + 1), {1, 65535}, false, 0, 0});
  }
  int observing_fd = connect_control();
  timeval patient{120, 0}; // its answer may take longer than the usual 5 s (sanitizer builds)
  ::setsockopt(observing_fd, SOL_SOCKET, SO_RCVTIMEO, &patient, sizeof(patient));
  Session observing(observing_fd, m_token);
  auto started = std::chrono::steady_clock::now();
  observing.send_message(encode_request(request("observed", to_json(queries))));
  std::this_thread::sleep_for(std::chrono::milliseconds(50)); // the agent is into it
  auto during = time_hello();
  auto answer = observing.receive();
  auto observed_took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(answer) << answer.error();
  auto response = decode_response(*answer);
  ASSERT_TRUE(response && response->ok);
  auto reply = parse_observed_reply(response->body);
  ASSERT_TRUE(reply) << reply.error();
  EXPECT_EQ(reply->answers.size(), queries.size());
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cout << "hello alone " << ms(baseline) << " ms, during the observed request " << ms(during)
            << " ms; the observed request took " << ms(observed_took) << " ms\n";
  EXPECT_LT(during, baseline + std::chrono::milliseconds(250))
    << "the hello waited for the observed request (" << ms(observed_took) << " ms)";
}

// 1 MiB frames of '[' from clients without the token: each is refused from
// its first bytes (behind the earlier 4-byte frame, or a TLS record header), the agent's memory stays flat, and hellos meanwhile are
// answered as fast as without them.
TEST_F(ControlServer, FramesOfBracketsAreRefusedBeforeTheyAreRead)
{
  expect_still_serving();
  auto rss_kb = [] {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0L;
  };
  auto rss_before = rss_kb();
  std::string frame = std::string("\x00\x10\x00\x00", 4) + std::string(1 << 20, '[');
  std::string record = std::string("\x16\x03\x01\xff\xff", 5) + std::string(1 << 20, '[');
  std::atomic<bool> flooding{true};
  std::atomic<int> sent{0};
  std::vector<std::thread> flooders;
  for (int i = 0; i < 4; ++i) {
    flooders.emplace_back([&, i] {
      const auto& bytes = i % 2 ? frame : record;
      while (flooding) {
        int fd = connect_control();
        ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        ::close(fd);
        ++sent;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::vector<std::chrono::steady_clock::duration> hellos;
  for (int i = 0; i < 10; ++i) {
    auto started = std::chrono::steady_clock::now();
    auto hello = call(m_token, make_request("hello", "{}", "m1"));
    hellos.push_back(std::chrono::steady_clock::now() - started);
    EXPECT_TRUE(hello && hello->ok) << (hello ? hello->body : hello.error());
  }
  flooding = false;
  for (auto& flooder : flooders) flooder.join();
  auto rss_after = rss_kb();
  std::sort(hellos.begin(), hellos.end());
  std::cout << sent << " frames of 1 MiB sent; median hello "
            << std::chrono::duration_cast<std::chrono::microseconds>(hellos[5]).count() << " us; RSS " << rss_before
            << " -> " << rss_after << " kB\n";
  EXPECT_GT(sent.load(), 10);
  // The test process holds the flooders' buffers too (2 MiB); the agent held up to 1 MiB per
  // connection and its parse tree before.
#if !defined(__SANITIZE_ADDRESS__) // ASan's quarantine keeps freed buffers: RSS says nothing there
  EXPECT_LT(rss_after - rss_before, 16 * 1024) << "kB";
#endif
  EXPECT_LT(hellos[5], std::chrono::milliseconds(200));
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

TEST(ProbeRequestBody, RefusesABudgetLongerThanTheLongestCheck)
{
  auto day = parse_probe_request(R"({"timeout_ms": 1000, "budget_ms": 86400000, "targets": []})");
  ASSERT_FALSE(day);
  EXPECT_NE(day.error().find("budget_ms"), std::string::npos) << day.error();
  auto hour = parse_probe_request(fmt::format(R"({{"timeout_ms": 1000, "budget_ms": {}, "targets": []}})",
                                              k_max_probe_budget.count()));
  EXPECT_TRUE(hour) << hour.error();
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

// Finding 3: a request naming a proxy (here a listener on the agent's own
// loopback) is refused, and nothing connects to that listener.
TEST_F(ControlServer, AnEgressRequestCannotNameItsProxy)
{
  expect_still_serving(); // the agent's instance, which a request must name
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  socklen_t length = sizeof(address);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  auto body = fmt::format(R"({{"timeout_ms": 500, "deadline_ms": 2000, "proxy": "http://127.0.0.1:{}"}})",
                          ntohs(address.sin_port));
  auto error = error_of(request("egress", body));
  EXPECT_NE(error.find("cannot name a proxy"), std::string::npos) << error;
  EXPECT_LT(::accept(listener, nullptr, nullptr), 0) << "the agent connected to the named proxy";
  ::close(listener);
  expect_still_serving();
}

// Finding 11: 5,000 unauthenticated requests wrote 5,000 lines. They write a
// few now, and the rest is counted (the count's line comes when its 10 s
// window ends, after this test).
TEST_F(ControlServer, AFloodOfUnauthenticatedRequestsWritesABoundedLog)
{
  auto wrong = *Token::from_text("not-the-agents-token-000000");
  for (int i = 0; i < 5000; ++i) {
    auto error = error_of(make_request("hello", "{}", "m1"), &wrong);
    ASSERT_NE(error.find("unauthenticated"), std::string::npos) << "request " << i << ": " << error;
  }
  expect_still_serving();
  m_stop = true;
  m_thread.join();
  auto text = m_log.str();
  auto lines = std::count(text.begin(), text.end(), '\n');
  EXPECT_LE(lines, 20) << text;
  EXPECT_NE(text.find("unauthenticated"), std::string::npos) << "the first ones are shown: " << text;
}

} // namespace
} // namespace portmatrix
