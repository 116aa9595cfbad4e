// HTTP proxy settings for the egress check, as curl, apt and containerd read
// them: a proxy URL (http://[user:pass@]host:port) from --proxy or
// HTTPS_PROXY/https_proxy (HTTP_PROXY/http_proxy for plain-HTTP targets), and
// NO_PROXY/no_proxy (exact names, domain suffixes, `*`). Pure parsing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.hpp"

namespace portmatrix {

struct ProxyUrl
{
  std::string host; // name or address (an IPv6 address without brackets)
  std::uint16_t port = 80;
  std::string user; // percent-decoded; empty: no Proxy-Authorization
  std::string password;

  // "host:port" (brackets around IPv6), without the credentials: for reports.
  std::string display() const;
  // The Proxy-Authorization header value ("Basic base64(user:password)"), or empty.
  std::string authorization() const;
};

// Parses "http://[user:pass@]host[:port][/]" or "[user:pass@]host[:port]"
// (port default 80, the http scheme's). Returns the reason on a malformed
// URL or a scheme other than http.
Expected<ProxyUrl, std::string> parse_proxy_url(std::string_view text);

// A NO_PROXY list: comma or space separated; "*" matches every host; an entry
// matches the host itself and its subdomains ("example.com" and
// ".example.com" both match "a.example.com"); a ":port" suffix is ignored.
class NoProxy
{
public:
  NoProxy() = default;
  explicit NoProxy(std::string_view list);
  bool matches(std::string_view host) const;
  bool empty() const { return !m_all && m_suffixes.empty(); }

private:
  bool m_all = false;
  std::vector<std::string> m_suffixes; // lower case, no leading dot
};

struct ProxySettings
{
  std::optional<ProxyUrl> https; // for TLS targets (CONNECT)
  std::optional<ProxyUrl> http;  // for plain-HTTP targets (absolute-URI requests)
  NoProxy no_proxy;
  std::string source; // where the settings came from, for messages ("--proxy", "HTTPS_PROXY")
};

// From `--proxy` (used for both schemes when given; `proxy_label` names it in
// messages, e.g. the inventory's egress proxy) or the environment, read
// through `getenv` (lower-case names first, as curl does). Returns
// "VARIABLE: reason" for a malformed URL.
using Getenv = std::function<const char*(const char*)>;
Expected<ProxySettings, std::string> proxy_settings(std::string_view cli_proxy, std::string_view cli_no_proxy,
                                                    const Getenv& getenv, std::string_view proxy_label = "--proxy");
// The inventory's egress proxy (egress: proxy, no_proxy), else the environment.
constexpr std::string_view k_inventory_proxy_label = "the inventory's egress proxy";

// A proxy's answer to CONNECT or to a proxied request: its status line and
// whether it asks for credentials.
struct ProxyAnswer
{
  int code = 0;
  std::string line;        // "HTTP/1.1 403 Filtered"
  bool proxy_auth = false; // a Proxy-Authenticate header: the proxy wants credentials
};
// Parses a response head (status line, headers, up to the blank line) as a
// proxy sends it; nullopt when it is no HTTP status (the code is 100-999).
std::optional<ProxyAnswer> parse_proxy_answer(std::string_view head);

// Base64 of `data` (RFC 4648, padded).
std::string base64(std::string_view data);

} // namespace portmatrix
