// Non-blocking sockets and OpenSSL stepped by poll() against one deadline.
// The TLS client asks for the server's certificate chain through a verify
// callback that accepts everything: the certificate is recorded as it
// arrives, so even a handshake that the server then aborts (it wanted a
// client certificate) leaves us the server's name.
#include "identify/stream.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace portmatrix {

namespace {

constexpr std::size_t k_max_names = 8;

std::string
name_entry(const X509_NAME* name)
{
  if (!name) return {};
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  auto* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return {};
  std::string text(reinterpret_cast<char*>(utf8), std::size_t(length));
  OPENSSL_free(utf8);
  return text;
}

void
describe(X509* x509, Certificate& certificate)
{
  certificate.subject_cn = name_entry(X509_get_subject_name(x509));
  certificate.issuer_cn = name_entry(X509_get_issuer_name(x509));
  certificate.names.clear();
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x509, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names) && certificate.names.size() < k_max_names; ++i) {
    const auto* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      const auto* text = ASN1_STRING_get0_data(name->d.dNSName);
      certificate.names.emplace_back(reinterpret_cast<const char*>(text), std::size_t(ASN1_STRING_length(name->d.dNSName)));
    } else if (name->type == GEN_IPADD) {
      char buffer[INET6_ADDRSTRLEN] = "";
      int length = ASN1_STRING_length(name->d.iPAddress);
      const auto* bytes = ASN1_STRING_get0_data(name->d.iPAddress);
      if (length == 4) inet_ntop(AF_INET, bytes, buffer, sizeof(buffer));
      if (length == 16) inet_ntop(AF_INET6, bytes, buffer, sizeof(buffer));
      if (*buffer) certificate.names.emplace_back(buffer);
    }
  }
  GENERAL_NAMES_free(names);
}

// Records the server's own certificate (depth 0) and accepts any chain.
int
record_certificate(int, X509_STORE_CTX* store)
{
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* certificate = ssl ? static_cast<Certificate*>(SSL_get_app_data(ssl)) : nullptr;
  auto* x509 = X509_STORE_CTX_get_current_cert(store);
  if (certificate && x509) describe(x509, *certificate);
  return 1;
}

// The server asks for a client certificate: note it, send none.
int
no_client_certificate(SSL* ssl, X509**, EVP_PKEY**)
{
  if (auto* certificate = static_cast<Certificate*>(SSL_get_app_data(ssl))) certificate->client_certificate_requested = true;
  return 0;
}

std::string
openssl_reason()
{
  std::string text;
  while (auto code = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(code);
    text = reason ? reason : "OpenSSL error " + std::to_string(ERR_GET_REASON(code));
  }
  return text;
}

