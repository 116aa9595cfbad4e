// The agent's control server: its connections (accepted, capped, timed out,
// TLS 1.3 with the node's PSK), messages read and written, each request
// checked and dispatched (agent_requests.cpp answers it). See agent.cpp.

#include "agent/agent_impl.hpp"

namespace portmatrix {

void
Agent::Impl::accept_all()
{
  for (;;) {
    Fd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;
    if (connections.size() >= k_max_control_connections && !evict_unauthenticated()) {
      continue; // closed: every slot holds an authenticated client
    }
    auto connection = std::make_unique<Connection>();
    connection->id = next_connection++;
    connection->fd = std::move(fd);
    connection->channel.emplace(token, ChannelSide::agent, node.name, k_max_request_bytes);
    auto id = connection->id;
    int raw = connection->fd.get();
    connection->auth_timer = loop.after(k_control_auth_timeout, [this, id] {
      // A peer whose TLS handshake completed holds the token: the timer is
      // for strangers, not for a large request still arriving.
      auto proved = [](Connection* c) { return c->authenticated || c->channel->keyed(); };
      if (auto* late = find(id); !late || proved(late)) return;
      // A request may be waiting in the socket while this loop was behind
      // (a stopped or starved agent): read it before judging.
      on_io(id, EPOLLIN);
      if (auto* late = find(id); late && !proved(late)) {
        limited.event("control connections closed unauthenticated",
                      fmt::format("closed a control connection that sent no authenticated request within {} s",
                                  k_control_auth_timeout.count()));
        close(id);
      }
    });
    connections.emplace(id, std::move(connection));
    loop.add(raw, EPOLLIN, [this, id](std::uint32_t events) { on_io(id, events); });
    touch(id);
  }
}

// Frees a slot for a new connection: closes the oldest connection that
// has not authenticated, after reading what it sent (a stranger's bytes
// are refused and close it by themselves). Connections whose TLS hello was
// accepted go last: a client with the token is mid-handshake there, while
// a flood of strangers takes the other slots. Keyed and authenticated
// connections are never closed for a newcomer. False when none was closed.
bool
Agent::Impl::evict_unauthenticated()
{
  for (bool accepted_too : {false, true}) {
    for (auto it = connections.begin(); it != connections.end();) { // ordered by id: oldest first
      auto id = it->first;
      ++it; // reading below may close this connection, never another
      auto* connection = find(id);
      if (!connection || connection->authenticated || connection->channel->keyed()) continue;
      if (!accepted_too) {
        on_io(id, EPOLLIN);
        connection = find(id);
        if (!connection) return true; // refused or gone: its slot is free
        if (connection->authenticated || connection->channel->keyed() || connection->channel->hello_accepted()) {
          continue;
        }
      }
      close(id);
      return true;
    }
  }
  return false;
}

Agent::Impl::Connection*
Agent::Impl::find(std::uint64_t id)
{
  auto it = connections.find(id);
  return it == connections.end() ? nullptr : it->second.get();
}

void
Agent::Impl::touch(std::uint64_t id)
{
  auto* connection = find(id);
  if (!connection) return;
  loop.cancel(connection->idle_timer);
  connection->idle_timer = loop.after(k_control_idle_timeout, [this, id] {
    // A connection that waits for its own probing (a large cluster's
    // ranges take long on a busy host) is not idle.
    if (auto* waiting = find(id); waiting && waiting->probing > 0) {
      touch(id);
      return;
    }
    close(id);
  });
}

void
Agent::Impl::close(std::uint64_t id)
{
  auto it = connections.find(id);
  if (it == connections.end()) return;
  loop.cancel(it->second->idle_timer);
  loop.cancel(it->second->auth_timer);
  loop.remove(it->second->fd.get());
  connections.erase(it);
}

void
Agent::Impl::on_io(std::uint64_t id, std::uint32_t events)
{
  auto* connection = find(id);
  if (!connection) return;
  if (events & EPOLLOUT) flush(*connection);
  if (!(connection = find(id))) return;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    // Each read goes through TLS at once: the handshake first (bounded
    // bytes), then records whose tag is checked before any of it is used.
    char buffer[16384];
    for (;;) {
      auto n = ::recv(connection->fd.get(), buffer, sizeof(buffer), 0);
      if (n > 0) {
        connection->channel->feed({buffer, std::size_t(n)});
        touch(id);
        if (!take_messages(id) || !(connection = find(id))) return;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        close(id);
        return;
      }
      if (errno != EINTR) break;
    }
  }
}

