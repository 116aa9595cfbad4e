// The runner on loopback only: a listener that accepts (plain HTTP: ok), a
// closed port (refused), and a listener that never speaks TLS (the handshake
// waits): the run ends by its deadline, not by the per-step timeout, and says
// which stage was still running.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

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

// A proxy on loopback that answers every CONNECT with `status` (one
// connection at a time, until destroyed).
class FakeProxy
{
public:
  explicit FakeProxy(std::string status) : m_listener(listen_loopback()), m_status(std::move(status))
  {
    m_thread = std::thread([this] {
      for (;;) {
        Fd client(::accept4(m_listener.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client || m_stopping) return;
        std::string request;
        char buffer[1024];
        ssize_t n;
        while (request.find("\r\n\r\n") == std::string::npos && (n = ::recv(client.get(), buffer, sizeof buffer, 0)) > 0) {
          request.append(buffer, std::size_t(n));
        }
        auto answer = "HTTP/1.1 " + m_status + "\r\nContent-Length: 0\r\n\r\n";
        ::send(client.get(), answer.data(), answer.size(), MSG_NOSIGNAL);
      }
    });
  }
  ~FakeProxy()
  {
    m_stopping = true;
    ::shutdown(m_listener.fd.get(), SHUT_RDWR); // wakes accept()
    m_thread.join();
  }
  std::uint16_t port() const { return m_listener.port; }

private:
  Listener m_listener;
  std::string m_status;
  std::atomic<bool> m_stopping{false};
  std::thread m_thread;
};

} // namespace

// The proxy resolves and connects for us, and its failures say only so much:
// 500, 502 and 503 ("could not reach the host") read as refused, 504 (it
// timed out reaching the host) as timeout, 403 as proxy-denied; the detail
// keeps its status line.
TEST(EgressRunner, AProxysStatusIsTheVerdict)
{
  for (auto [status, verdict] : {std::pair{"500 Internal Server Error", EgressVerdict::refused},
                                 std::pair{"502 Bad Gateway", EgressVerdict::refused},
                                 std::pair{"503 Service Unavailable", EgressVerdict::refused},
                                 std::pair{"504 Gateway Timeout", EgressVerdict::timeout},
                                 std::pair{"403 Forbidden", EgressVerdict::proxy_denied}}) {
    FakeProxy proxy(status);
    EgressOptions options;
    options.proxy.https = ProxyUrl{"127.0.0.1", proxy.port(), "", ""};
    options.timeout = std::chrono::milliseconds(5000);
    options.deadline = std::chrono::milliseconds(10000);
    auto results = run_egress({{"registry.example", {443, EgressScheme::https}, "registry.example", "test"}}, options);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].verdict, verdict) << status << ": " << results[0].detail;
    EXPECT_NE(results[0].detail.find(status), std::string::npos) << results[0].detail;
  }
}

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
  EXPECT_LT(took, options.timeout / 2) << "the per-step timeout was waited out, not the deadline";
}

// Hosts are checked at once, not one after another: four silent TLS peers
// cost about one timeout together. Measured against the run's own figures
// (the sum of the hosts' times), not a wall-clock limit.
TEST(EgressRunner, HostsAreCheckedAtOnce)
{
  auto listener = listen_loopback();
  EgressOptions options;
  options.timeout = std::chrono::milliseconds(300);
  options.deadline = std::chrono::milliseconds(20000);
  std::vector<EgressTarget> targets(4, target(listener.port, EgressScheme::https));
  auto started = std::chrono::steady_clock::now();
  auto results = run_egress(targets, options);
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(results.size(), targets.size());
  std::chrono::milliseconds serial{0};
  for (const auto& r : results) {
    EXPECT_EQ(r.verdict, EgressVerdict::timeout) << r.detail;
    serial += r.elapsed;
  }
  EXPECT_LT(took, serial * 3 / 4) << "the run took about as long as its hosts one after another";
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
