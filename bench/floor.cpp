// The floor: what the kernel can do on this machine with the least possible
// user-space work, the reference the live check's probe rate is compared
// with (bench/run.sh). Deliberately minimal and self-contained (raw syscalls,
// no portmatrix code): a probe is one syscall out and one event back.
//
//   floor tcp  ADDRESS MIN MAX [--parallel N] [--timeout-ms T]
//       N non-blocking connects in flight (epoll); a connect is "open" when it
//       completes, "refused" on RST, "timeout" when nothing came within T;
//       every socket is closed with SO_LINGER 0 (a RST, no TIME_WAIT).
//   floor udp  ADDRESS MIN MAX [--parallel N] [--timeout-ms T]
//       one unconnected socket sends a datagram to each port (N awaiting a
//       reply at most) and counts replies from that port ("open"), ICMP port
//       unreachable read from the error queue ("refused"), and silence
//       ("timeout"). No resend: a lost datagram is a timeout.
//   floor echo ADDRESS MIN MAX [--ready-file F]
//       binds a UDP socket on every port and sends every datagram back, until
//       SIGTERM/SIGINT; writes F (the socket count) once bound.
//
// tcp and udp print one JSON line:
//   {"mode":"tcp","probes":2768,"open":2768,"refused":0,"timeout":0,"seconds":0.0123,"probes_per_s":225000}
// Exit status: 0 done, 2 usage or setup error.
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <string>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Args
{
  std::string mode;
  sockaddr_in address{};
  int min = 0;
  int max = 0;
  int parallel = 4096;
  std::chrono::milliseconds timeout{1000};
  std::string ready_file;
};

struct Counts
{
  long open = 0;
  long refused = 0;
  long timeout = 0;
};

[[noreturn]] void
die(const char* what)
{
  std::fprintf(stderr, "floor: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

[[noreturn]] void
usage()
{
  std::fprintf(stderr, "usage: floor tcp|udp ADDRESS MIN MAX [--parallel N] [--timeout-ms T]\n"
                       "       floor echo ADDRESS MIN MAX [--ready-file F]\n");
  std::exit(2);
}

int
number(const char* text, int low, int high)
{
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || value < low || value > high) usage();
  return int(value);
}

Args
parse(int argc, char** argv)
{
  if (argc < 5) usage();
  Args args;
  args.mode = argv[1];
  if (args.mode != "tcp" && args.mode != "udp" && args.mode != "echo") usage();
  args.address.sin_family = AF_INET;
  if (::inet_pton(AF_INET, argv[2], &args.address.sin_addr) != 1) usage();
  args.min = number(argv[3], 1, 65535);
  args.max = number(argv[4], args.min, 65535);
  for (int i = 5; i < argc; i += 2) {
    if (i + 1 >= argc) usage();
    std::string option = argv[i];
    if (option == "--parallel") args.parallel = number(argv[i + 1], 1, 1 << 20);
    else if (option == "--timeout-ms") args.timeout = std::chrono::milliseconds(number(argv[i + 1], 1, 600000));
    else if (option == "--ready-file") args.ready_file = argv[i + 1];
    else usage();
  }
  return args;
}

void
raise_fd_limit()
{
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

sockaddr_in
to_port(const Args& args, int port)
{
  sockaddr_in target = args.address;
  target.sin_port = htons(std::uint16_t(port));
  return target;
}

void
close_with_reset(int fd)
{
  linger hard{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  ::close(fd);
}

Counts
run_tcp(const Args& args)
{
  struct Slot
  {
    int fd = -1; // -1 once finished
    Clock::time_point deadline;
  };
  Counts counts;
  int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) die("epoll_create1");
  std::vector<Slot> slots(std::size_t(args.max - args.min + 1));
  std::deque<std::uint32_t> started; // slot indices in start order: deadlines are ordered too
  int in_flight = 0;
  int next = args.min;
  std::vector<epoll_event> events(1024);
  auto finish = [&](Slot& slot) {
    ::epoll_ctl(epoll, EPOLL_CTL_DEL, slot.fd, nullptr);
    close_with_reset(slot.fd);
    slot.fd = -1;
    --in_flight;
  };
  while (next <= args.max || in_flight > 0) {
    while (next <= args.max && in_flight < args.parallel) {
      auto index = std::uint32_t(next - args.min);
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) die("socket");
      auto target = to_port(args, next++);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0 && errno != EINPROGRESS) {
        ++counts.refused;
        ::close(fd);
        continue;
      }
      epoll_event event{};
      event.events = EPOLLOUT;
      event.data.u32 = index;
      if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0) die("epoll_ctl");
      slots[index] = {fd, Clock::now() + args.timeout};
      started.push_back(index);
      ++in_flight;
    }
    while (!started.empty() && slots[started.front()].fd < 0) started.pop_front();
    if (started.empty()) continue;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(slots[started.front()].deadline - Clock::now());
    int n = ::epoll_wait(epoll, events.data(), int(events.size()), int(std::max<long>(0, wait.count() + 1)));
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; ++i) {
      Slot& slot = slots[events[std::size_t(i)].data.u32];
      int error = 0;
      socklen_t size = sizeof error;
      ::getsockopt(slot.fd, SOL_SOCKET, SO_ERROR, &error, &size);
      if (error == 0) ++counts.open;
      else ++counts.refused;
      finish(slot);
    }
    auto now = Clock::now();
    for (; !started.empty(); started.pop_front()) {
      Slot& slot = slots[started.front()];
      if (slot.fd >= 0 && slot.deadline > now) break;
      if (slot.fd >= 0) {
        ++counts.timeout;
        finish(slot);
      }
    }
  }
  ::close(epoll);
  return counts;
}

