// Non-blocking OpenSSL on the agent's EventLoop: each connection steps
// through handshake, read request, write response, as the socket allows.
#include "agent/tls_health.hpp"

#include <sys/socket.h>

#include <chrono>
#include <unordered_map>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace portmatrix {

namespace {

constexpr std::chrono::seconds k_connection_timeout{5};
constexpr std::size_t k_max_request = 8192;

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
    if (!error.empty() || connections.size() >= 1024) return; // dropped: closes
    auto connection = std::make_unique<Connection>();
    connection->ssl.reset(SSL_new(context));
    if (!connection->ssl) return;
    int raw = fd.get();
    SSL_set_fd(connection->ssl.get(), raw);
    SSL_set_accept_state(connection->ssl.get());
    connection->fd = std::move(fd);
    connection->timer = loop.after(k_connection_timeout, [this, raw] { close(raw); });
    connections.emplace(raw, std::move(connection));
    loop.add(raw, EPOLLIN, [this, raw](std::uint32_t) { step(raw); });
    step(raw);
  }

  void close(int fd)
  {
    auto it = connections.find(fd);
    if (it == connections.end()) return;
    loop.cancel(it->second->timer);
    loop.remove(fd);
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
    if (!SSL_is_init_finished(connection.ssl.get()) && !proceed(fd, connection, SSL_do_handshake(connection.ssl.get()))) {
      return;
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
  std::uint64_t answered = 0;
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

} // namespace portmatrix
