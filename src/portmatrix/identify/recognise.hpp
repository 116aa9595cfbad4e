// Pure: what an answer says about the service that gave it. No I/O here, so
// every rule is tested on recorded answers (tests/data/identify/) directly,
// and again through a loopback server by the probes (identify.hpp).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "identify/bson.hpp"
#include "identify/stream.hpp"

namespace portmatrix {

// Who answers on a port. `service` is empty when nothing was recognised;
// `summary` is then "unknown: " and what was seen.
struct Identification
{
  std::string service; // "kube-apiserver", "etcd", "kubelet", "MongoDB", "Elasticsearch", "HTTP", "TLS", ...
  std::string version; // "v1.31.0", "3.4.23", "7.0.12"; may be empty
  std::string summary; // one line for people: "MongoDB 7.0.12, replica set rs0, primary"
  bool known() const { return !service.empty(); }
};

struct HttpResponse
{
  int status = 0;
  std::string reason;
  std::map<std::string, std::string> headers; // names lower-cased; a repeated header keeps its first value
  std::string body;                           // de-chunked
};

// True once `bytes` hold a whole response (headers, then Content-Length
// bytes or the last chunk; without either, only the peer's close ends it).
bool http_response_complete(std::string_view bytes);
// The response in `bytes` (a truncated body is kept as it is), or nullopt
// when they do not start with an HTTP status line and headers.
std::optional<HttpResponse> parse_http_response(std::string_view bytes);

// What an HTTP(S) answer names; `certificate` is the TLS server's (or null).
// Never unknown for a valid response: a plain web server is "HTTP".
Identification recognise_http(const HttpResponse& response, const Certificate* certificate);

// What a MongoDB hello reply (and the buildInfo reply, when there is one) says.
// Unknown when `hello` is not a command reply (no `ok` field).
Identification recognise_mongodb(const std::map<std::string, bson::Value>& hello,
                                 const std::map<std::string, bson::Value>* build_info);

// What a TLS server's certificate alone says (kubeadm's etcd CA, the API
// server's names, the kubelet's self-signed certificate); "TLS" otherwise.
// `note` (e.g. "client certificate required") is added to the summary.
Identification recognise_certificate(const Certificate& certificate, std::string_view note);

// "cert CN=master1, issuer CN=etcd-ca" (empty parts left out).
std::string describe(const Certificate& certificate);

} // namespace portmatrix