Counts
run_udp(const Args& args)
{
  Counts counts;
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int on = 1;
  int buffer = 16 << 20;
  ::setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof on);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer);
  int ports = args.max - args.min + 1;
  std::vector<char> answered(std::size_t(ports), 0);
  std::deque<std::pair<int, Clock::time_point>> waiting; // port, deadline, in send order
  long outstanding = 0;
  int next = args.min;
  char payload[32] = "floor";
  char reply[2048];
  int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{EPOLLIN | EPOLLERR, {.fd = fd}};
  if (epoll < 0 || ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0) die("epoll");
  while (next <= args.max || outstanding > 0) {
    while (next <= args.max && outstanding < args.parallel) {
      auto target = to_port(args, next);
      if (::sendto(fd, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&target), sizeof target) < 0) {
        if (errno == EAGAIN || errno == ENOBUFS) break;
        // With IP_RECVERR an earlier datagram's ICMP error fails the next send
        // once (it is in the error queue too); nothing was sent: send again.
        if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
        die("sendto");
      }
      waiting.emplace_back(next, Clock::now() + args.timeout);
      ++outstanding;
      ++next;
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(waiting.front().second - Clock::now());
    epoll_event ready{};
    if (::epoll_wait(epoll, &ready, 1, int(std::max<long>(0, wait.count() + 1))) < 0 && errno != EINTR) die("epoll_wait");
    for (;;) { // replies
      sockaddr_in from{};
      socklen_t size = sizeof from;
      if (::recvfrom(fd, reply, sizeof reply, 0, reinterpret_cast<sockaddr*>(&from), &size) < 0) break;
      int port = ntohs(from.sin_port);
      if (port < args.min || port > args.max || answered[std::size_t(port - args.min)]) continue;
      answered[std::size_t(port - args.min)] = 1;
      ++counts.open;
      --outstanding;
    }
    for (;;) { // ICMP errors: the offending destination port is in the returned header
      sockaddr_in to{};
      char control[512];
      iovec io{reply, sizeof reply};
      msghdr message{};
      message.msg_name = &to;
      message.msg_namelen = sizeof to;
      message.msg_iov = &io;
      message.msg_iovlen = 1;
      message.msg_control = control;
      message.msg_controllen = sizeof control;
      if (::recvmsg(fd, &message, MSG_ERRQUEUE) < 0) break;
      int port = ntohs(to.sin_port);
      if (port < args.min || port > args.max || answered[std::size_t(port - args.min)]) continue;
      answered[std::size_t(port - args.min)] = 1;
      ++counts.refused;
      --outstanding;
    }
    auto now = Clock::now();
    while (!waiting.empty() && (answered[std::size_t(waiting.front().first - args.min)] || waiting.front().second <= now)) {
      int port = waiting.front().first;
      if (!answered[std::size_t(port - args.min)]) {
        answered[std::size_t(port - args.min)] = 2; // timed out: a late reply no longer counts
        ++counts.timeout;
        --outstanding;
      }
      waiting.pop_front();
    }
  }
  ::close(epoll);
  ::close(fd);
  return counts;
}

volatile std::sig_atomic_t g_stop = 0;

void
run_echo(const Args& args)
{
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });
  int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) die("epoll_create1");
  int bound = 0;
  for (int port = args.min; port <= args.max; ++port) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    auto address = to_port(args, port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) die("bind");
    epoll_event event{EPOLLIN, {.fd = fd}};
    if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0) die("epoll_ctl");
    ++bound;
  }
  if (!args.ready_file.empty()) {
    FILE* ready = std::fopen(args.ready_file.c_str(), "w");
    if (ready == nullptr) die("ready file");
    std::fprintf(ready, "%d\n", bound);
    std::fclose(ready);
  }
  std::vector<epoll_event> events(1024);
  char buffer[2048];
  while (!g_stop) {
    int n = ::epoll_wait(epoll, events.data(), int(events.size()), 200);
    for (int i = 0; i < n; ++i) {
      int fd = events[std::size_t(i)].data.fd;
      sockaddr_in from{};
      socklen_t size = sizeof from;
      ssize_t length;
      while ((length = ::recvfrom(fd, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from), &size)) >= 0) {
        ::sendto(fd, buffer, std::size_t(length), 0, reinterpret_cast<sockaddr*>(&from), size);
        size = sizeof from;
      }
    }
  }
}

} // namespace

int
main(int argc, char** argv)
{
  Args args = parse(argc, argv);
  raise_fd_limit();
  if (args.mode == "echo") {
    run_echo(args);
    return 0;
  }
  auto start = Clock::now();
  Counts counts = args.mode == "tcp" ? run_tcp(args) : run_udp(args);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  long probes = args.max - args.min + 1;
  std::printf("{\"mode\":\"%s\",\"probes\":%ld,\"open\":%ld,\"refused\":%ld,\"timeout\":%ld,\"seconds\":%.4f,"
              "\"probes_per_s\":%.0f}\n",
              args.mode.c_str(), probes, counts.open, counts.refused, counts.timeout, seconds, probes / seconds);
  return 0;
}
