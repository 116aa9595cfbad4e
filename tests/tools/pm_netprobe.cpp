// pm_netprobe: the test helper of the network-namespace scenarios
// (tests/netns). It is not the real prober (that one lives in src/ and proves
// identities); it only answers on ports and tells, port by port, what a
// connection attempt saw, so the scenarios can compare generated firewalls
// with the requirement matrix.
//
//   pm_netprobe listen --address A [--tcp SPEC] [--udp SPEC] [--identity NAME] [--ready-file F]
//       Binds every port of SPEC ("22,6443,30000-32767"): TCP accepts, writes
//       "pm-ok NAME\n" and closes; UDP echoes each datagram to its sender.
//       Writes F once everything is bound, runs until SIGTERM or SIGINT.
//   pm_netprobe probe [--timeout-ms N] [--parallel N]
//       Reads "PROTO ADDRESS PORTMIN PORTMAX" lines on stdin and probes every
//       port of every line concurrently (at most N sockets at once); prints
//       "PROTO ADDRESS PORTMIN PORTMAX open=N refused=N filtered=N other=N"
//       per line, in input order. other = unreachable, EPERM, anything else.
//   pm_netprobe flows
//       Reads `portmatrix ports --format json` on stdin and prints one flow per
//       line: "FROM FROM_ADDRESS TO TO_ADDRESS PROTOCOL PORT_MIN PORT_MAX EXPECT".
//
// Exit status: 0 done, 1 runtime failure (a port cannot be bound), 2 usage.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;

struct Range
{
  int min = 0;
  int max = 0;
};

struct Address
{
  sockaddr_storage storage{};
  socklen_t length = 0;
};

[[noreturn]] void
usage(const std::string& message)
{
  fmt::print(stderr,
             "pm_netprobe: {}\n"
             "usage: pm_netprobe listen --address A [--tcp SPEC] [--udp SPEC] [--identity NAME] [--ready-file F]\n"
             "       pm_netprobe probe [--timeout-ms N] [--parallel N] < targets\n"
             "       pm_netprobe flows < ports.json\n",
             message);
  std::exit(2);
}

std::optional<int>
parse_int(const std::string& text, int min, int max)
{
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos) return {};
  int value = std::stoi(text);
  if (value < min || value > max) return {};
  return value;
}

// "22,6443,30000-32767" -> sorted ranges, overlaps and duplicates merged.
std::optional<std::vector<Range>>
parse_spec(const std::string& spec)
{
  std::vector<Range> ranges;
  std::stringstream stream(spec);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (item.empty()) continue;
    auto dash = item.find('-');
    auto first = parse_int(item.substr(0, dash), 1, 65535);
    auto last = dash == std::string::npos ? first : parse_int(item.substr(dash + 1), 1, 65535);
    if (!first || !last || *first > *last) return {};
    ranges.push_back({*first, *last});
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.min < b.min; });
  std::vector<Range> merged;
  for (const auto& range : ranges) {
    if (!merged.empty() && range.min <= merged.back().max + 1) {
      merged.back().max = std::max(merged.back().max, range.max);
    } else {
      merged.push_back(range);
    }
  }
  return merged;
}

std::optional<Address>
parse_address(const std::string& text, int port)
{
  Address address;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    address.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    address.length = sizeof(sockaddr_in6);
  } else {
    return {};
  }
  return address;
}

void
set_port(Address& address, int port)
{
  auto value = htons(static_cast<std::uint16_t>(port));
  if (address.storage.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&address.storage)->sin_port = value;
  } else {
    reinterpret_cast<sockaddr_in6*>(&address.storage)->sin6_port = value;
  }
}

// One socket per port: make sure the descriptor limit allows `needed`.
void
raise_nofile(rlim_t needed)
{
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= needed) return;
  limit.rlim_cur = needed;
  if (limit.rlim_max < needed) limit.rlim_max = needed; // root may raise the hard limit too
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// "--name value" pairs after the subcommand.
std::map<std::string, std::string>
parse_options(int argc, char** argv, const std::vector<std::string>& known)
{
  std::map<std::string, std::string> options;
  for (int i = 2; i < argc; i += 2) {
    std::string name = argv[i];
    if (std::find(known.begin(), known.end(), name) == known.end()) usage("unknown option " + name);
    if (i + 1 >= argc) usage("missing value for " + name);
    options[name] = argv[i + 1];
  }
  return options;
}

