// The agent's listeners: binds, on its node's address, every port the node
// must receive (TCP and UDP, ranges included) and answers each probe with the
// node's identity (agent/identity.hpp). A port it cannot bind is recorded
// with the process that owns it, found through /proc; such a port is then
// probed as it is (a real service answering counts as `service`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/peer_port_counts.hpp"
#include "agent/tls_health.hpp"
#include "crypto/hmac.hpp"
#include "model/types.hpp"
#include "net/event_loop.hpp"

namespace portmatrix {

struct PortOwner
{
  Protocol protocol = Protocol::tcp;
  std::uint16_t port = 0;
  int pid = 0;              // 0 when the owner could not be found
  std::string process;      // /proc/PID/comm, or empty
  std::string error;        // why the bind failed (strerror)
  std::string service;      // who answers there (identify/), e.g. "etcd 3.4.23"; empty until known
};

// The longest `service` text carried in a hello reply; longer is cut.
inline constexpr std::size_t k_max_service_text = 200;

struct ListenSpec
{
  Protocol protocol = Protocol::tcp;
  PortRange range;
};

class Responder
{
public:
  // `node` is the name put in identity replies; `address` the local address
  // to bind. `token` and `loop` must outlive the responder.
  Responder(EventLoop& loop, const Token& token, std::string node, std::string address);
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // Binds every port of `specs` (SO_REUSEADDR for TCP). Ports that cannot be
  // bound end up in owners(); the rest answer from now on.
  void bind(const std::vector<ListenSpec>& specs);

  // Connections to `port` (TCP) that open with a TLS handshake go to `server`
  // (the load balancer's health check) instead of the identity exchange.
  // `server` must outlive the responder.
  void serve_tls(TlsHealthServer& server, std::uint16_t port);

  const std::vector<PortOwner>& owners() const;
  // True when our own listener holds this port.
  bool listening(Protocol protocol, std::uint16_t port) const;
  std::size_t listener_count() const;
  std::uint64_t answered() const; // identity replies sent, TCP and UDP

  // Probes from `peer` that our listener on `port` answered after `since`
  // (an answered_mark(); 0: all): the proof that they got here, even when
  // the answer came too late for the prober. UDP: the identity reply was
  // sent (a reply our own output rules drop is not an answer). TCP: the
  // probe line was read; the reply follows unless the prober, tired of
  // waiting, has reset the connection already. Bounded like the capture's
  // counts (PeerPortCounts).
  std::uint32_t answered_to(Protocol protocol, const std::string& peer, std::uint16_t port, std::uint64_t since = 0) const;
  std::uint64_t answered_mark() const;
  // Forgets what was answered at or before `mark` (no check asks about it any
  // more) and gives its memory back; marks stay valid.
  void forget_answered_through(std::uint64_t mark);

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// The process that holds a local TCP or UDP port (from /proc/net/{tcp,udp}{,6}
// and /proc/PID/fd), or nullopt.
std::optional<std::pair<int, std::string>> find_port_owner(Protocol protocol, std::uint16_t port);

} // namespace portmatrix
