// The egress check, one blocking worker per target on a bounded pool of
// threads. Blocking calls with per-step timeouts keep each target's story
// readable (resolve, connect, CONNECT, handshake); getaddrinfo cannot be
// bounded at all, which is why the coordinator, not the workers, enforces the
// deadline: it waits for the results until then, reports the stragglers by
// the stage they are in, and leaves their threads to finish on their own
// (their state is shared, so nothing they touch goes away).
#include "egress/runner.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/fd.hpp"

namespace portmatrix {

std::string_view
to_string(EgressVerdict verdict)
{
  switch (verdict) {
  case EgressVerdict::ok: return "ok";
  case EgressVerdict::dns_failure: return "dns-failure";
  case EgressVerdict::refused: return "refused";
  case EgressVerdict::timeout: return "timeout";
  case EgressVerdict::tls_untrusted: return "tls-untrusted";
  case EgressVerdict::tls_name_mismatch: return "tls-name-mismatch";
  case EgressVerdict::proxy_denied: return "proxy-denied";
  case EgressVerdict::proxy_unreachable: return "proxy-unreachable";
  }
  return "?";
}

std::optional<EgressVerdict>
parse_egress_verdict(std::string_view text)
{
  for (auto verdict : {EgressVerdict::ok, EgressVerdict::dns_failure, EgressVerdict::refused, EgressVerdict::timeout,
                       EgressVerdict::tls_untrusted, EgressVerdict::tls_name_mismatch, EgressVerdict::proxy_denied,
                       EgressVerdict::proxy_unreachable}) {
    if (to_string(verdict) == text) return verdict;
  }
  return std::nullopt;
}

namespace {

using Clock = std::chrono::steady_clock;

// Where a target's check is; read by the coordinator at the deadline.
enum class Stage { queued, resolving, connecting, proxy_connecting, proxy_waiting, handshaking };

struct Outcome
{
  EgressVerdict verdict;
  std::string detail;
};

int
remaining_ms(Clock::time_point until)
{
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
  return left <= 0 ? 0 : int(std::min<long long>(left, 1 << 30));
}

// Waits for `events` on `fd` until `until`; false on timeout.
bool
wait_for(const Fd& fd, short events, Clock::time_point until)
{
  for (;;) {
    pollfd entry{fd.get(), events, 0};
    int ready = ::poll(&entry, 1, remaining_ms(until));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) return false;
  }
}

std::string
numeric_address(const sockaddr* address, socklen_t length)
{
  char host[NI_MAXHOST] = {};
  if (::getnameinfo(address, length, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0) return "?";
  return host;
}

// A non-blocking connection to one address; sets `error` (0, or errno; ETIMEDOUT on timeout).
Fd
connect_to(const addrinfo& address, Clock::time_point until, int& error)
{
  Fd fd(::socket(address.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    error = errno;
    return {};
  }
  if (::connect(fd.get(), address.ai_addr, address.ai_addrlen) == 0) {
    error = 0;
    return fd;
  }
  if (errno != EINPROGRESS) {
    error = errno;
    return {};
  }
  if (!wait_for(fd, POLLOUT, until)) {
    error = ETIMEDOUT;
    return {};
  }
  socklen_t length = sizeof error;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) return {};
  return fd;
}

struct Resolved
{
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list{nullptr, &::freeaddrinfo};
  std::vector<std::string> addresses;
  int error = 0; // getaddrinfo's
};

Resolved
resolve(const std::string& host, std::uint16_t port)
{
  Resolved out;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  out.error = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
  out.list.reset(out.error == 0 ? list : nullptr);
  for (auto* a = list; out.error == 0 && a; a = a->ai_next) out.addresses.push_back(numeric_address(a->ai_addr, a->ai_addrlen));
  return out;
}

// Connects to the first address that answers (at most four tried, each with
// its share of the time). Sets `error` to the last failure.
Fd
connect_any(const Resolved& resolved, std::chrono::milliseconds timeout, Clock::time_point deadline, int& error,
            std::string& tried)
{
  int attempts = 0;
  for (auto* a = resolved.list.get(); a && attempts < 4; a = a->ai_next, ++attempts) {
    auto until = std::min(Clock::now() + timeout, deadline);
    auto fd = connect_to(*a, until, error);
    tried += fmt::format("{}{}", tried.empty() ? "" : ", ", numeric_address(a->ai_addr, a->ai_addrlen));
    if (fd) return fd;
  }
  return {};
}

Outcome
connect_failure(int error, const std::string& where)
{
  switch (error) {
  case ETIMEDOUT:
  case EHOSTUNREACH: // usually no ARP/ND answer: nothing came back, like a drop
    return {EgressVerdict::timeout, fmt::format("{}: no answer ({})", where, std::strerror(error))};
  default:
    return {EgressVerdict::refused, fmt::format("{}: {}", where, std::strerror(error))};
  }
}

bool
send_all(const Fd& fd, std::string_view data, Clock::time_point until)
{
  while (!data.empty()) {
    auto sent = ::send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (sent > 0) {
      data.remove_prefix(std::size_t(sent));
    } else if (sent < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, until)) return false;
    } else {
      return false;
    }
  }
  return true;
}

