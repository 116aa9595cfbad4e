// The prober's socket helpers: the syscalls that set up, inspect and close a
// probe's socket. Raw fds here stay inside probe/.
#pragma once

#include <time.h> // before linux/errqueue.h, which needs struct timespec

#include <linux/errqueue.h>
#include <sys/socket.h>

#include <cstddef>
#include <optional>
#include <string>

#include "model/types.hpp"
#include "net/address.hpp"
#include "probe/classify.hpp"

namespace portmatrix::probing {

// The first error queued on `fd` (MSG_ERRQUEUE), if any. `destination`, if
// given, receives where the datagram that caused it was going.
std::optional<sock_extended_err> read_queued_error(int fd, sockaddr_storage* destination = nullptr);

// A failed connect/send/recv, made precise by the ICMP error behind it when
// the error queue holds one. A plain RST needs no look.
Finding classify_failure(int fd, int error);

// SO_ERROR (or the errno of asking for it).
int pending_socket_error(int fd);

// The local address the kernel's route picks to reach `peer`, if any.
std::optional<std::string> route_source(const SocketAddress& peer);

// True when a TCP socket connected to itself (simultaneous open on a port of
// the ephemeral range with nothing listening): nothing listens there.
bool is_self_connect(int fd, const SocketAddress& peer);

// IP_RECVERR, TCP_QUICKACK off (TCP), and the bind to the source address.
// Returns 0 or an errno.
int prepare_socket(int fd, int family, Protocol protocol, const std::optional<SocketAddress>& source);

// SO_LINGER 0: close() sends an RST, and leaves no TIME_WAIT.
void reset_on_close(int fd);

// TCP_QUICKACK off: the delayed-ACK mode that sending, and a disconnect,
// turn off again (see prepare_socket).
void delay_acks(int fd);

// A TCP socket's state (TCP_INFO's tcpi_state: TCP_ESTABLISHED, TCP_SYN_SENT,
// ...), or -1 if it cannot be asked.
int tcp_state(int fd);

// connect(AF_UNSPEC): ends a TCP socket's connection (an RST if it is still
// up, no TIME_WAIT) and gives its local port back, so it can connect again.
bool disconnect(int fd);

// File descriptors probes may hold: the soft RLIMIT_NOFILE less a reserve.
std::size_t fd_budget();

// True when a non-blocking connect has finished (successfully or not).
bool socket_writable(int fd);

} // namespace portmatrix::probing
