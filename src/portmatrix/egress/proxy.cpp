// Proxy URL and NO_PROXY parsing. The rules follow curl (which apt, containerd
// and kubeadm's image pulls mostly agree with): lower-case variables win, a
// NO_PROXY entry matches the host and its subdomains, "*" disables the proxy.
#include "egress/proxy.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace portmatrix {

std::string
base64(std::string_view data)
{
  static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    unsigned v = (unsigned char)data[i] << 16 | (unsigned char)data[i + 1] << 8 | (unsigned char)data[i + 2];
    out += {k_alphabet[v >> 18], k_alphabet[(v >> 12) & 63], k_alphabet[(v >> 6) & 63], k_alphabet[v & 63]};
  }
  if (i + 1 == data.size()) {
    unsigned v = (unsigned char)data[i] << 16;
    out += {k_alphabet[v >> 18], k_alphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == data.size()) {
    unsigned v = (unsigned char)data[i] << 16 | (unsigned char)data[i + 1] << 8;
    out += {k_alphabet[v >> 18], k_alphabet[(v >> 12) & 63], k_alphabet[(v >> 6) & 63], '='};
  }
  return out;
}

std::string
ProxyUrl::display() const
{
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::string
ProxyUrl::authorization() const
{
  if (user.empty()) return {};
  return "Basic " + base64(user + ":" + password);
}

namespace {

std::optional<std::string>
percent_decode(std::string_view text)
{
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    int value = 0;
    if (i + 2 >= text.size()) return std::nullopt;
    auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc() || end != text.data() + i + 3) return std::nullopt;
    out += char(value);
    i += 2;
  }
  return out;
}

std::string
lower(std::string_view text)
{
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

} // namespace

Expected<ProxyUrl, std::string>
parse_proxy_url(std::string_view text)
{
  std::string_view rest = text;
  if (auto scheme = rest.find("://"); scheme != std::string_view::npos) {
    if (lower(rest.substr(0, scheme)) != "http") {
      return unexpected(fmt::format("'{}': only http:// proxies are supported (the tunnel to the host is TLS)", text));
    }
    rest.remove_prefix(scheme + 3);
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") return unexpected(fmt::format("'{}': a proxy URL has no path", text));
    rest = rest.substr(0, slash);
  }
  ProxyUrl url;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    auto credentials = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    auto colon = credentials.find(':');
    auto user = percent_decode(credentials.substr(0, colon));
    auto password = colon == std::string_view::npos ? std::optional<std::string>("")
                                                    : percent_decode(credentials.substr(colon + 1));
    if (!user || !password || user->empty()) {
      return unexpected(fmt::format("'{}': malformed user:password (percent-encode special characters)", text));
    }
    url.user = *user;
    url.password = *password;
  }
  std::string_view port_text;
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return unexpected(fmt::format("'{}': unterminated [IPv6 address]", text));
    url.host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (!rest.empty() && rest.front() != ':') return unexpected(fmt::format("'{}': junk after the address", text));
    if (!rest.empty()) port_text = rest.substr(1);
  } else {
    auto colon = rest.find(':');
    url.host = rest.substr(0, colon);
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
    if (colon != std::string_view::npos && port_text.empty()) {
      return unexpected(fmt::format("'{}': empty port", text));
    }
  }
  if (url.host.empty()) return unexpected(fmt::format("'{}': no proxy host", text));
  if (!port_text.empty()) {
    int port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 || port > 65535) {
      return unexpected(fmt::format("'{}': the port must be 1-65535", text));
    }
    url.port = std::uint16_t(port);
  }
  return url;
}

NoProxy::NoProxy(std::string_view list)
{
  while (!list.empty()) {
    auto end = list.find_first_of(", ");
    auto entry = list.substr(0, end);
    list = end == std::string_view::npos ? std::string_view{} : list.substr(end + 1);
    if (entry.empty()) continue;
    if (entry == "*") {
      m_all = true;
      continue;
    }
    // Strip a ":port" (not from a bare IPv6 address: it has several colons).
    if (auto colon = entry.rfind(':'); colon != std::string_view::npos && entry.find(':') == colon) {
      entry = entry.substr(0, colon);
    }
    if (entry.starts_with("[") && entry.ends_with("]")) entry = entry.substr(1, entry.size() - 2);
    while (entry.starts_with('.') || entry.starts_with("*.")) entry.remove_prefix(entry.front() == '*' ? 2 : 1);
    if (!entry.empty()) m_suffixes.push_back(lower(entry));
  }
}

bool
NoProxy::matches(std::string_view host) const
{
  if (m_all) return true;
  auto name = lower(host);
  while (name.ends_with('.')) name.pop_back();
  return std::any_of(m_suffixes.begin(), m_suffixes.end(), [&](const std::string& suffix) {
    return name == suffix || (name.size() > suffix.size() && name.ends_with(suffix) &&
                              name[name.size() - suffix.size() - 1] == '.');
  });
}

Expected<ProxySettings, std::string>
proxy_settings(std::string_view cli_proxy, std::string_view cli_no_proxy, const Getenv& getenv,
               std::string_view proxy_label)
{
  ProxySettings settings;
  auto variable = [&](const char* lower_name, const char* upper_name, std::string& name) -> std::string {
    for (const char* candidate : {lower_name, upper_name}) {
      const char* value = getenv(candidate);
      if (value && *value) {
        name = candidate;
        return value;
      }
    }
    return {};
  };
  auto parse = [&](const std::string& text, const std::string& source) -> Expected<std::optional<ProxyUrl>, std::string> {
    if (text.empty()) return std::optional<ProxyUrl>{};
    auto url = parse_proxy_url(text);
    if (!url) return unexpected(fmt::format("{}: {}", source, url.error()));
    return std::optional<ProxyUrl>(*url);
  };
  if (!cli_proxy.empty()) {
    auto url = parse(std::string(cli_proxy), std::string(proxy_label));
    if (!url) return unexpected(url.error());
    settings.https = *url;
    settings.http = *url;
    settings.source = proxy_label;
  } else {
    std::string https_name;
    std::string http_name;
    auto https = parse(variable("https_proxy", "HTTPS_PROXY", https_name), https_name);
    if (!https) return unexpected(https.error());
    auto http = parse(variable("http_proxy", "HTTP_PROXY", http_name), http_name);
    if (!http) return unexpected(http.error());
    settings.https = *https;
    settings.http = *http;
    settings.source = https_name.empty() ? http_name : https_name;
  }
  std::string no_proxy_name;
  std::string no_proxy = cli_no_proxy.empty() ? variable("no_proxy", "NO_PROXY", no_proxy_name) : std::string(cli_no_proxy);
  settings.no_proxy = NoProxy(no_proxy);
  return settings;
}

std::optional<ProxyAnswer>
parse_proxy_answer(std::string_view head)
{
  ProxyAnswer answer;
  answer.line = std::string(head.substr(0, head.find("\r\n")));
  auto space = answer.line.find(' ');
  if (!answer.line.starts_with("HTTP/") || space == std::string::npos) return std::nullopt;
  // Three digits, as RFC 9110 writes a status code (atoi would overflow on a long one).
  std::string_view code = std::string_view(answer.line).substr(space + 1, 3);
  auto [end, error] = std::from_chars(code.data(), code.data() + code.size(), answer.code);
  if (error != std::errc() || end != code.data() + 3 || answer.code < 100) return std::nullopt;
  std::string lower(head);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  answer.proxy_auth = lower.find("\r\nproxy-authenticate:") != std::string::npos;
  return answer;
}

} // namespace portmatrix