// Reads an HTTP response head (up to the blank line, at most 16 KiB) and
// returns its status; nullopt on timeout or a closed connection.
std::optional<ProxyAnswer>
read_status(const Fd& fd, Clock::time_point until)
{
  std::string head;
  char byte = 0;
  while (head.size() < 16384 && !head.ends_with("\r\n\r\n")) {
    auto got = ::recv(fd.get(), &byte, 1, 0); // byte by byte: nothing past the head is ours
    if (got == 1) {
      head += byte;
    } else if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLIN, until)) return std::nullopt;
    } else {
      break;
    }
  }
  return parse_proxy_answer(head);
}

// The proxy's own refusal or failure (for CONNECT, any answer but 2xx).
Outcome
proxy_status(const ProxyAnswer& status, const ProxyUrl& proxy)
{
  auto code = status.code;
  auto detail = fmt::format("proxy {}: {}", proxy.display(), status.line);
  if (code == 403 || code == 407 || status.proxy_auth) return {EgressVerdict::proxy_denied, detail};
  if (code == 504) return {EgressVerdict::timeout, detail + " (the proxy timed out reaching the host)"};
  if (code == 500 || code == 502 || code == 503) {
    return {EgressVerdict::refused, detail + " (the proxy could not reach the host; it does not say whether DNS or the connection failed)"};
  }
  return {EgressVerdict::proxy_denied, detail};
}

// The first certificate verification failure, recorded by the verify callback.
struct VerifyFailure
{
  int error = X509_V_OK;
  std::string subject;
  std::string issuer;
};

std::string
name_text(const X509_NAME* name)
{
  if (!name) return "?";
  char buffer[512] = {};
  X509_NAME_oneline(name, buffer, sizeof buffer);
  return buffer;
}

int
k_verify_index()
{
  static int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int
record_verify_failure(int ok, X509_STORE_CTX* store)
{
  if (ok) return ok;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* failure = ssl ? static_cast<VerifyFailure*>(SSL_get_ex_data(ssl, k_verify_index())) : nullptr;
  if (failure && failure->error == X509_V_OK) {
    failure->error = X509_STORE_CTX_get_error(store);
    if (auto* leaf = X509_STORE_CTX_get0_cert(store)) {
      failure->subject = name_text(X509_get_subject_name(leaf));
      failure->issuer = name_text(X509_get_issuer_name(leaf));
    }
  }
  return ok;
}

struct SslContext
{
  SslContext()
  {
    context = SSL_CTX_new(TLS_client_method());
    if (!context) return;
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    // SSL_CERT_FILE / SSL_CERT_DIR, else the system's bundle.
    SSL_CTX_set_default_verify_paths(context);
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, record_verify_failure);
  }
  ~SslContext()
  {
    if (context) SSL_CTX_free(context);
  }
  SslContext(const SslContext&) = delete;
  SslContext& operator=(const SslContext&) = delete;
  SSL_CTX* context = nullptr;
};

std::string
openssl_errors()
{
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    out += (out.empty() ? "" : "; ") + std::string(buffer);
  }
  return out;
}

// A TLS handshake over the connected `fd`, for `host` (SNI and name check).
Outcome
handshake(SSL_CTX* context, const Fd& fd, const std::string& host, Clock::time_point until, const std::string& where)
{
  std::unique_ptr<SSL, decltype(&::SSL_free)> ssl(SSL_new(context), &::SSL_free);
  if (!ssl) return {EgressVerdict::refused, "cannot create a TLS connection: " + openssl_errors()};
  VerifyFailure failure;
  SSL_set_ex_data(ssl.get(), k_verify_index(), &failure);
  SSL_set_fd(ssl.get(), fd.get());
  SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl.get()), host.c_str(), 0);
  ERR_clear_error();
  for (;;) {
    int rc = SSL_connect(ssl.get());
    if (rc == 1) break;
    int error = SSL_get_error(ssl.get(), rc);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      if (!wait_for(fd, error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until)) {
        return {EgressVerdict::timeout, where + ": no TLS handshake in time"};
      }
      continue;
    }
    if (failure.error != X509_V_OK) {
      auto verdict = failure.error == X509_V_ERR_HOSTNAME_MISMATCH ? EgressVerdict::tls_name_mismatch
                                                                    : EgressVerdict::tls_untrusted;
      return {verdict, fmt::format("{}: {}; certificate subject {}, issuer {}", where,
                                   X509_verify_cert_error_string(failure.error), failure.subject, failure.issuer)};
    }
    auto reason = openssl_errors();
    return {EgressVerdict::refused,
            fmt::format("{}: the TLS handshake failed: {}", where, reason.empty() ? "the connection was closed" : reason)};
  }
  std::string subject = "?";
  if (auto* peer = SSL_get0_peer_certificate(ssl.get())) subject = name_text(X509_get_subject_name(peer));
  SSL_shutdown(ssl.get());
  return {EgressVerdict::ok, fmt::format("{}: {} {}", where, SSL_get_version(ssl.get()), subject)};
}

