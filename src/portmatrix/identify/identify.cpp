// The probes and their order. A probe connects, makes its one request, reads
// one bounded answer and hands it to the pure recognisers (recognise.hpp).
// The order follows the hint: the API server is asked /version over TLS, etcd
// /version over TLS then plain HTTP, the kubelet only shows its certificate,
// MongoDB gets hello; after the hinted probes, the protocols not yet tried
// follow (HTTP, TLS, MongoDB), each at most once, until one names the service.
#include "identify/identify.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "identify/bson.hpp"
#include "model/profile.hpp"
#include "net/address.hpp"

namespace portmatrix {

namespace {

using Clock = ProbeStream::Clock;
using Status = ProbeStream::Status;

enum class Kind { https_get, tls_only, http_get, mongodb };

struct Probe
{
  Kind kind;
  std::string path; // for the GETs
};

// The protocol a probe speaks: each is tried once.
int
protocol_of(Kind kind)
{
  return kind == Kind::https_get || kind == Kind::tls_only ? 0 : kind == Kind::http_get ? 1 : 2;
}

std::vector<Probe>
plan_for(std::string_view hint)
{
  std::vector<Probe> probes;
  auto is = [&](std::string_view name) { return hint.find(name) != std::string_view::npos; };
  if (is("apiserver")) probes = {{Kind::https_get, "/version"}};
  else if (is("etcd")) probes = {{Kind::https_get, "/version"}, {Kind::http_get, "/version"}};
  else if (is("kubelet")) probes = {{Kind::tls_only, ""}};
  else if (is("scheduler") || is("controller-manager")) probes = {{Kind::https_get, "/healthz"}};
  else if (is("mongo")) probes = {{Kind::mongodb, ""}};
  else if (is("elasticsearch") || is("transport")) probes = {{Kind::http_get, "/"}, {Kind::https_get, "/"}};
  const Probe fallback[] = {{Kind::http_get, "/"}, {Kind::https_get, "/"}, {Kind::mongodb, ""}};
  for (const auto& probe : fallback) {
    bool tried = std::any_of(probes.begin(), probes.end(),
                             [&](const Probe& p) { return protocol_of(p.kind) == protocol_of(probe.kind); });
    if (!tried) probes.push_back(probe);
  }
  probes.resize(std::min<std::size_t>(probes.size(), 3));
  return probes;
}

// One probe's outcome: an identification, or what was seen and whether the
// server stayed silent (then no other probe is worth its timeout).
struct Outcome
{
  Identification identification;
  std::string seen;
  bool silent = false;
  bool refused = false;
};

Outcome
failed(Status status, const ProbeStream& stream, bool sent, std::chrono::milliseconds timeout)
{
  Outcome outcome;
  switch (status) {
  case Status::refused: outcome.seen = "connection refused"; outcome.refused = true; break;
  case Status::timeout:
    outcome.seen = sent ? fmt::format("no answer in {} ms", timeout.count())
                        : fmt::format("no connection in {} ms", timeout.count());
    outcome.silent = true;
    break;
  case Status::closed: outcome.seen = "closed the connection without an answer"; break;
  case Status::tls_failed: outcome.seen = "TLS failed: " + stream.error(); break;
  default: outcome.seen = stream.error().empty() ? std::string("error") : stream.error(); break;
  }
  return outcome;
}

std::string
printable_start(std::string_view bytes)
{
  std::string out;
  for (char c : bytes.substr(0, 24)) out += (c >= 0x20 && c < 0x7f) ? c : '.';
  return out;
}

// The exchange failed and the server had asked for a client certificate (or
// its alert says it wanted one): that is why it would not answer.
bool
wants_client_certificate(const ProbeStream& stream, const Certificate& certificate)
{
  return certificate.client_certificate_requested || stream.error().find("certificate") != std::string::npos;
}

Outcome
probe_http(const SocketAddress& target, const std::string& host, const Probe& probe, std::chrono::milliseconds timeout)
{
  auto deadline = Clock::now() + timeout;
  ProbeStream stream;
  auto status = stream.connect(target, deadline);
  if (status != Status::ok) return failed(status, stream, false, timeout);
  Certificate certificate;
  bool tls = probe.kind != Kind::http_get;
  if (tls) {
    status = stream.start_tls(host, deadline, certificate);
    if (status != Status::ok) {
      auto outcome = failed(status, stream, true, timeout);
      // The certificate came before the failure: it still names the server.
      if (!certificate.subject_cn.empty() || !certificate.issuer_cn.empty()) {
        auto note = wants_client_certificate(stream, certificate) ? std::string("client certificate required")
                                                                   : "handshake failed: " + stream.error();
        outcome.identification = recognise_certificate(certificate, note);
      }
      return outcome;
    }
    if (probe.kind == Kind::tls_only) return {recognise_certificate(certificate, ""), "", false, false};
  }
  auto request = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: portmatrix-identify\r\nAccept: */*\r\n"
                             "Connection: close\r\n\r\n",
                             probe.path, target.to_string());
  std::string answer;
  status = stream.send(request, deadline);
  if (status == Status::ok) {
    status = stream.receive(answer, k_identify_max_answer, deadline,
                            [](const std::string& bytes) { return http_response_complete(bytes); });
  }
  auto response = parse_http_response(answer);
  if (response) return {recognise_http(*response, tls ? &certificate : nullptr), "", false, false};
  Outcome outcome;
  if (answer.empty()) {
    outcome = failed(status, stream, true, timeout);
  } else {
    outcome.seen = fmt::format("answered {} bytes that are not HTTP (\"{}\")", answer.size(), printable_start(answer));
  }
  // A TLS server that will not answer our GET (a client certificate is
  // required after the handshake, TLS 1.3) is still named by its certificate.
  if (tls) {
    auto note = wants_client_certificate(stream, certificate) ? std::string("client certificate required")
                                                               : std::string();
    outcome.identification = recognise_certificate(certificate, note);
  }
  return outcome;
}

// Sends one OP_MSG command and reads its reply's body document.
std::optional<std::map<std::string, bson::Value>>
mongodb_command(ProbeStream& stream, std::int32_t id, const std::string& command, Clock::time_point deadline,
                Status& status, std::string& answer)
{
  status = stream.send(bson::op_msg(id, command), deadline);
  if (status != Status::ok) return std::nullopt;
  answer.clear();
  bool impossible = false;
  status = stream.receive(answer, bson::k_max_message, deadline, [&](const std::string& bytes) {
    if (bytes.size() < 4) return false;
    auto length = bson::message_length(bytes);
    impossible = !length;
    return impossible || bytes.size() >= *length;
  });
  if (status != Status::ok || impossible) return std::nullopt;
  auto length = *bson::message_length(answer);
  auto body = bson::op_msg_body(std::string_view(answer).substr(0, length), id);
  if (!body) return std::nullopt;
  return bson::decode(*body);
}

Outcome
probe_mongodb(const SocketAddress& target, std::chrono::milliseconds timeout)
{
  auto deadline = Clock::now() + timeout;
  ProbeStream stream;
  auto status = stream.connect(target, deadline);
  if (status != Status::ok) return failed(status, stream, false, timeout);
  std::string answer;
  auto hello = mongodb_command(stream, 1, bson::Builder().add("hello", 1).add("$db", "admin").finish(), deadline,
                               status, answer);
  if (!hello) {
    if (answer.empty()) return failed(status, stream, true, timeout);
    return {{}, fmt::format("answered {} bytes that are not a MongoDB reply (\"{}\")", answer.size(),
                            printable_start(answer)),
            false, false};
  }
  auto identification = recognise_mongodb(*hello, nullptr);
  if (!identification.known()) return {{}, "a MongoDB-framed reply that is not a command reply", false, false};
  // buildInfo needs no authentication and carries the exact version.
  auto build_info = mongodb_command(stream, 2, bson::Builder().add("buildInfo", 1).add("$db", "admin").finish(),
                                    deadline, status, answer);
  if (build_info) identification = recognise_mongodb(*hello, &*build_info);
  return {identification, "", false, false};
}

std::string_view
probe_name(Kind kind)
{
  switch (kind) {
  case Kind::https_get: return "HTTPS";
  case Kind::tls_only: return "TLS";
  case Kind::http_get: return "HTTP";
  case Kind::mongodb: return "MongoDB hello";
  }
  return "?";
}

} // namespace

Identification
identify(const std::string& address, std::uint16_t port, Protocol protocol, std::string_view hint,
         std::chrono::milliseconds timeout)
{
  if (protocol != Protocol::tcp) return {"", "", "unknown: UDP services are not probed"};
  auto target = SocketAddress::parse(address, port);
  if (!target) return {"", "", "unknown: " + address + " is not an address"};
  std::vector<std::string> seen;
  for (const auto& probe : plan_for(hint)) {
    auto outcome = probe.kind == Kind::mongodb ? probe_mongodb(*target, timeout)
                                               : probe_http(*target, address, probe, timeout);
    if (outcome.identification.known()) return outcome.identification;
    seen.push_back(fmt::format("{}: {}", probe_name(probe.kind), outcome.seen));
    if (outcome.refused || outcome.silent) break;
  }
  return {"", "", "unknown: " + fmt::format("{}", fmt::join(seen, "; "))};
}

std::string
port_hint(const Profile& profile, Protocol protocol, std::uint16_t port)
{
  const NamedPort* best = nullptr;
  for (const auto& named : profile.ports) {
    bool speaks = std::find(named.protocols.begin(), named.protocols.end(), protocol) != named.protocols.end();
    if (!speaks || port < named.range.min || named.range.max < port) continue;
    if (!best || named.range.size() < best->range.size()) best = &named;
  }
  return best ? best->name : std::string();
}

} // namespace portmatrix
