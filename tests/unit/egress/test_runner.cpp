// The runner on loopback only: a listener that accepts (plain HTTP: ok), a
// closed port (refused), and a listener that never speaks TLS (the handshake
// waits): the run ends by its deadline, not by the per-step timeout, and says
// which stage was still running.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>

#include "egress/runner.hpp"
#include "net/fd.hpp"

namespace portmatrix {
namespace {

// A TCP listener on 127.0.0.1 (port chosen by the kernel) that never accepts:
// the kernel completes handshakes into the backlog, nobody ever answers.
struct Listener
{
  Fd fd;
  std::uint16_t port = 0;
};

Listener
listen_loopback()
{
  Listener listener;
  listener.fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  EXPECT_EQ(::bind(listener.fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  EXPECT_EQ(::listen(listener.fd.get(), 16), 0);
  EXPECT_EQ(::getsockname(listener.fd.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);
  listener.port = ntohs(address.sin_port);
  return listener;
}

std::uint16_t
closed_port()
{
  auto listener = listen_loopback(); // bound, then closed: nothing listens there now
  return listener.port;
}

EgressTarget
target(std::uint16_t port, EgressScheme scheme)
{
  return {"127.0.0.1", {port, scheme}, "127.0.0.1", "test"};
}

} // namespace

TEST(EgressRunner, ConnectsRefusesAndReportsByTarget)
{
  auto listener = listen_loopback();
  auto closed = closed_port();
  EgressOptions options;
  options.timeout = std::chrono::milliseconds(2000);
  options.deadline = std::chrono::milliseconds(5000);
  auto results = run_egress({target(listener.port, EgressScheme::http), target(closed, EgressScheme::https)}, options);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].verdict, EgressVerdict::ok) << results[0].detail;
  EXPECT_EQ(results[0].addresses, (std::vector<std::string>{"127.0.0.1"}));
  EXPECT_EQ(results[1].verdict, EgressVerdict::refused) << results[1].detail;
  EXPECT_NE(results[1].detail.find("Connection refused"), std::string::npos) << results[1].detail;
}

TEST(EgressRunner, ASilentTlsPeerTimesOutAndTheDeadlineBoundsTheRun)
{
  auto listener = listen_loopback();
  EgressOptions options;
  options.timeout = std::chrono::milliseconds(300);
  options.deadline = std::chrono::milliseconds(5000);
  auto started = std::chrono::steady_clock::now();
  auto results = run_egress({target(listener.port, EgressScheme::https)}, options);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].verdict, EgressVerdict::timeout) << results[0].detail;
  EXPECT_NE(results[0].detail.find("no TLS handshake in time"), std::string::npos) << results[0].detail;

  // A per-step timeout longer than the whole deadline: the deadline wins.
  options.timeout = std::chrono::milliseconds(20000);
  options.deadline = std::chrono::milliseconds(400);
  started = std::chrono::steady_clock::now();
  results = run_egress({target(listener.port, EgressScheme::https), target(listener.port, EgressScheme::https)}, options);
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_EQ(r.verdict, EgressVerdict::timeout) << r.detail;
  EXPECT_LT(took, std::chrono::milliseconds(2000));
}

TEST(EgressRunner, AProxyWhereNothingListensIsUnreachable)
{
  EgressOptions options;
  options.proxy.https = ProxyUrl{"127.0.0.1", closed_port(), "", ""};
  options.deadline = std::chrono::milliseconds(5000);
  auto results = run_egress({{"registry.example", {443, EgressScheme::https}, "registry.example", "test"}}, options);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].verdict, EgressVerdict::proxy_unreachable) << results[0].detail;
  EXPECT_EQ(results[0].proxy, "127.0.0.1:" + std::to_string(options.proxy.https->port));
}

} // namespace portmatrix