struct Shared
{
  std::vector<EgressTarget> targets;
  EgressOptions options;
  Clock::time_point start;
  Clock::time_point deadline;
  SslContext tls;
  std::mutex mutex;
  std::condition_variable finished;
  std::vector<EgressResult> results;
  std::vector<bool> done;
  std::size_t done_count = 0;
  std::unique_ptr<std::atomic<Stage>[]> stages;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> abandoned{false};
};

Outcome
check_direct(Shared& shared, const EgressTarget& target, EgressResult& result, std::atomic<Stage>& stage)
{
  stage = Stage::resolving;
  auto resolved = resolve(target.host, target.port.port);
  if (resolved.error != 0) {
    return {EgressVerdict::dns_failure, fmt::format("{}: {}", target.host, ::gai_strerror(resolved.error))};
  }
  result.addresses = resolved.addresses;
  stage = Stage::connecting;
  int error = 0;
  std::string tried;
  auto fd = connect_any(resolved, shared.options.timeout, shared.deadline, error, tried);
  auto where = fmt::format("{} port {}", tried, target.port.port);
  if (!fd) return connect_failure(error, where);
  if (target.port.scheme == EgressScheme::http) return {EgressVerdict::ok, where + ": connected"};
  stage = Stage::handshaking;
  return handshake(shared.tls.context, fd, target.host, std::min(Clock::now() + shared.options.timeout, shared.deadline),
                   where);
}

Outcome
check_via_proxy(Shared& shared, const EgressTarget& target, const ProxyUrl& proxy, std::atomic<Stage>& stage)
{
  auto step = [&] { return std::min(Clock::now() + shared.options.timeout, shared.deadline); };
  stage = Stage::proxy_connecting;
  auto resolved = resolve(proxy.host, proxy.port);
  if (resolved.error != 0) {
    return {EgressVerdict::proxy_unreachable, fmt::format("proxy {}: {}", proxy.display(), ::gai_strerror(resolved.error))};
  }
  int error = 0;
  std::string tried;
  auto fd = connect_any(resolved, shared.options.timeout, shared.deadline, error, tried);
  if (!fd) {
    return {EgressVerdict::proxy_unreachable, fmt::format("proxy {} ({}): {}", proxy.display(), tried, std::strerror(error))};
  }
  auto authority = target.host + ":" + std::to_string(target.port.port);
  std::string auth = proxy.authorization();
  if (!auth.empty()) auth = "Proxy-Authorization: " + auth + "\r\n";
  std::string request =
    target.port.scheme == EgressScheme::https
      ? fmt::format("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n{1}\r\n", authority, auth)
      : fmt::format("HEAD http://{0}/ HTTP/1.1\r\nHost: {0}\r\n{1}Connection: close\r\n\r\n", authority, auth);
  stage = Stage::proxy_waiting;
  if (!send_all(fd, request, step())) {
    return {EgressVerdict::proxy_unreachable, fmt::format("proxy {}: cannot send the request", proxy.display())};
  }
  auto status = read_status(fd, step());
  if (!status) {
    return {EgressVerdict::timeout, fmt::format("proxy {}: no answer to {} in time", proxy.display(),
                                                target.port.scheme == EgressScheme::https ? "CONNECT" : "HEAD")};
  }
  auto code = status->code;
  if (target.port.scheme == EgressScheme::http) {
    // Any other answer came from the host, through the proxy. A 401 to a
    // request that carried Proxy-Authorization is taken as the proxy's (tinyproxy
    // answers wrong credentials so); package mirrors do not ask for a login.
    bool rejected_credentials = code == 401 && !proxy.user.empty();
    if (code == 403 || code == 407 || status->proxy_auth || rejected_credentials || code == 500 || code == 502 ||
        code == 503 || code == 504) {
      return proxy_status(*status, proxy);
    }
    return {EgressVerdict::ok, fmt::format("proxy {}: the host answered {}", proxy.display(), status->line)};
  }
  if (code < 200 || code > 299) return proxy_status(*status, proxy);
  stage = Stage::handshaking;
  return handshake(shared.tls.context, fd, target.host, step(), fmt::format("via proxy {}", proxy.display()));
}

