// The reader is a forked copy of the agent taken before confinement: it
// keeps the privileges the agent drops, and uses them for one fixed thing.
// Its socket carries, one way, a byte ("read now"), the other way a frame
// "<length>\n<json>" (encode_firewall_text). The agent never waits for it:
// the frame is read on the loop as it comes.
#include "agent/firewall_reader.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace portmatrix {

namespace {

// More than any ruleset's text; a frame claiming more is refused.
constexpr std::size_t k_max_frame = 256u << 20;

bool
write_all(int fd, std::string_view data)
{
  while (!data.empty()) {
    auto sent = ::write(fd, data.data(), data.size());
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    data.remove_prefix(std::size_t(sent));
  }
  return true;
}

[[noreturn]] void
serve(int fd, pid_t agent)
{
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != agent) ::_exit(0); // the agent died before the line above
  // What it runs needs CAP_NET_ADMIN (and iptables CAP_NET_RAW), nothing more:
  // the bounding set keeps those two, so the programs get no other capability.
  for (int capability = 0; capability <= 63; ++capability) {
    if (capability == CAP_NET_ADMIN || capability == CAP_NET_RAW) continue;
    if (::prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 && errno == EINVAL) break; // past the last one
  }
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  for (;;) {
    char request = 0;
    auto got = ::read(fd, &request, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) ::_exit(0);
    auto json = encode_firewall_text(read_firewall_text());
    if (!write_all(fd, fmt::format("{}\n", json.size())) || !write_all(fd, json)) ::_exit(0);
  }
}

} // namespace

std::string
encode_firewall_text(const FirewallText& text)
{
  nlohmann::json out{{"nft_present", text.nft_present}, {"nft_status", text.nft_status}, {"nft", text.nft},
                     {"iptables", text.iptables},         {"ip6tables", text.ip6tables},   {"ipset", text.ipset}};
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Expected<FirewallText, std::string>
decode_firewall_text(std::string_view json)
{
  auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return unexpected(std::string("the firewall reader sent bad JSON"));
  try {
    FirewallText text;
    text.nft_present = parsed.at("nft_present").get<bool>();
    text.nft_status = parsed.at("nft_status").get<int>();
    text.nft = parsed.at("nft").get<std::string>();
    text.iptables = parsed.at("iptables").get<std::string>();
    text.ip6tables = parsed.at("ip6tables").get<std::string>();
    text.ipset = parsed.at("ipset").get<std::string>();
    return text;
  } catch (const nlohmann::json::exception& e) {
    return unexpected(std::string("the firewall reader's answer: ") + e.what());
  }
}

struct FirewallReader::State
{
  Fd socket;
  std::string error; // set: every read answers with it
  EventLoop* loop = nullptr;
  std::deque<std::function<void(FirewallTextResult)>> waiting; // the first is being read
  std::string buffer;
  std::uint64_t timer = 0;
  std::chrono::milliseconds timeout{20000};

  void finish(FirewallTextResult result)
  {
    if (timer) loop->cancel(timer);
    timer = 0;
    buffer.clear();
    auto callback = std::move(waiting.front());
    waiting.pop_front();
    callback(std::move(result));
    if (!waiting.empty()) ask();
  }

  void fail(std::string why)
  {
    error = std::move(why);
    if (socket) loop->remove(socket.get());
    socket.reset();
    while (!waiting.empty()) finish(unexpected(error));
  }

  void ask()
  {
    if (!error.empty()) {
      finish(unexpected(error));
      return;
    }
    if (!write_all(socket.get(), "r")) {
      fail(fmt::format("the firewall reader is gone: {}", std::strerror(errno)));
      return;
    }
    timer = loop->after(timeout, [this] {
      timer = 0;
      fail("the firewall reader did not answer in time");
    });
  }

  void readable()
  {
    char chunk[65536];
    for (;;) {
      auto got = ::read(socket.get(), chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (got <= 0) {
        fail("the firewall reader ended");
        return;
      }
      buffer.append(chunk, std::size_t(got));
    }
    auto newline = buffer.find('\n');
    if (newline == std::string::npos) return;
    std::size_t length = 0;
    try {
      length = std::stoul(buffer.substr(0, newline));
    } catch (const std::exception&) {
      fail("the firewall reader sent a bad frame");
      return;
    }
    if (length > k_max_frame) {
      fail("the firewall reader sent too much");
      return;
    }
    if (buffer.size() < newline + 1 + length) return;
    if (waiting.empty()) {
      fail("the firewall reader answered what was not asked");
      return;
    }
    finish(decode_firewall_text(std::string_view(buffer).substr(newline + 1, length)));
  }
};

FirewallReader::FirewallReader() : m_state(std::make_shared<State>())
{
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    m_state->error = fmt::format("cannot start the firewall reader: {}", std::strerror(errno));
    return;
  }
  auto agent = ::getpid();
  auto pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    serve(fds[1], agent);
  }
  ::close(fds[1]);
  m_state->socket.reset(fds[0]);
  if (pid < 0) {
    m_state->error = fmt::format("cannot start the firewall reader: {}", std::strerror(errno));
    m_state->socket.reset();
  }
}

// The socket closes when the last source of it is gone too (closing it takes
// it out of the loop's epoll set).
FirewallReader::~FirewallReader() = default;

FirewallSource
FirewallReader::source(EventLoop& loop, std::chrono::milliseconds timeout)
{
  auto state = m_state;
  state->loop = &loop;
  state->timeout = timeout;
  if (state->socket) {
    int flags = ::fcntl(state->socket.get(), F_GETFL);
    ::fcntl(state->socket.get(), F_SETFL, flags | O_NONBLOCK);
    loop.add(state->socket.get(), EPOLLIN, [weak = std::weak_ptr<State>(state)](std::uint32_t) {
      if (auto alive = weak.lock()) alive->readable();
    });
  }
  return [state](std::function<void(FirewallTextResult)> done) {
    state->waiting.push_back(std::move(done));
    if (state->waiting.size() == 1) state->ask();
  };
}

FirewallSource
read_here()
{
  return [](std::function<void(FirewallTextResult)> done) { done(read_firewall_text()); };
}

} // namespace portmatrix
