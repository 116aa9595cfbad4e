// A network namespace of a test's own: a thread unshares it, so the rest of
// the test process stays where it is. Used by the tests that need the
// kernel's network stack to themselves (captures, the conntrack table).
#pragma once

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <functional>
#include <thread>

#include "net/fd.hpp"

namespace portmatrix::test {

inline bool
bring_up_loopback()
{
  Fd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(socket.get(), SIOCGIFFLAGS, &request) != 0) return false;
  request.ifr_flags = short(request.ifr_flags | IFF_UP);
  return ::ioctl(socket.get(), SIOCSIFFLAGS, &request) == 0;
}

// Runs `body` on a thread of its own in a new network namespace with lo up,
// 127.0.0.1 and ::1 (programs it starts are in it too). False, without
// running it, when no namespace can be made (not root).
inline bool
run_in_private_network(const std::function<void()>& body)
{
  bool isolated = false;
  std::thread thread([&] {
    isolated = ::unshare(CLONE_NEWNET) == 0 && bring_up_loopback();
    if (isolated) body();
  });
  thread.join();
  return isolated;
}

} // namespace portmatrix::test
