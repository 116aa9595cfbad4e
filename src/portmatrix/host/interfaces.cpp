#include "host/interfaces.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace portmatrix {

std::optional<std::string>
interface_with_address(const std::string& address)
{
  // inet_pton reads a C string: it would stop at an embedded NUL.
  if (address.find('\0') != std::string::npos) return std::nullopt;
  unsigned char wanted[16];
  int family = ::inet_pton(AF_INET, address.c_str(), wanted) == 1 ? AF_INET
               : ::inet_pton(AF_INET6, address.c_str(), wanted) == 1 ? AF_INET6
                                                                    : 0;
  if (family == 0) return std::nullopt;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (auto* entry = list; entry && !found; entry = entry->ifa_next) {
    if (!entry->ifa_addr || entry->ifa_addr->sa_family != family) continue;
    const void* bytes = family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(entry->ifa_addr)->sin_addr)
                                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(entry->ifa_addr)->sin6_addr);
    if (std::memcmp(bytes, wanted, family == AF_INET ? 4 : 16) == 0) found = entry->ifa_name;
  }
  ::freeifaddrs(list);
  return found;
}

std::uint32_t
mtu_of_address(const std::string& address)
{
  auto name = interface_with_address(address);
  if (!name || name->size() >= IFNAMSIZ) return 0;
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  ifreq request{};
  std::memcpy(request.ifr_name, name->c_str(), name->size() + 1);
  int mtu = ::ioctl(fd, SIOCGIFMTU, &request) == 0 ? request.ifr_mtu : 0;
  ::close(fd);
  return mtu > 0 ? std::uint32_t(mtu) : 0;
}

} // namespace portmatrix