EgressResult
check_one(Shared& shared, std::size_t index)
{
  const auto& target = shared.targets[index];
  auto& stage = shared.stages[index];
  auto started = Clock::now();
  EgressResult result;
  result.target = target;
  const auto& proxy = target.port.scheme == EgressScheme::https ? shared.options.proxy.https : shared.options.proxy.http;
  Outcome outcome;
  if (proxy && !shared.options.proxy.no_proxy.matches(target.host)) {
    result.proxy = proxy->display();
    outcome = check_via_proxy(shared, target, *proxy, stage);
  } else {
    outcome = check_direct(shared, target, result, stage);
  }
  result.verdict = outcome.verdict;
  result.detail = std::move(outcome.detail);
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  return result;
}

void
worker(std::shared_ptr<Shared> shared)
{
  for (;;) {
    if (shared->abandoned) return;
    auto index = shared->next.fetch_add(1);
    if (index >= shared->targets.size()) return;
    auto result = check_one(*shared, index);
    std::lock_guard lock(shared->mutex);
    shared->results[index] = std::move(result);
    shared->done[index] = true;
    ++shared->done_count;
    shared->finished.notify_all();
  }
}

EgressResult
unfinished(const Shared& shared, std::size_t index)
{
  EgressResult result;
  result.target = shared.targets[index];
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - shared.start);
  auto proxy = shared.targets[index].port.scheme == EgressScheme::https ? shared.options.proxy.https
                                                                        : shared.options.proxy.http;
  if (proxy && !shared.options.proxy.no_proxy.matches(result.target.host)) result.proxy = proxy->display();
  switch (shared.stages[index].load()) {
  case Stage::queued:
    result.verdict = EgressVerdict::timeout;
    result.detail = "not started before the deadline (raise --deadline or the parallelism)";
    break;
  case Stage::resolving:
    result.verdict = EgressVerdict::dns_failure;
    result.detail = "the resolver did not answer before the deadline";
    break;
  case Stage::proxy_connecting:
    result.verdict = EgressVerdict::proxy_unreachable;
    result.detail = "no connection to the proxy before the deadline";
    break;
  default:
    result.verdict = EgressVerdict::timeout;
    result.detail = "still waiting at the deadline";
  }
  return result;
}

} // namespace

std::vector<EgressResult>
run_egress(const std::vector<EgressTarget>& targets, const EgressOptions& options)
{
  auto shared = std::make_shared<Shared>();
  shared->targets = targets;
  shared->options = options;
  shared->start = Clock::now();
  shared->deadline = shared->start + options.deadline;
  shared->results.resize(targets.size());
  shared->done.assign(targets.size(), false);
  shared->stages = std::make_unique<std::atomic<Stage>[]>(targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i) shared->stages[i] = Stage::queued;

  std::vector<std::thread> threads;
  auto count = std::min(targets.size(), std::max<std::size_t>(options.parallel, 1));
  for (std::size_t i = 0; i < count; ++i) threads.emplace_back(worker, shared);

  std::unique_lock lock(shared->mutex);
  auto end = shared->deadline + std::chrono::milliseconds(200);
  auto all_done = [&] { return shared->done_count == targets.size(); };
  bool all = false;
  for (;;) {
    if (options.progress) {
      auto done = shared->done_count;
      lock.unlock();
      options.progress(done, targets.size(),
                       std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - shared->start));
      lock.lock();
    }
    // Without a listener: one wait to the end. With one: a wake at each finished target, or after 250 ms.
    auto seen = shared->done_count;
    auto until = options.progress ? std::min(end, Clock::now() + std::chrono::milliseconds(250)) : end;
    shared->finished.wait_until(lock, until, [&] { return all_done() || (options.progress && shared->done_count != seen); });
    if (all_done() || Clock::now() >= end) {
      all = all_done();
      break;
    }
  }
  std::vector<EgressResult> results;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    results.push_back(shared->done[i] ? shared->results[i] : unfinished(*shared, i));
  }
  lock.unlock();
  if (all) {
    for (auto& thread : threads) thread.join();
  } else {
    shared->abandoned = true;
    for (auto& thread : threads) thread.detach();
  }
  return results;
}

} // namespace portmatrix
