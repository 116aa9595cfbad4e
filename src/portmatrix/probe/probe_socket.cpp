// The prober's socket helpers (see probe_socket.hpp).
#include "probe/probe_socket.hpp"

#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "net/fd.hpp"

namespace portmatrix::probing {

namespace {

// File descriptors left to the rest of the process (listeners, the control
// channel, logs) when the soft RLIMIT_NOFILE caps the probes in flight.
constexpr std::size_t k_reserved_fds = 64;

} // namespace

std::optional<sock_extended_err>
read_queued_error(int fd, sockaddr_storage* destination)
{
  char data[64];
  alignas(cmsghdr) char control[512];
  iovec vector{data, sizeof data};
  msghdr message{};
  message.msg_name = destination;
  message.msg_namelen = destination ? sizeof *destination : 0;
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  if (::recvmsg(fd, &message, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return std::nullopt;
  for (auto* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
    bool v4 = header->cmsg_level == SOL_IP && header->cmsg_type == IP_RECVERR;
    bool v6 = header->cmsg_level == SOL_IPV6 && header->cmsg_type == IPV6_RECVERR;
    if (!v4 && !v6) continue;
    sock_extended_err queued{};
    std::memcpy(&queued, CMSG_DATA(header), sizeof queued);
    return queued;
  }
  return std::nullopt;
}

Finding
classify_failure(int fd, int error)
{
  if (error != ECONNREFUSED) {
    if (auto queued = read_queued_error(fd)) return classify_queued_error(*queued);
  }
  return classify_errno(error);
}

int
pending_socket_error(int fd)
{
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
  return error;
}

std::optional<std::string>
route_source(const SocketAddress& peer)
{
  Fd fd(::socket(peer.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), peer.get(), peer.length()) != 0) return std::nullopt;
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&storage), &length) != 0) return std::nullopt;
  return SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&storage), length).host();
}

bool
is_self_connect(int fd, const SocketAddress& peer)
{
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return false;
  auto local = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&storage), length);
  return local.port() == peer.port() && local.family() == peer.family() && local.host() == peer.host();
}

int
prepare_socket(int fd, int family, Protocol protocol, const std::optional<SocketAddress>& source)
{
  int on = 1;
  auto level = family == AF_INET6 ? SOL_IPV6 : SOL_IP;
  auto option = family == AF_INET6 ? IPV6_RECVERR : IP_RECVERR;
  if (::setsockopt(fd, level, option, &on, sizeof on) != 0) return errno;
  // Quick ACKs off (delayed-ACK "pingpong" mode): the handshake's last ACK
  // waits for the payload, which then carries it (tcp_rcv_synsent_state_process),
  // one packet less per probe. Sending turns the mode off; it is set again
  // after the payload (on_connect_result), so the reply is not ACKed either.
  if (protocol == Protocol::tcp) delay_acks(fd);
  if (!source) return 0;
  // TCP: the port is chosen at connect(), per destination, so thousands of
  // probes from one source address do not exhaust the ephemeral range.
  if (protocol == Protocol::tcp) ::setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
  if (::bind(fd, source->get(), source->length()) != 0) return errno;
  return 0;
}

void
reset_on_close(int fd)
{
  linger hard{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
}

void
delay_acks(int fd)
{
  int off = 0;
  ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &off, sizeof off);
}

int
tcp_state(int fd)
{
  tcp_info info{};
  socklen_t length = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return -1;
  return info.tcpi_state;
}

bool
disconnect(int fd)
{
  sockaddr unspecified{};
  unspecified.sa_family = AF_UNSPEC;
  return ::connect(fd, &unspecified, sizeof unspecified) == 0;
}

std::size_t
fd_budget()
{
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  auto soft = std::size_t(limit.rlim_cur);
  return soft > 2 * k_reserved_fds ? soft - k_reserved_fds : std::max<std::size_t>(1, soft / 2);
}

bool
socket_writable(int fd)
{
  pollfd poll_fd{fd, POLLOUT, 0};
  return ::poll(&poll_fd, 1, 0) == 1 && (poll_fd.revents & (POLLOUT | POLLERR | POLLHUP)) != 0;
}

} // namespace portmatrix::probing
