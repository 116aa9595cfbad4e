// The identification probes' only contact with the operating system: one
// client TCP connection, plain or TLS, where every step ends by a deadline
// (non-blocking socket + poll). A server that accepts and says nothing costs
// the caller its deadline, never more.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "net/address.hpp"
#include "net/fd.hpp"

namespace portmatrix {

// What a TLS server showed of itself. No verification is done: this names a
// service, it does not trust it.
struct Certificate
{
  std::string subject_cn;
  std::string issuer_cn;
  std::vector<std::string> names; // subjectAltName DNS names and IP addresses
  std::string tls_version;        // "TLSv1.3"
  bool client_certificate_requested = false; // the server asked for one (we send none)
};

class ProbeStream
{
public:
  using Clock = std::chrono::steady_clock;
  enum class Status {
    ok,
    refused,    // connection refused (RST)
    timeout,    // the deadline passed: connect, handshake or the answer
    closed,     // the peer closed (or reset) before what we waited for
    tls_failed, // the TLS handshake failed (not TLS, alert, ...); see error()
    error,      // anything else; see error()
  };

  ProbeStream();
  ~ProbeStream();
  ProbeStream(ProbeStream&&) noexcept;
  ProbeStream& operator=(ProbeStream&&) noexcept;

  // Opens a TCP connection to `address` before `deadline`.
  Status connect(const SocketAddress& address, Clock::time_point deadline);
  // TLS client handshake on the open connection (SNI `server_name` when not
  // an address). The server's certificate, when it sent one, goes to
  // `certificate`, even when the handshake then fails (a server that wants a
  // client certificate still shows its own).
  Status start_tls(const std::string& server_name, Clock::time_point deadline, Certificate& certificate);
  Status send(std::string_view bytes, Clock::time_point deadline);
  // Appends what arrives to `buffer` until `done(buffer)` is true, `buffer`
  // holds `max_bytes`, the peer closes, or the deadline passes. ok means
  // `done` was satisfied or the size limit reached.
  template <class Done>
  Status receive(std::string& buffer, std::size_t max_bytes, Clock::time_point deadline, Done&& done);

  // After a tls_failed or error status: what went wrong.
  const std::string& error() const { return m_error; }
  bool tls() const;

private:
  // Reads once (waiting until the deadline for something): appends to `buffer`.
  Status read_some(std::string& buffer, std::size_t max_bytes, Clock::time_point deadline);
  bool wait(short events, Clock::time_point deadline);

  struct Tls;
  Fd m_fd;
  std::unique_ptr<Tls> m_tls;
  std::string m_error;
};

template <class Done>
ProbeStream::Status
ProbeStream::receive(std::string& buffer, std::size_t max_bytes, Clock::time_point deadline, Done&& done)
{
  while (!done(buffer) && buffer.size() < max_bytes) {
    auto status = read_some(buffer, max_bytes, deadline);
    if (status != Status::ok) return status;
  }
  return Status::ok;
}

std::string_view to_string(ProbeStream::Status status);

} // namespace portmatrix
