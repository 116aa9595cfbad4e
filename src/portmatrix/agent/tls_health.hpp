// Before the cluster exists there is no kube-apiserver behind the VIP, so the
// load balancer's health check (GET /healthz over TLS, as `portmatrix lb`
// generates it after the kubeadm HA guide) would mark every master down and
// the VIP check would fail. The agent therefore answers that check itself on
// the API port: a connection whose first byte is a TLS handshake is handed to
// this server, which completes TLS with a throw-away self-signed certificate
// (the check uses `verify none`) and answers /healthz, /livez and /readyz
// with 200 "ok". Plain connections keep getting the identity exchange.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/event_loop.hpp"
#include "net/fd.hpp"

namespace portmatrix {

// A handshake must be done this soon (a health check's takes milliseconds).
inline constexpr std::chrono::seconds k_tls_handshake_timeout{1};
// Connections at once, and per source address other than the priority ones.
inline constexpr std::size_t k_tls_max_connections = 512;
inline constexpr std::size_t k_tls_max_per_source = 16;

class TlsHealthServer
{
public:
  // Makes a key and certificate in memory. `loop` must outlive the server.
  explicit TlsHealthServer(EventLoop& loop);
  ~TlsHealthServer();
  TlsHealthServer(const TlsHealthServer&) = delete;
  TlsHealthServer& operator=(const TlsHealthServer&) = delete;

  // False (with the reason in error()) when OpenSSL could not set up.
  bool ready() const;
  const std::string& error() const;

  // The load-balancer nodes' addresses: their checks are served first (no
  // per-source limit; never evicted; when every slot is taken, they take the
  // oldest other connection's).
  void set_priority_sources(const std::vector<std::string>& addresses);

  // Takes over an accepted, non-blocking connection whose pending bytes start
  // a TLS handshake. Answers one request, then closes; the handshake within
  // k_tls_handshake_timeout, all of it within 5 s. Past a source's share, or
  // with every slot held and none to evict, the connection is closed at once.
  void adopt(Fd connection);
  std::uint64_t answered() const;
  std::uint64_t refused() const; // closed at once: a source's share, or no slot
  std::uint64_t evicted() const; // closed to make room for a newer one

  // True when `first_byte` starts a TLS record (handshake, content type 22).
  static bool looks_like_tls(unsigned char first_byte) { return first_byte == 0x16; }

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

struct Inventory;
// The addresses of the inventory's load-balancer nodes (whose health checks
// set_priority_sources() serves first).
std::vector<std::string> load_balancer_addresses(const Inventory& inventory);

} // namespace portmatrix
