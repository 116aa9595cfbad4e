// Non-blocking OpenSSL on the agent's EventLoop: each connection steps
// through handshake, read request, write response, as the socket allows.
//
// Bounded against idle handshakes (finding 7: 800 idle ClientHellos a second
// held every slot for 5 s, so the load balancer's checks were reset): a
// handshake must finish within k_handshake_timeout, a source other than a
// load-balancer node holds at most k_max_per_source connections, and when
// every slot is taken a new connection takes the place of the oldest one
// still in its handshake. The load balancer's own checks are never refused
// or evicted for a stranger's.
#include "agent/tls_health.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <map>
#include <set>
#include <unordered_map>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "model/inventory.hpp"

namespace portmatrix {

namespace {

constexpr std::chrono::seconds k_connection_timeout{5};
constexpr std::size_t k_max_request = 8192;

// The peer's address as text ("" when unknown).
std::string
peer_of(int fd)
{
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return "";
  char text[INET6_ADDRSTRLEN] = "";
  if (address.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&address)->sin_addr, text, sizeof(text));
  } else if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      inet_ntop(AF_INET, &v6.s6_addr[12], text, sizeof(text));
    } else {
      inet_ntop(AF_INET6, &v6, text, sizeof(text));
    }
  }
  return text;
}

struct SslFree
{
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

std::string
openssl_error()
{
  char buffer[256] = "unknown OpenSSL error";
  if (auto code = ERR_get_error()) ERR_error_string_n(code, buffer, sizeof(buffer));
  return buffer;
}

} // namespace

struct TlsHealthServer::Impl
{
  struct Connection
  {
    Fd fd;
    std::unique_ptr<SSL, SslFree> ssl;
    std::string request;
    std::string response;
    std::size_t written = 0;
    std::uint64_t timer = 0;
    std::uint64_t order = 0; // adoption order: the oldest is evicted first
    std::string peer;
    bool priority = false; // a load-balancer node's health check
  };

  explicit Impl(EventLoop& loop) : loop(loop) { setup(); }

  ~Impl()
  {
    for (auto& [fd, connection] : connections) {
      loop.cancel(connection->timer);
      loop.remove(fd);
    }
    connections.clear();
    if (context) SSL_CTX_free(context);
  }