// listen --------------------------------------------------------------------

int
listen_command(int argc, char** argv)
{
  auto options = parse_options(argc, argv, {"--address", "--tcp", "--udp", "--identity", "--ready-file"});
  if (!options.count("--address")) usage("listen needs --address");
  auto base = parse_address(options["--address"], 0);
  if (!base) usage("bad address " + options["--address"]);
  auto tcp = parse_spec(options["--tcp"]);
  auto udp = parse_spec(options["--udp"]);
  if (!tcp || !udp) usage("bad port list");
  std::string greeting = options.count("--identity") ? "pm-ok " + options["--identity"] + "\n" : "pm-ok\n";

  std::size_t count = 0;
  for (const auto* ranges : {&*tcp, &*udp}) {
    for (const auto& range : *ranges) count += static_cast<std::size_t>(range.max - range.min + 1);
  }
  raise_nofile(count + 256);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
  int epoll = epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{EPOLLIN, {}};
  event.data.fd = signal_fd;
  epoll_ctl(epoll, EPOLL_CTL_ADD, signal_fd, &event);

  std::vector<bool> is_udp; // by descriptor
  for (bool udp_socket : {false, true}) {
    for (const auto& range : udp_socket ? *udp : *tcp) {
      for (int port = range.min; port <= range.max; ++port) {
        Address address = *base;
        set_port(address, port);
        int fd = socket(address.storage.ss_family,
                        (udp_socket ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0);
        int one = 1;
        if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address.storage), address.length) != 0 ||
            (!udp_socket && ::listen(fd, 128) != 0)) {
          fmt::print(stderr,
                     "pm_netprobe listen: cannot bind {}/{} on {}: {}\n",
                     port,
                     udp_socket ? "udp" : "tcp",
                     options["--address"],
                     std::strerror(errno));
          return 1;
        }
        if (is_udp.size() <= static_cast<std::size_t>(fd)) is_udp.resize(static_cast<std::size_t>(fd) + 1);
        is_udp[static_cast<std::size_t>(fd)] = udp_socket;
        event.data.fd = fd;
        epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
      }
    }
  }

  if (options.count("--ready-file")) {
    auto path = options["--ready-file"];
    auto temporary = path + ".tmp";
    if (FILE* file = std::fopen(temporary.c_str(), "w")) {
      fmt::print(file, "{} sockets\n", count);
      std::fclose(file);
      std::rename(temporary.c_str(), path.c_str());
    }
  }

  std::vector<epoll_event> events(256);
  char buffer[2048];
  for (;;) {
    int ready = epoll_wait(epoll, events.data(), static_cast<int>(events.size()), -1);
    if (ready < 0 && errno == EINTR) continue;
    for (int i = 0; i < ready; ++i) {
      int fd = events[static_cast<std::size_t>(i)].data.fd;
      if (fd == signal_fd) return 0; // the kernel closes every socket
      if (is_udp[static_cast<std::size_t>(fd)]) {
        sockaddr_storage peer{};
        socklen_t length = sizeof peer;
        ssize_t size;
        while ((size = recvfrom(fd, buffer, sizeof buffer, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer), &length)) >= 0) {
          sendto(fd, buffer, static_cast<std::size_t>(size), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer), length);
          length = sizeof peer;
        }
      } else {
        int client;
        while ((client = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          send(client, greeting.data(), greeting.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          close(client);
        }
      }
    }
  }
}

// probe ---------------------------------------------------------------------

enum class Outcome { pending, open, refused, filtered, other };

Outcome
classify(int error)
{
  switch (error) {
  case 0: return Outcome::open;
  case ECONNREFUSED: return Outcome::refused;
  case ETIMEDOUT: return Outcome::filtered;
  default: return Outcome::other; // EHOSTUNREACH, ENETUNREACH, EPERM, ...
  }
}

