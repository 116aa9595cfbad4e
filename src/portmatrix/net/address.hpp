// An IPv4 or IPv6 socket address (address + port), parsed from and printed to
// text. Plain value type.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portmatrix {

class SocketAddress
{
public:
  SocketAddress() = default;
  // "10.0.0.1" or "fd00::1" (no brackets) and a port; nullopt if not an
  // address (text with an embedded NUL never is).
  static std::optional<SocketAddress> parse(std::string_view address, std::uint16_t port);
  static SocketAddress from_sockaddr(const sockaddr* address, socklen_t length);

  int family() const { return m_storage.ss_family; }
  std::uint16_t port() const;
  void set_port(std::uint16_t port);
  std::string host() const; // "10.0.0.1" / "fd00::1"
  std::string to_string() const; // "10.0.0.1:6443" / "[fd00::1]:6443"

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&m_storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&m_storage); }
  socklen_t length() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) { return a.to_string() == b.to_string(); }

private:
  sockaddr_storage m_storage{};
};

} // namespace portmatrix
