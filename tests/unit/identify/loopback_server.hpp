// A tiny TCP server on 127.0.0.1 (kernel-chosen port) for the identification
// tests: a thread accepts connections and hands each to a handler, so the
// real client code path (connect, TLS, request, bounded read) runs against
// it. The handler gets the connected fd (blocking) and may read and write as
// the scenario needs; the connection closes when the handler returns.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "net/fd.hpp"

namespace portmatrix::test {

// The bytes of a file under tests/data/identify/.
inline std::string
identify_data(const std::string& name)
{
  std::ifstream in(std::string(PORTMATRIX_TEST_DATA) + "/data/identify/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class LoopbackServer
{
public:
  using Handler = std::function<void(int fd, const std::atomic<bool>& stopping)>;

  explicit LoopbackServer(Handler handler) : m_handler(std::move(handler))
  {
    m_listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(m_listener.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(m_listener.get(), 16) != 0 ||
        ::getsockname(m_listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    m_port = ntohs(address.sin_port);
    m_thread = std::thread([this] { run(); });
  }
  ~LoopbackServer()
  {
    m_stopping = true;
    if (m_thread.joinable()) m_thread.join();
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::uint16_t port() const { return m_port; }
  int connections() const { return m_connections; }

private:
  void run()
  {
    std::vector<std::thread> handlers;
    while (!m_stopping) {
      pollfd entry{m_listener.get(), POLLIN, 0};
      if (::poll(&entry, 1, 20) <= 0) continue;
      Fd connection(::accept4(m_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!connection) continue;
      ++m_connections;
      handlers.emplace_back([this, fd = std::make_shared<Fd>(std::move(connection))] { m_handler(fd->get(), m_stopping); });
    }
    for (auto& thread : handlers) thread.join();
  }

  Handler m_handler;
  Fd m_listener;
  std::uint16_t m_port = 0;
  std::atomic<bool> m_stopping{false};
  std::atomic<int> m_connections{0};
  std::thread m_thread;
};

// Reads from a blocking fd until `done(bytes)` or EOF or `limit` bytes, at most 5 s.
template <class Done>
std::string
read_until(int fd, Done&& done, std::size_t limit = 1 << 20)
{
  std::string bytes;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done(bytes) && bytes.size() < limit && std::chrono::steady_clock::now() < deadline) {
    pollfd entry{fd, POLLIN, 0};
    if (::poll(&entry, 1, 50) <= 0) continue;
    char buffer[4096];
    auto n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    bytes.append(buffer, std::size_t(n));
  }
  return bytes;
}

inline void
write_all(int fd, std::string_view bytes)
{
  while (!bytes.empty()) {
    auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(std::size_t(n));
  }
}

// Holds the connection open and silent until the server stops.
inline void
stay_silent(const std::atomic<bool>& stopping)
{
  while (!stopping) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

} // namespace portmatrix::test