  void setup()
  {
    context = SSL_CTX_new(TLS_server_method());
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* certificate = X509_new();
    bool ok = context && key && certificate;
    if (ok) {
      ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
      X509_gmtime_adj(X509_getm_notBefore(certificate), -3600);
      X509_gmtime_adj(X509_getm_notAfter(certificate), 3600L * 24 * 365);
      X509_set_pubkey(certificate, key);
      auto* name = X509_get_subject_name(certificate);
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("portmatrix-agent"),
                                 -1, -1, 0);
      X509_set_issuer_name(certificate, name);
      ok = X509_sign(certificate, key, EVP_sha256()) > 0 && SSL_CTX_use_certificate(context, certificate) == 1 &&
           SSL_CTX_use_PrivateKey(context, key) == 1;
    }
    if (!ok) error = "TLS health endpoint unavailable: " + openssl_error();
    X509_free(certificate);
    EVP_PKEY_free(key);
  }

  void adopt(Fd fd)
  {
    if (!error.empty()) return; // dropped: closes
    auto peer = peer_of(fd.get());
    bool priority = !peer.empty() && priority_sources.contains(peer);
    if (!priority && per_source[peer] >= k_tls_max_per_source) {
      ++refused;
      return;
    }
    if (connections.size() >= k_tls_max_connections && !evict_one(priority)) {
      ++refused;
      return;
    }
    auto connection = std::make_unique<Connection>();
    connection->ssl.reset(SSL_new(context));
    if (!connection->ssl) return;
    int raw = fd.get();
    SSL_set_fd(connection->ssl.get(), raw);
    SSL_set_accept_state(connection->ssl.get());
    connection->fd = std::move(fd);
    connection->order = next_order++;
    connection->peer = peer;
    connection->priority = priority;
    connection->timer = loop.after(k_tls_handshake_timeout, [this, raw] { close(raw); });
    ++per_source[peer];
    by_order.emplace(connection->order, raw);
    connections.emplace(raw, std::move(connection));
    loop.add(raw, EPOLLIN, [this, raw](std::uint32_t) { step(raw); });
    step(raw);
  }

  // Closes the oldest connection still in its handshake (else, for a
  // load-balancer node, the oldest one of anyone else's); false when none may go.
  bool evict_one(bool for_priority)
  {
    int oldest_other = -1;
    for (const auto& [order, fd] : by_order) {
      const auto& connection = *connections.at(fd);
      if (connection.priority) continue;
      if (!SSL_is_init_finished(connection.ssl.get())) {
        ++evicted;
        close(fd);
        return true;
      }
      if (oldest_other < 0) oldest_other = fd;
    }
    if (!for_priority || oldest_other < 0) return false;
    ++evicted;
    close(oldest_other);
    return true;
  }

  void close(int fd)
  {
    auto it = connections.find(fd);
    if (it == connections.end()) return;
    loop.cancel(it->second->timer);
    loop.remove(fd);
    by_order.erase(it->second->order);
    if (auto count = per_source.find(it->second->peer); count != per_source.end() && --count->second == 0) {
      per_source.erase(count);
    }
    connections.erase(it);
  }

  // Returns false when the connection must wait (events updated) or is gone.
  bool proceed(int fd, Connection& connection, int result)
  {
    if (result > 0) return true;
    switch (SSL_get_error(connection.ssl.get(), result)) {
    case SSL_ERROR_WANT_READ: loop.modify(fd, EPOLLIN); return false;
    case SSL_ERROR_WANT_WRITE: loop.modify(fd, EPOLLOUT); return false;
    default: close(fd); return false;
    }
  }

  void step(int fd)
  {
    auto it = connections.find(fd);
    if (it == connections.end()) return;
    auto& connection = *it->second;
    ERR_clear_error();
    if (!SSL_is_init_finished(connection.ssl.get())) {
      if (!proceed(fd, connection, SSL_do_handshake(connection.ssl.get()))) return;
      // Handshaken: the rest of the connection's time for its request.
      loop.cancel(connection.timer);
      connection.timer = loop.after(k_connection_timeout - k_tls_handshake_timeout, [this, fd] { close(fd); });
    }
    while (connection.response.empty()) {
      char buffer[2048];
      int n = SSL_read(connection.ssl.get(), buffer, sizeof(buffer));
      if (!proceed(fd, connection, n)) return;
      connection.request.append(buffer, std::size_t(n));
      if (connection.request.size() > k_max_request) {
        close(fd);
        return;
      }
      if (connection.request.find("\r\n\r\n") != std::string::npos) connection.response = respond(connection.request);
    }
    while (connection.written < connection.response.size()) {
      int n = SSL_write(connection.ssl.get(), connection.response.data() + connection.written,
                        int(connection.response.size() - connection.written));
      if (!proceed(fd, connection, n)) return;
      connection.written += std::size_t(n);
    }
    ++answered;
    SSL_shutdown(connection.ssl.get());
    close(fd);
  }

  static std::string respond(const std::string& request)
  {
    auto line_end = request.find("\r\n");
    auto line = request.substr(0, line_end);
    bool health = line.starts_with("GET /healthz") || line.starts_with("GET /livez") || line.starts_with("GET /readyz");
    std::string body = health ? "ok" : "not found";
    return std::string(health ? "HTTP/1.1 200 OK" : "HTTP/1.1 404 Not Found") +
           "\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nX-Portmatrix: agent\r\n\r\n" + body;
  }

  EventLoop& loop;
  SSL_CTX* context = nullptr;
  std::string error;
  std::unordered_map<int, std::unique_ptr<Connection>> connections;
  std::map<std::uint64_t, int> by_order;                // adoption order -> fd
  std::unordered_map<std::string, std::size_t> per_source; // peer -> connections held
  std::set<std::string> priority_sources;
  std::uint64_t next_order = 1;
  std::uint64_t answered = 0;
  std::uint64_t refused = 0;
  std::uint64_t evicted = 0;
};

TlsHealthServer::TlsHealthServer(EventLoop& loop) : m_impl(std::make_unique<Impl>(loop)) {}
TlsHealthServer::~TlsHealthServer() = default;

bool
TlsHealthServer::ready() const
{
  return m_impl->error.empty();
}

const std::string&
TlsHealthServer::error() const
{
  return m_impl->error;
}

void
TlsHealthServer::adopt(Fd connection)
{
  m_impl->adopt(std::move(connection));
}

std::uint64_t
TlsHealthServer::answered() const
{
  return m_impl->answered;
}

void
TlsHealthServer::set_priority_sources(const std::vector<std::string>& addresses)
{
  m_impl->priority_sources = {addresses.begin(), addresses.end()};
}

std::uint64_t
TlsHealthServer::refused() const
{
  return m_impl->refused;
}

std::uint64_t
TlsHealthServer::evicted() const
{
  return m_impl->evicted;
}

std::vector<std::string>
load_balancer_addresses(const Inventory& inventory)
{
  std::vector<std::string> addresses;
  for (const auto& node : inventory.nodes) {
    if (node.has(Role::loadbalancer)) addresses.push_back(node.address);
  }
  return addresses;
}

} // namespace portmatrix
