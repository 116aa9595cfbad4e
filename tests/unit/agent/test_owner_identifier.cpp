// The agent's side of "who answers": owners are identified off the loop and
// the results arrive on the loop's thread; the hello reply carries them, and
// a reply from an agent that predates the field still parses.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../identify/loopback_server.hpp"
#include "agent/messages.hpp"
#include "agent/owner_identifier.hpp"
#include "model/profile.hpp"

namespace portmatrix {
namespace {

using namespace std::chrono_literals;

TEST(OwnerIdentifier, ResultsArriveOnTheLoop)
{
  test::LoopbackServer es([](int fd, const std::atomic<bool>&) {
    test::read_until(fd, [](const std::string& bytes) { return bytes.find("\r\n\r\n") != std::string::npos; });
    test::write_all(fd, test::identify_data("elasticsearch-root.http"));
  });
  test::LoopbackServer silent([](int, const std::atomic<bool>& stopping) { test::stay_silent(stopping); });
  EventLoop loop;
  std::map<std::uint16_t, std::string> results;
  auto loop_thread = std::this_thread::get_id();
  bool on_loop = true;
  auto start = std::chrono::steady_clock::now();
  OwnerIdentifier identifier(loop, "127.0.0.1",
                             {{Protocol::tcp, es.port(), "elasticsearch-http"}, {Protocol::tcp, silent.port(), "etcd"}},
                             300ms, [&](const OwnerIdentifier::Job& job, const Identification& result) {
                               on_loop = on_loop && std::this_thread::get_id() == loop_thread;
                               results[job.port] = result.summary;
                             });
  EXPECT_FALSE(identifier.finished());
  while (!identifier.finished() && std::chrono::steady_clock::now() - start < 5s) loop.run_once(50ms);
  EXPECT_TRUE(identifier.finished());
  EXPECT_TRUE(on_loop);
  EXPECT_EQ(results[es.port()], "Elasticsearch 8.15.0, cluster apinizer");
  EXPECT_EQ(results[silent.port()], "unknown: HTTPS: no answer in 300 ms");
  // Both ran at once: the silent one's timeout bounds the whole.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST(OwnerIdentifier, HelloCarriesTheServiceBoundedAndOptional)
{
  HelloReply reply{"m1", "0.1.0", "ab", true, "", 3, {}};
  PortOwner owner{Protocol::tcp, 2379, 42, "etcd", "", "etcd 3.4.23 (cluster version 3.4.0)"};
  reply.owners.push_back(owner);
  owner.port = 2380;
  owner.service = std::string(5000, 'x');
  reply.owners.push_back(owner);
  auto parsed = parse_hello_reply(to_json(reply));
  ASSERT_TRUE(parsed.has_value()) << parsed.error();
  ASSERT_EQ(parsed->owners.size(), 2u);
  EXPECT_EQ(parsed->owners[0].service, "etcd 3.4.23 (cluster version 3.4.0)");
  EXPECT_EQ(parsed->owners[1].service.size(), k_max_service_text);

  // An older agent's reply, without `service`.
  auto json = nlohmann::json::parse(to_json(reply));
  for (auto& item : json["owners"]) item.erase("service");
  parsed = parse_hello_reply(json.dump());
  ASSERT_TRUE(parsed.has_value()) << parsed.error();
  EXPECT_EQ(parsed->owners[0].service, "");
  // A `service` that is not a string is an error.
  json["owners"][0]["service"] = 7;
  EXPECT_FALSE(parse_hello_reply(json.dump()).has_value());
}

TEST(OwnerIdentifier, HintIsTheNarrowestNamedPort)
{
  auto profile = load_profile("apinizer");
  ASSERT_TRUE(profile.has_value());
  EXPECT_EQ(port_hint(*profile, Protocol::tcp, 2380), "etcd");
  EXPECT_EQ(port_hint(*profile, Protocol::tcp, 6443), "kube-apiserver");
  EXPECT_EQ(port_hint(*profile, Protocol::tcp, 32080), "apinizer-manager"); // inside nodeport 30000-32767
  EXPECT_EQ(port_hint(*profile, Protocol::tcp, 31000), "nodeport");
  EXPECT_EQ(port_hint(*profile, Protocol::udp, 8472), "flannel-vxlan");
  EXPECT_EQ(port_hint(*profile, Protocol::tcp, 8472), "");
}

} // namespace
} // namespace portmatrix
