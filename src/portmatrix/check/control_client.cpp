#include "check/control_client.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "agent/control_channel.hpp"

namespace portmatrix {

struct ControlCall::Impl
{
  Impl(EventLoop& loop, const Token& token, SocketAddress agent, const ControlRequest& request,
       std::function<void(ControlResult)> done)
    : loop(loop), agent(agent), node(request.node), channel(token, ChannelSide::client, request.node, k_max_response_bytes),
      id(request.id), done(std::move(done))
  {
    channel.send(encode_request(request)); // sent once the handshake completed
    out = channel.take_output();           // the ClientHello
  }

  ~Impl()
  {
    loop.cancel(timer);
    if (fd) loop.remove(fd.get());
  }

  void start(EventLoop::Clock::time_point deadline)
  {
    timer = loop.at(deadline, [this] { finish(unexpected(fmt::format("no answer from {} in time", agent.to_string()))); });
    fd.reset(::socket(agent.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      fail_errno("socket");
      return;
    }
    if (::connect(fd.get(), agent.get(), agent.length()) != 0 && errno != EINPROGRESS) {
      fail_errno("connect");
      return;
    }
    loop.add(fd.get(), EPOLLOUT | EPOLLIN, [this](std::uint32_t events) { on_io(events); });
  }

  void fail_errno(const char* what)
  {
    finish(unexpected(fmt::format("{} to agent {}: {}", what, agent.to_string(), std::strerror(errno))));
  }

  void on_io(std::uint32_t events)
  {
    if (!connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int error = 0;
      socklen_t length = sizeof(error);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) {
        errno = error;
        fail_errno("connect");
        return;
      }
      connected = true;
    }
    if (!connected) return;
    if (!flush()) return;
    if ((events & EPOLLOUT) && out.empty()) loop.modify(fd.get(), EPOLLIN);
    char buffer[65536];
    for (;;) {
      auto n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
      if (n > 0) {
        channel.feed({buffer, std::size_t(n)});
        if (!take_response()) return;
        continue;
      }
      if (n == 0) {
        finish(unexpected(fmt::format("agent {} closed the connection", agent.to_string())));
        return;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      fail_errno("recv");
      return;
    }
  }

  // Takes what the channel has (its handshake answers, the request once
  // keyed) and finishes with the response. False when finished.
  bool take_response()
  {
    auto next = channel.next();
    out += channel.take_output();
    if (!flush()) return false;
    if (!out.empty()) loop.modify(fd.get(), EPOLLIN | EPOLLOUT);
    if (!next) {
      const auto& error = next.error();
      finish(unexpected(error.kind == ChannelError::Kind::alert
                          ? fmt::format("agent on {} ({}) refused: {}", node, agent.to_string(), error.message)
                          : fmt::format("agent on {} ({}): {}", node, agent.to_string(), error.message)));
      return false;
    }
    if (!*next) return true;
    auto response = decode_response(**next);
    if (response && response->id != id) response = unexpected(std::string("response to another request"));
    finish(std::move(response));
    return false;
  }

  // Writes what is pending; false when the call failed.
  bool flush()
  {
    while (!out.empty()) {
      auto n = ::send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out.erase(0, std::size_t(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return true;
      } else {
        fail_errno("send");
        return false;
      }
    }
    return true;
  }

  void finish(ControlResult result)
  {
    if (finished) return;
    finished = true;
    loop.cancel(timer);
    if (fd) {
      loop.remove(fd.get());
      fd.reset();
    }
    // The callback may destroy the ControlCall (and so this Impl): call it last.
    auto callback = std::move(done);
    callback(std::move(result));
  }

  EventLoop& loop;
  SocketAddress agent;
  std::string node;
  ControlChannel channel;
  std::string out; // bytes not written yet
  std::string id;
  std::function<void(ControlResult)> done;
  Fd fd;
  std::uint64_t timer = 0;
  bool connected = false;
  bool finished = false;
};

ControlCall::ControlCall(EventLoop& loop, const Token& token, SocketAddress agent, const ControlRequest& request,
                         EventLoop::Clock::time_point deadline, std::function<void(ControlResult)> done)
  : m_impl(std::make_unique<Impl>(loop, token, agent, request, std::move(done)))
{
  m_impl->start(deadline);
}

ControlCall::~ControlCall() = default;

} // namespace portmatrix
