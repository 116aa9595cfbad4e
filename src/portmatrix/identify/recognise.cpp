// The rules that turn an answer into a service name, most specific first:
// the JSON a service is known to send for the one harmless request we make
// (kube-apiserver's /version, etcd's /version, Elasticsearch's GET /, its
// 401 with security on, its transport port's refusal of HTTP), MongoDB's
// hello reply, and only then the generic (a web server, a TLS server).
#include "identify/recognise.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace portmatrix {

namespace {

constexpr std::size_t k_max_field = 80; // a version or name longer than this is not one

std::string
lower(std::string_view text)
{
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

// Printable ASCII only, bounded: these strings end up in reports and logs.
std::string
clean(std::string_view text)
{
  std::string out;
  for (char c : text.substr(0, k_max_field)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

std::string
json_text(const nlohmann::json& object, const char* key)
{
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? clean(it->get<std::string>()) : std::string();
}

std::string
with_tls(std::string summary, const Certificate* certificate)
{
  if (!certificate) return summary;
  auto cert = describe(*certificate);
  return fmt::format("{} (TLS{}{})", summary, cert.empty() ? "" : ", ", cert);
}

// Chunked transfer coding (RFC 9112 7.1): size line, data, CRLF, ..., 0.
std::string
dechunk(std::string_view body)
{
  std::string out;
  std::size_t at = 0;
  while (at < body.size()) {
    auto line_end = body.find("\r\n", at);
    if (line_end == std::string_view::npos) break;
    std::size_t size = 0;
    auto line = body.substr(at, line_end - at);
    std::size_t digits = 0;
    for (char c : line) {
      int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
              : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                          : -1;
      if (v < 0 || ++digits > 8) break;
      size = size * 16 + std::size_t(v);
    }
    at = line_end + 2;
    if (size == 0) break;
    out.append(body.substr(at, std::min(size, body.size() - at)));
    at += size + 2;
  }
  return out;
}

std::string
mongodb_release(double wire)
{
  // maxWireVersion of each release (the server's wire_version.h).
  static const std::pair<int, const char*> k_releases[] = {{6, "3.6"},  {7, "4.0"},  {8, "4.2"},  {9, "4.4"},
                                                            {13, "5.0"}, {17, "6.0"}, {21, "7.0"}, {25, "8.0"}};
  for (const auto& [version, release] : k_releases) {
    if (double(version) == wire) return release;
  }
  return {};
}

} // namespace

std::string
describe(const Certificate& certificate)
{
  std::vector<std::string> parts;
  if (!certificate.subject_cn.empty()) parts.push_back("cert CN=" + clean(certificate.subject_cn));
  if (!certificate.issuer_cn.empty() && certificate.issuer_cn != certificate.subject_cn) {
    parts.push_back("issuer CN=" + clean(certificate.issuer_cn));
  }
  if (certificate.subject_cn.empty() && !certificate.names.empty()) parts.push_back("cert for " + clean(certificate.names.front()));
  return fmt::format("{}", fmt::join(parts, ", "));
}

bool
http_response_complete(std::string_view bytes)
{
  auto head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return false;
  auto head = lower(bytes.substr(0, head_end));
  auto body = bytes.substr(head_end + 4);
  if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    return body.starts_with("0\r\n") || body.find("\r\n0\r\n") != std::string_view::npos;
  }
  auto at = head.find("\r\ncontent-length:");
  if (at == std::string::npos) return head.starts_with("http/1.1 204") || head.starts_with("http/1.1 304");
  auto length = std::strtoull(head.c_str() + at + 17, nullptr, 10);
  return body.size() >= length;
}

std::optional<HttpResponse>
parse_http_response(std::string_view bytes)
{
  if (!bytes.starts_with("HTTP/1.")) return std::nullopt;
  auto head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return std::nullopt;
  HttpResponse response;
  auto line_end = bytes.find("\r\n");
  auto status_line = bytes.substr(0, line_end);
  if (status_line.size() < 12 || status_line[8] != ' ') return std::nullopt;
  for (std::size_t i = 9; i < 12; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(status_line[i]))) return std::nullopt;
    response.status = response.status * 10 + (status_line[i] - '0');
  }
  response.reason = clean(status_line.size() > 13 ? status_line.substr(13) : "");
  std::size_t at = line_end + 2;
  while (at < head_end) {
    auto end = bytes.find("\r\n", at);
    auto line = bytes.substr(at, end - at);
    at = end + 2;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    response.headers.emplace(lower(line.substr(0, colon)), std::string(value));
  }
  auto body = bytes.substr(head_end + 4);
  auto chunked = response.headers.find("transfer-encoding");
  response.body = chunked != response.headers.end() && lower(chunked->second) == "chunked" ? dechunk(body)
                                                                                              : std::string(body);
  return response;
}

