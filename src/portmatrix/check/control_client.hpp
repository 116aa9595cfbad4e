// One request to one agent over the control channel: connect, a TLS 1.3
// handshake with the PSK of the request's node (agent/control_channel.hpp),
// the request, one response, all non-blocking on an EventLoop and bounded
// by a deadline. The callback runs exactly once.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "agent/control_protocol.hpp"
#include "crypto/hmac.hpp"
#include "net/address.hpp"
#include "net/event_loop.hpp"

namespace portmatrix {

using ControlResult = Expected<ControlResponse, std::string>;

class ControlCall
{
public:
  // Starts the call. `loop` and `token` must outlive it; destroying the call
  // before the callback ran cancels it silently.
  ControlCall(EventLoop& loop, const Token& token, SocketAddress agent, const ControlRequest& request,
              EventLoop::Clock::time_point deadline, std::function<void(ControlResult)> done);
  ~ControlCall();
  ControlCall(const ControlCall&) = delete;
  ControlCall& operator=(const ControlCall&) = delete;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace portmatrix
