// Before the cluster exists there is no kube-apiserver behind the VIP, so the
// load balancer's health check (GET /healthz over TLS, as `portmatrix lb`
// generates it after the kubeadm HA guide) would mark every master down and
// the VIP check would fail. The agent therefore answers that check itself on
// the API port: a connection whose first byte is a TLS handshake is handed to
// this server, which completes TLS with a throw-away self-signed certificate
// (the check uses `verify none`) and answers /healthz, /livez and /readyz
// with 200 "ok". Plain connections keep getting the identity exchange.
#pragma once

#include <memory>
#include <string>

#include "net/event_loop.hpp"
#include "net/fd.hpp"

namespace portmatrix {

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

  // Takes over an accepted, non-blocking connection whose pending bytes start
  // a TLS handshake. Answers one request, then closes; 5 s at most.
  void adopt(Fd connection);
  std::uint64_t answered() const;

  // True when `first_byte` starts a TLS record (handshake, content type 22).
  static bool looks_like_tls(unsigned char first_byte) { return first_byte == 0x16; }

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace portmatrix