struct Target
{
  bool udp = false;
  std::string protocol, address_text;
  Address address;
  Range ports;
  int open = 0, refused = 0, filtered = 0, other = 0;

  void count(Outcome outcome)
  {
    if (outcome == Outcome::open) ++open;
    if (outcome == Outcome::refused) ++refused;
    if (outcome == Outcome::filtered) ++filtered;
    if (outcome == Outcome::other) ++other;
  }
};

struct Slot
{
  int fd = -1;
  std::size_t target = 0;
  Clock::time_point deadline, resend;
};

constexpr char k_payload[] = "pm-probe\n";

class Prober
{
public:
  Prober(std::vector<Target>& targets, std::chrono::milliseconds timeout, std::size_t parallel)
    : m_targets(targets), m_timeout(timeout), m_slots(parallel), m_epoll(epoll_create1(EPOLL_CLOEXEC))
  {
    for (std::size_t i = parallel; i-- > 0;) m_free.push_back(i);
  }

  void run()
  {
    std::vector<epoll_event> events(512);
    auto last_scan = Clock::now();
    while (start_more() || m_free.size() < m_slots.size()) {
      int ready = epoll_wait(m_epoll, events.data(), static_cast<int>(events.size()), 10);
      for (int i = 0; i < ready; ++i) on_event(events[static_cast<std::size_t>(i)].data.u32);
      auto now = Clock::now();
      if (now - last_scan < std::chrono::milliseconds(5)) continue;
      last_scan = now;
      for (std::size_t i = 0; i < m_slots.size(); ++i) {
        auto& slot = m_slots[i];
        if (slot.fd < 0) continue;
        if (now >= slot.deadline) {
          finish(i, Outcome::filtered);
        } else if (m_targets[slot.target].udp && now >= slot.resend) {
          slot.resend = slot.deadline; // a datagram may be lost: ask once more, halfway
          if (send(slot.fd, k_payload, sizeof k_payload - 1, MSG_DONTWAIT) < 0 && errno != EAGAIN) {
            finish(i, classify(errno));
          }
        }
      }
    }
  }

private:
  // Opens sockets until `parallel` are in flight; false once every port is started.
  bool start_more()
  {
    while (!m_free.empty() && m_next_target < m_targets.size()) {
      auto index = m_next_target;
      int port = m_targets[index].ports.min + m_next_port++;
      if (port == m_targets[index].ports.max) {
        ++m_next_target;
        m_next_port = 0;
      }
      start(index, port);
    }
    return m_next_target < m_targets.size();
  }

  void start(std::size_t index, int port)
  {
    auto& target = m_targets[index];
    Address address = target.address;
    set_port(address, port);
    int fd = socket(address.storage.ss_family, (target.udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      target.count(Outcome::other);
      return;
    }
    linger hard_close{1, 0}; // close with RST: no TIME_WAIT piles up
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard_close, sizeof hard_close);
    int result = connect(fd, reinterpret_cast<sockaddr*>(&address.storage), address.length);
    if (result == 0 && target.udp) result = static_cast<int>(send(fd, k_payload, sizeof k_payload - 1, 0));
    if (result < 0 && !(errno == EINPROGRESS && !target.udp)) {
      target.count(classify(errno));
      close(fd);
      return;
    }
    if (result == 0 && !target.udp) { // connected at once (same host)
      target.count(Outcome::open);
      close(fd);
      return;
    }
    auto slot = m_free.back();
    m_free.pop_back();
    auto now = Clock::now();
    m_slots[slot] = {fd, index, now + m_timeout, now + m_timeout / 2};
    epoll_event event{target.udp ? EPOLLIN : EPOLLOUT, {}};
    event.data.u32 = static_cast<std::uint32_t>(slot);
    epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &event);
  }

  void on_event(std::uint32_t index)
  {
    auto& slot = m_slots[index];
    if (slot.fd < 0) return;
    if (m_targets[slot.target].udp) {
      char buffer[64];
      if (recv(slot.fd, buffer, sizeof buffer, MSG_DONTWAIT) >= 0) {
        finish(index, Outcome::open);
      } else if (errno != EAGAIN) {
        finish(index, classify(errno)); // ECONNREFUSED: ICMP port unreachable
      }
      return;
    }
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(slot.fd, SOL_SOCKET, SO_ERROR, &error, &length);
    finish(index, classify(error));
  }

  void finish(std::size_t index, Outcome outcome)
  {
    auto& slot = m_slots[index];
    m_targets[slot.target].count(outcome);
    close(slot.fd); // also leaves the epoll set
    slot.fd = -1;
    m_free.push_back(index);
  }

  std::vector<Target>& m_targets;
  std::chrono::milliseconds m_timeout;
  std::vector<Slot> m_slots;
  std::vector<std::size_t> m_free;
  int m_epoll;
  std::size_t m_next_target = 0;
  int m_next_port = 0;
};