// OpenSSL writes with write(), not send(MSG_NOSIGNAL): a server that closed
// first would kill the caller with SIGPIPE. While a stream step runs, SIGPIPE
// is blocked on this thread, and one it raised is taken back before the mask
// is restored, so the caller (the agent, preflight, a test) need not ignore it.
class SigpipeBlocked
{
public:
  SigpipeBlocked()
  {
    sigemptyset(&m_pipe);
    sigaddset(&m_pipe, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    m_was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &m_pipe, &m_old);
  }
  ~SigpipeBlocked()
  {
    sigset_t pending;
    sigpending(&pending);
    if (!m_was_pending && sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{0, 0};
      sigtimedwait(&m_pipe, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

private:
  sigset_t m_pipe;
  sigset_t m_old;
  bool m_was_pending = false;
};

} // namespace

struct ProbeStream::Tls
{
  ~Tls()
  {
    if (ssl) SSL_free(ssl);
    if (context) SSL_CTX_free(context);
  }
  SSL_CTX* context = nullptr;
  SSL* ssl = nullptr;
};

ProbeStream::ProbeStream() = default;
ProbeStream::~ProbeStream() = default;
ProbeStream::ProbeStream(ProbeStream&&) noexcept = default;
ProbeStream& ProbeStream::operator=(ProbeStream&&) noexcept = default;

bool
ProbeStream::tls() const
{
  return m_tls != nullptr;
}

bool
ProbeStream::wait(short events, Clock::time_point deadline)
{
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd entry{m_fd.get(), events, 0};
    int n = ::poll(&entry, 1, int(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

ProbeStream::Status
ProbeStream::connect(const SocketAddress& address, Clock::time_point deadline)
{
  m_fd.reset(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!m_fd) {
    m_error = std::strerror(errno);
    return Status::error;
  }
  if (::connect(m_fd.get(), address.get(), address.length()) != 0) {
    if (errno == ECONNREFUSED) return Status::refused;
    if (errno != EINPROGRESS) {
      m_error = std::strerror(errno);
      return Status::error;
    }
    if (!wait(POLLOUT, deadline)) return Status::timeout;
    int error = 0;
    socklen_t length = sizeof(error);
    ::getsockopt(m_fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error == ECONNREFUSED) return Status::refused;
    if (error != 0) {
      m_error = std::strerror(error);
      return Status::error;
    }
  }
  return Status::ok;
}

ProbeStream::Status
ProbeStream::start_tls(const std::string& server_name, Clock::time_point deadline, Certificate& certificate)
{
  SigpipeBlocked no_sigpipe;
  m_tls = std::make_unique<Tls>();
  m_tls->context = SSL_CTX_new(TLS_client_method());
  if (m_tls->context) {
    SSL_CTX_set_client_cert_cb(m_tls->context, no_client_certificate);
    m_tls->ssl = SSL_new(m_tls->context);
  }
  if (!m_tls->ssl) {
    m_error = openssl_reason();
    return Status::error;
  }
  SSL_set_verify(m_tls->ssl, SSL_VERIFY_PEER, record_certificate);
  SSL_set_app_data(m_tls->ssl, &certificate);
  struct Forget // `certificate` is the caller's: the SSL must not keep pointing at it
  {
    SSL* ssl;
    ~Forget() { SSL_set_app_data(ssl, nullptr); }
  } forget{m_tls->ssl};
  if (!server_name.empty() && !SocketAddress::parse(server_name, 0)) {
    SSL_set_tlsext_host_name(m_tls->ssl, server_name.c_str());
  }
  SSL_set_fd(m_tls->ssl, m_fd.get());
  SSL_set_connect_state(m_tls->ssl);
  ERR_clear_error();
  for (;;) {
    int result = SSL_do_handshake(m_tls->ssl);
    if (result == 1) break;
    switch (SSL_get_error(m_tls->ssl, result)) {
    case SSL_ERROR_WANT_READ:
      if (!wait(POLLIN, deadline)) return Status::timeout;
      continue;
    case SSL_ERROR_WANT_WRITE:
      if (!wait(POLLOUT, deadline)) return Status::timeout;
      continue;
    case SSL_ERROR_SYSCALL:
      m_error = openssl_reason();
      if (m_error.empty()) m_error = errno ? std::strerror(errno) : "the server closed the connection";
      return Status::tls_failed;
    default: m_error = openssl_reason(); return Status::tls_failed;
    }
  }
  certificate.tls_version = SSL_get_version(m_tls->ssl);
  return Status::ok;
}

ProbeStream::Status
ProbeStream::send(std::string_view bytes, Clock::time_point deadline)
{
  SigpipeBlocked no_sigpipe;
  std::size_t sent = 0;
  ERR_clear_error();
  while (sent < bytes.size()) {
    if (m_tls) {
      int n = SSL_write(m_tls->ssl, bytes.data() + sent, int(bytes.size() - sent));
      if (n > 0) {
        sent += std::size_t(n);
        continue;
      }
      auto error = SSL_get_error(m_tls->ssl, n);
      if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
        if (!wait(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return Status::timeout;
        continue;
      }
      m_error = openssl_reason();
      return error == SSL_ERROR_SSL ? Status::tls_failed : Status::closed;
    }
    auto n = ::send(m_fd.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += std::size_t(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!wait(POLLOUT, deadline)) return Status::timeout;
      continue;
    }
    return Status::closed;
  }
  return Status::ok;
}

ProbeStream::Status
ProbeStream::read_some(std::string& buffer, std::size_t max_bytes, Clock::time_point deadline)
{
  char chunk[4096];
  auto room = std::min(sizeof(chunk), max_bytes - buffer.size());
  SigpipeBlocked no_sigpipe;
  ERR_clear_error();
  for (;;) {
    if (m_tls) {
      int n = SSL_read(m_tls->ssl, chunk, int(room));
      if (n > 0) {
        buffer.append(chunk, std::size_t(n));
        return Status::ok;
      }
      auto error = SSL_get_error(m_tls->ssl, n);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        if (!wait(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return Status::timeout;
        continue;
      }
      if (error == SSL_ERROR_SSL) {
        m_error = openssl_reason();
        return Status::tls_failed;
      }
      return Status::closed;
    }
    auto n = ::recv(m_fd.get(), chunk, room, 0);
    if (n > 0) {
      buffer.append(chunk, std::size_t(n));
      return Status::ok;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!wait(POLLIN, deadline)) return Status::timeout;
      continue;
    }
    return Status::closed;
  }
}

std::string_view
to_string(ProbeStream::Status status)
{
  switch (status) {
  case ProbeStream::Status::ok: return "ok";
  case ProbeStream::Status::refused: return "refused";
  case ProbeStream::Status::timeout: return "timeout";
  case ProbeStream::Status::closed: return "closed";
  case ProbeStream::Status::tls_failed: return "tls-failed";
  case ProbeStream::Status::error: return "error";
  }
  return "error";
}

} // namespace portmatrix