// Handles the whole messages received so far; false when the connection
// is closed or closing.
bool
Agent::Impl::take_messages(std::uint64_t id)
{
  for (auto* connection = find(id); connection && !connection->close_after_write; connection = find(id)) {
    auto message = connection->channel->next();
    auto output = connection->channel->take_output(); // the handshake's answers, or an alert
    if (!message) {
      refuse(id, message.error(), output);
      return false;
    }
    if (!output.empty()) {
      write(id, output, false);
      if (!(connection = find(id))) return false;
    }
    if (!*message) return true;
    handle(id, **message);
  }
  return false;
}

// A peer the channel refused (another token or node, not TLS 1.3, an
// oversized handshake or message): OpenSSL's alert (`output`), then the connection ends.
void
Agent::Impl::refuse(std::uint64_t id, const ChannelError& error, std::string_view output)
{
  if (error.kind == ChannelError::Kind::alert || error.kind == ChannelError::Kind::closed) {
    close(id);
    return;
  }
  ++rejected;
  limited.event("rejected control requests",
                fmt::format("rejected a control request: {}",
                            error.kind == ChannelError::Kind::unauthenticated ? error.message : "refused: " + error.message));
  write(id, output, true);
}

// Sends `response`, encrypted for the connection's client.
void
Agent::Impl::send(std::uint64_t id, const ControlResponse& response, bool close_after)
{
  auto* connection = find(id);
  if (!connection) return;
  connection->channel->send(encode_response(response));
  write(id, connection->channel->take_output(), close_after);
}

void
Agent::Impl::write(std::uint64_t id, std::string_view bytes, bool close_after)
{
  auto* connection = find(id);
  if (!connection) return;
  connection->out += bytes;
  connection->close_after_write = connection->close_after_write || close_after;
  flush(*connection);
}

void
Agent::Impl::flush(Connection& connection)
{
  auto id = connection.id;
  while (!connection.out.empty()) {
    auto n = ::send(connection.fd.get(), connection.out.data(), connection.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      connection.out.erase(0, std::size_t(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      loop.modify(connection.fd.get(), EPOLLIN | EPOLLOUT);
      return;
    }
    close(id);
    return;
  }
  loop.modify(connection.fd.get(), EPOLLIN);
  if (connection.close_after_write) close(id);
}

void
Agent::Impl::reply_error(std::uint64_t id, const std::string& request_id, std::string_view message, bool close_after)
{
  ++rejected;
  limited.event("rejected control requests", fmt::format("rejected a control request: {}", message));
  send(id, {request_id, false, error_body(message)}, close_after);
}

void
Agent::Impl::handle(std::uint64_t id, const std::string& message)
{
  auto request = decode_request(message);
  if (!request) {
    reply_error(id, "", request.error(), true);
    return;
  }
  // Recorded on its way to another node, or before this agent restarted:
  // its handshake fails already; the request says so too.
  if (request->node != node.name) {
    reply_error(id, request->id,
                fmt::format("a request for node '{}' reached the agent on {}; refused", request->node, node.name),
                true);
    return;
  }
  if (request->type != "hello" && request->instance != instance) {
    reply_error(id, request->id,
                fmt::format("a request for an earlier run of the agent on {} (it restarted since the check's "
                            "hello); refused",
                            node.name),
                true);
    return;
  }
  std::string why;
  if (!replay.accept(*request, now_ms(), why)) {
    reply_error(id, request->id, why, true);
    return;
  }
  if (auto* connection = find(id)) connection->authenticated = true;
  // Probing and what arrived belong to a running check: its window must be open.
  if ((request->type == "probe" || request->type == "observed") && capture.window_left(request->window).count() <= 0) {
    reply_error(id, request->id,
                fmt::format("window {} of the agent on {} is closed (its check ended, or its deadline passed); "
                            "refused",
                            request->window, node.name),
                false);
    return;
  }
  if (request->type == "hello") {
    handle_hello(id, *request);
  } else if (request->type == "probe") {
    handle_probe(id, *request);
  } else if (request->type == "observed") {
    handle_observed(id, *request);
  } else if (request->type == "done") {
    handle_done(id, *request);
  } else if (request->type == "egress") {
    handle_egress(id, *request);
  } else if (request->type == "evaluate") {
    handle_evaluate(id, *request);
  } else {
    reply_error(id, request->id, "unknown request type '" + request->type + "'", true);
  }
}

} // namespace portmatrix