int
probe_command(int argc, char** argv)
{
  auto options = parse_options(argc, argv, {"--timeout-ms", "--parallel"});
  auto timeout = parse_int(options.count("--timeout-ms") ? options["--timeout-ms"] : "1000", 1, 600000);
  auto parallel = parse_int(options.count("--parallel") ? options["--parallel"] : "4096", 1, 65536);
  if (!timeout || !parallel) usage("bad --timeout-ms or --parallel");

  std::vector<Target> targets;
  std::string line;
  for (int number = 1; std::getline(std::cin, line); ++number) {
    std::istringstream fields(line);
    Target target;
    std::string first, last, extra;
    if (!(fields >> target.protocol)) continue; // blank line
    fields >> target.address_text >> first >> last;
    auto min = parse_int(first, 1, 65535);
    auto max = parse_int(last, 1, 65535);
    auto address = parse_address(target.address_text, 0);
    if ((target.protocol != "tcp" && target.protocol != "udp") || !address || !min || !max || *min > *max ||
        (fields >> extra)) {
      usage(fmt::format("stdin:{}: expected \"tcp|udp ADDRESS PORTMIN PORTMAX\", got \"{}\"", number, line));
    }
    target.udp = target.protocol == "udp";
    target.address = *address;
    target.ports = {*min, *max};
    targets.push_back(std::move(target));
  }

  raise_nofile(static_cast<rlim_t>(*parallel) + 64);
  signal(SIGPIPE, SIG_IGN);
  Prober(targets, std::chrono::milliseconds(*timeout), static_cast<std::size_t>(*parallel)).run();
  for (const auto& target : targets) {
    fmt::print("{} {} {} {} open={} refused={} filtered={} other={}\n",
               target.protocol,
               target.address_text,
               target.ports.min,
               target.ports.max,
               target.open,
               target.refused,
               target.filtered,
               target.other);
  }
  return 0;
}

// flows ---------------------------------------------------------------------

int
flows_command()
{
  nlohmann::json report;
  try {
    report = nlohmann::json::parse(std::cin);
    for (const auto& flow : report.at("flows")) {
      fmt::print("{} {} {} {} {} {} {} {}\n",
                 flow.at("from").get<std::string>(),
                 flow.at("from_address").get<std::string>(),
                 flow.at("to").get<std::string>(),
                 flow.at("to_address").get<std::string>(),
                 flow.at("protocol").get<std::string>(),
                 flow.at("port_min").get<int>(),
                 flow.at("port_max").get<int>(),
                 flow.at("expect").get<std::string>());
    }
  } catch (const nlohmann::json::exception& error) {
    fmt::print(stderr, "pm_netprobe flows: {}\n", error.what());
    return 2;
  }
  return 0;
}

} // namespace

int
main(int argc, char** argv)
{
  std::string command = argc > 1 ? argv[1] : "";
  if (command == "listen") return listen_command(argc, argv);
  if (command == "probe") return probe_command(argc, argv);
  if (command == "flows" && argc == 2) return flows_command();
  usage(command.empty() ? "missing command" : "unknown command " + command);
}
