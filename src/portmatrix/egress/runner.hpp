// The egress check: from this host, for every target, DNS through the system
// resolver, a TCP connection, and (for TLS targets) a handshake with SNI and
// certificate verification against the system trust store; through an HTTP
// proxy when one applies. All targets in parallel, the whole run bounded.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "egress/proxy.hpp"
#include "plan/egress.hpp"

namespace portmatrix {

// What happened to one target. Direct: dns-failure (the resolver has no
// address: NXDOMAIN, SERVFAIL or no answer), refused (RST, ICMP unreachable
// or prohibited, or the peer closed during the TLS handshake), timeout (no
// answer to the SYN or the handshake in time), tls-untrusted (the chain does
// not end in a trusted CA, or is expired), tls-name-mismatch (trusted, but
// not for this name). Through a proxy: proxy-unreachable (the proxy's own
// address does not answer), proxy-denied (403, 407, a Proxy-Authenticate
// challenge, any other refusal of CONNECT, and for plain HTTP a 401 when we
// sent credentials: tinyproxy's answer to wrong ones), and the proxy's 500/502/503 ("could not reach the host", the
// proxy does not say why: DNS or connection) map to refused, its 504 to
// timeout; TLS through the tunnel is classified as above.
enum class EgressVerdict { ok, dns_failure, refused, timeout, tls_untrusted, tls_name_mismatch, proxy_denied, proxy_unreachable };
std::string_view to_string(EgressVerdict verdict);
std::optional<EgressVerdict> parse_egress_verdict(std::string_view text);

struct EgressOptions
{
  ProxySettings proxy;
  std::chrono::milliseconds timeout{3000};   // each step: connect, proxy answer, TLS handshake
  std::chrono::milliseconds deadline{20000}; // the whole run; what is unfinished then is reported as such
  std::size_t parallel = 64;                 // targets checked at once (one thread each)
  // Hears, on the calling thread, how many targets are done of all and the
  // time since the run began: at each finished target, at most every 250 ms.
  // May be empty.
  std::function<void(std::size_t done, std::size_t total, std::chrono::milliseconds elapsed)> progress;
};

struct EgressResult
{
  EgressTarget target;
  EgressVerdict verdict = EgressVerdict::timeout;
  std::string detail;                 // addresses tried, certificate subject/issuer, the proxy's status line
  std::vector<std::string> addresses; // what the resolver returned (direct only)
  std::string proxy;                  // "host:port" of the proxy used; empty: direct
  std::chrono::milliseconds elapsed{0};
};

// Checks every target and returns one result per target, in order. Never
// takes much longer than `options.deadline`: a target still running then (a
// resolver that does not answer) is reported with the stage it was in, and
// its thread is left to finish on its own. Safe to call from several threads.
std::vector<EgressResult> run_egress(const std::vector<EgressTarget>& targets, const EgressOptions& options);

} // namespace portmatrix
