// The TLS health endpoint under idle handshakes (finding 7): a flood of
// ClientHellos that never go on, from several loopback addresses, must not
// keep the load balancer's health checks (GET /healthz over TLS) from being
// answered, and the idle handshakes are closed after about a second.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "agent/tls_health.hpp"

namespace portmatrix {
namespace {

using namespace std::chrono_literals;

sockaddr_in
loopback(const std::string& address, std::uint16_t port)
{
  sockaddr_in out{};
  out.sin_family = AF_INET;
  out.sin_port = htons(port);
  inet_pton(AF_INET, address.c_str(), &out.sin_addr);
  return out;
}

// A TCP connection from `source` to 127.0.0.1:`port` (blocking), or -1.
int
connect_from(const std::string& source, std::uint16_t port)
{
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto from = loopback(source, 0);
  auto to = loopback("127.0.0.1", port);
  timeval timeout{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class TlsHealth : public ::testing::Test
{
protected:
  void SetUp() override
  {
    // A flooder's connection the server refused: its writes must not kill the test.
    ::signal(SIGPIPE, SIG_IGN);
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 8192);
    ::setrlimit(RLIMIT_NOFILE, &limit);
    m_client = SSL_CTX_new(TLS_client_method());
    m_listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto address = loopback("127.0.0.1", 0);
    ASSERT_EQ(::bind(m_listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(::listen(m_listener, 4096), 0);
    socklen_t length = sizeof(address);
    ::getsockname(m_listener, reinterpret_cast<sockaddr*>(&address), &length);
    m_port = ntohs(address.sin_port);
    m_server = std::make_unique<TlsHealthServer>(m_loop);
    ASSERT_TRUE(m_server->ready()) << m_server->error();
  }

  void start(const std::vector<std::string>& priority)
  {
    m_server->set_priority_sources(priority);
    m_loop.add(m_listener, EPOLLIN, [this](std::uint32_t) {
      for (;;) {
        Fd fd(::accept4(m_listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) return;
        m_server->adopt(std::move(fd));
      }
    });
    m_thread = std::thread([this] {
      while (!m_stop) m_loop.run_once(20ms);
    });
  }

  void TearDown() override
  {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
    for (auto& [fd, ssl] : m_idle) {
      SSL_free(ssl);
      ::close(fd);
    }
    m_loop.remove(m_listener);
    m_server.reset();
    ::close(m_listener);
    SSL_CTX_free(m_client);
  }

  // One health check from `source`, as haproxy's `check-ssl verify none`.
  bool health_check(const std::string& source)
  {
    int fd = connect_from(source, m_port);
    if (fd < 0) return false;
    SSL* ssl = SSL_new(m_client);
    SSL_set_fd(ssl, fd);
    std::string response;
    if (SSL_connect(ssl) == 1) {
      std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
      SSL_write(ssl, request.data(), int(request.size()));
      char buffer[1024];
      for (int n; (n = SSL_read(ssl, buffer, sizeof buffer)) > 0;) response.append(buffer, std::size_t(n));
    }
    SSL_free(ssl);
    ::close(fd);
    return response.starts_with("HTTP/1.1 200 OK");
  }

  // `count` connections from `sources` (in turn) that send a ClientHello and
  // then nothing.
  void idle_hellos(const std::vector<std::string>& sources, int count)
  {
    for (int i = 0; i < count; ++i) {
      int fd = connect_from(sources[std::size_t(i) % sources.size()], m_port);
      if (fd < 0) continue;
      SSL* ssl = SSL_new(m_client);
      SSL_set_fd(ssl, fd);
      timeval short_wait{0, 1000};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof(short_wait));
      SSL_connect(ssl); // sends the ClientHello; the answer is never read on
      m_idle.emplace_back(fd, ssl);
    }
  }

  // Idle connections the server has closed (reading gives end of file or a reset).
  int idle_closed()
  {
    int closed = 0;
    for (auto& [fd, ssl] : m_idle) {
      char buffer[4096];
      ssize_t n;
      while ((n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT)) > 0) {
      }
      closed += n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
    return closed;
  }

  EventLoop m_loop;
  std::unique_ptr<TlsHealthServer> m_server;
  SSL_CTX* m_client = nullptr;
  int m_listener = -1;
  std::uint16_t m_port = 0;
  std::thread m_thread;
  std::atomic<bool> m_stop{false};
  std::vector<std::pair<int, SSL*>> m_idle;
};

const std::vector<std::string> k_flooders = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5",
                                             "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"};

// 1,100 idle handshakes (more than any slot count) and the load balancer's
// checks all pass while they are held.
TEST_F(TlsHealth, TheLoadBalancersChecksPassDuringAnIdleHandshakeFlood)
{
  start({"127.0.0.1"});
  idle_hellos(k_flooders, 1100);
  int passed = 0;
  for (int i = 0; i < 10; ++i) passed += health_check("127.0.0.1");
  EXPECT_EQ(passed, 10);
}

// Another source's checks pass too (the flooders hold their share only),
// and the idle handshakes are closed after about a second.
TEST_F(TlsHealth, IdleHandshakesAreClosedAndOthersAreServed)
{
  start({});
  idle_hellos(k_flooders, 400);
  int passed = 0;
  for (int i = 0; i < 10; ++i) passed += health_check("127.0.0.10");
  EXPECT_EQ(passed, 10);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (idle_closed() < int(m_idle.size()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(idle_closed(), int(m_idle.size())) << "idle handshakes still open after 10 s";
}

} // namespace
} // namespace portmatrix
