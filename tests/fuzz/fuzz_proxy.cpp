// Fuzz target: what the egress check reads from its configuration and from a
// proxy. The input is split at its first NUL: the first part goes through
// the proxy URL parser, the NO_PROXY list and the environment's proxy
// settings, the second is matched against that list as a host name; the
// whole input goes through the proxy answer parser (a CONNECT reply's head).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "egress/proxy.hpp"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  using namespace portmatrix;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto split = bytes.find('\0');
  std::string first(bytes.substr(0, split));
  std::string second(split == std::string_view::npos ? std::string_view() : bytes.substr(split + 1));

  if (auto url = parse_proxy_url(first)) {
    (void)url->display();
    (void)url->authorization();
    if (url->host.empty()) std::abort();
  }
  NoProxy list(first);
  (void)list.matches(second);
  (void)list.empty();
  auto settings = proxy_settings("", "", [&](const char* name) -> const char* {
    return std::string_view(name) == "https_proxy" ? first.c_str() : std::string_view(name) == "no_proxy" ? second.c_str() : nullptr;
  });
  if (settings && settings->https) (void)settings->no_proxy.matches(settings->https->host);
  if (auto answer = parse_proxy_answer(bytes)) {
    if (answer->code < 100 || answer->code > 999) std::abort();
  }
  (void)base64(bytes);
  return 0;
}
