#include "net/address.hpp"

#include <arpa/inet.h>

#include <cstring>

#include <fmt/format.h>

namespace portmatrix {

std::optional<SocketAddress>
SocketAddress::parse(std::string_view address, std::uint16_t port)
{
  // inet_pton reads a C string: "10.0.0.1\0junk" would parse as 10.0.0.1.
  if (address.find('\0') != std::string_view::npos) return std::nullopt;
  std::string text(address);
  SocketAddress result;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&result.m_storage);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return result;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.m_storage);
  if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return result;
  }
  return std::nullopt;
}

SocketAddress
SocketAddress::from_sockaddr(const sockaddr* address, socklen_t length)
{
  SocketAddress result;
  std::memcpy(&result.m_storage, address, std::min<std::size_t>(length, sizeof(result.m_storage)));
  return result;
}

std::uint16_t
SocketAddress::port() const
{
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&m_storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&m_storage)->sin6_port);
  return 0;
}

void
SocketAddress::set_port(std::uint16_t port)
{
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&m_storage)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&m_storage)->sin6_port = htons(port);
}

std::string
SocketAddress::host() const
{
  char buffer[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&m_storage)->sin_addr, buffer, sizeof(buffer));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&m_storage)->sin6_addr, buffer, sizeof(buffer));
  }
  return buffer;
}

std::string
SocketAddress::to_string() const
{
  return family() == AF_INET6 ? fmt::format("[{}]:{}", host(), port()) : fmt::format("{}:{}", host(), port());
}

socklen_t
SocketAddress::length() const
{
  return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

} // namespace portmatrix