Identification
recognise_http(const HttpResponse& response, const Certificate* certificate)
{
  auto json = nlohmann::json::parse(response.body, nullptr, false);
  if (!json.is_discarded() && json.is_object()) {
    // kube-apiserver GET /version: {"major":"1","minor":"31","gitVersion":"v1.31.0",...,"platform":"linux/amd64"}
    if (auto git = json_text(json, "gitVersion"); !git.empty() && json.contains("platform")) {
      return {"kube-apiserver", git, with_tls("kube-apiserver " + git, certificate)};
    }
    // etcd GET /version: {"etcdserver":"3.4.23","etcdcluster":"3.4.0"}
    if (auto server = json_text(json, "etcdserver"); !server.empty()) {
      auto cluster = json_text(json, "etcdcluster");
      return {"etcd", server,
              with_tls(fmt::format("etcd {}{}", server, cluster.empty() ? "" : " (cluster version " + cluster + ")"),
                       certificate)};
    }
    // Elasticsearch GET /: {"name":..., "cluster_name":..., "version":{"number":...}, "tagline":"You Know, for Search"}
    auto version = json.contains("version") ? json_text(json["version"], "number") : std::string();
    if (json_text(json, "tagline") == "You Know, for Search" || (!version.empty() && json.contains("cluster_name"))) {
      bool opensearch = json.contains("version") && json_text(json["version"], "distribution") == "opensearch";
      std::string name = opensearch ? "OpenSearch" : "Elasticsearch";
      auto cluster = json_text(json, "cluster_name");
      return {name, version,
              with_tls(fmt::format("{}{}{}", name, version.empty() ? "" : " " + version,
                                   cluster.empty() ? "" : ", cluster " + cluster),
                       certificate)};
    }
    // Elasticsearch with security on: 401, error.type security_exception.
    if (json.contains("error") && json_text(json["error"], "type") == "security_exception") {
      return {"Elasticsearch", "",
              with_tls(fmt::format("Elasticsearch (security on: {} without credentials)", response.status), certificate)};
    }
    // The API server refusing an anonymous request still speaks Kubernetes.
    if (json_text(json, "kind") == "Status" && json_text(json, "apiVersion") == "v1") {
      return {"kube-apiserver", "",
              with_tls(fmt::format("kube-apiserver ({} {})", response.status, json_text(json, "reason")), certificate)};
    }
  }
  // Elasticsearch's transport port answers HTTP with this (TcpTransport).
  if (response.body.find("This is not an HTTP port") != std::string::npos) {
    return {"Elasticsearch", "", with_tls("Elasticsearch transport (refuses HTTP)", certificate)};
  }
  // mongod answering HTTP on its native port.
  if (response.body.find("trying to access MongoDB over HTTP") != std::string::npos) {
    return {"MongoDB", "", with_tls("MongoDB (answers HTTP with its native-port notice)", certificate)};
  }
  auto server = response.headers.find("server");
  auto status = fmt::format("{} {}", response.status, response.reason);
  if (response.body == "ok" && response.status == 200) status += ", body ok";
  std::string kind = certificate ? "HTTPS" : "HTTP";
  auto summary = server != response.headers.end() && !server->second.empty()
                   ? fmt::format("{} server: {} ({})", kind, clean(server->second), status)
                   : fmt::format("{} server ({})", kind, status);
  return {kind, "", with_tls(summary, certificate)};
}

Identification
recognise_mongodb(const std::map<std::string, bson::Value>& hello, const std::map<std::string, bson::Value>* build_info)
{
  auto ok = bson::number(hello, "ok");
  if (!ok) return {};
  std::string version = build_info ? clean(bson::text(*build_info, "version").value_or("")) : std::string();
  auto wire = bson::number(hello, "maxWireVersion");
  std::string name = bson::text(hello, "msg") == std::optional<std::string>("isdbgrid") ? "MongoDB router (mongos)"
                                                                                       : "MongoDB";
  std::string summary = name;
  if (!version.empty()) {
    summary += " " + version;
  } else if (wire) {
    auto release = mongodb_release(*wire);
    summary += release.empty() ? fmt::format(" (wire version {})", *wire)
                               : fmt::format(" {} (from wire version {})", release, *wire);
    version = release;
  }
  if (*ok == 0) {
    summary += ", hello refused: " + clean(bson::text(hello, "errmsg").value_or("?"));
    return {"MongoDB", version, summary};
  }
  if (auto set = bson::text(hello, "setName")) summary += ", replica set " + clean(*set);
  auto primary = bson::boolean(hello, "isWritablePrimary");
  if (!primary) primary = bson::boolean(hello, "ismaster");
  if (bson::text(hello, "setName")) {
    if (primary.value_or(false)) summary += ", primary";
    else if (bson::boolean(hello, "secondary").value_or(false)) summary += ", secondary";
    else if (bson::boolean(hello, "arbiterOnly").value_or(false)) summary += ", arbiter";
  }
  return {"MongoDB", version, summary};
}

Identification
recognise_certificate(const Certificate& certificate, std::string_view note)
{
  auto has_name = [&](std::string_view name) {
    return std::find(certificate.names.begin(), certificate.names.end(), name) != certificate.names.end();
  };
  std::string service = "TLS";
  // kubeadm: etcd's serving certificates are issued by "etcd-ca"; the API
  // server's name kubernetes.default; the kubelet's self-signed certificate
  // is "HOST@TIMESTAMP" issued by "HOST-ca@TIMESTAMP", a rotated one "system:node:HOST".
  if (certificate.issuer_cn == "etcd-ca") service = "etcd";
  else if (certificate.subject_cn == "kube-apiserver" || has_name("kubernetes.default")) service = "kube-apiserver";
  else if (certificate.subject_cn.starts_with("system:node:") || certificate.issuer_cn.find("-ca@") != std::string::npos) {
    service = "kubelet";
  } else if (lower(certificate.issuer_cn).find("elasticsearch") != std::string::npos) {
    service = "Elasticsearch";
  }
  auto cert = describe(certificate);
  std::string summary = service == "TLS" ? "TLS server" : service;
  std::vector<std::string> parts{"TLS"};
  if (service == "TLS") parts.clear();
  if (!note.empty()) parts.emplace_back(note);
  if (!cert.empty()) parts.push_back(cert);
  if (!parts.empty()) summary += fmt::format(" ({})", fmt::join(parts, ", "));
  return {service, "", summary};
}

} // namespace portmatrix
