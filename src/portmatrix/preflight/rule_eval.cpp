// Shared pieces of the firewall evaluators: addresses with prefixes and
// ranges, the interval walk over a port range, combining two firewalls.
#include "preflight/rule_eval.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace portmatrix {

std::optional<IpAddress>
IpAddress::parse(std::string_view text)
{
  // inet_pton reads a C string: it would stop at an embedded NUL.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  std::string copy(text);
  IpAddress address;
  if (::inet_pton(AF_INET, copy.c_str(), address.bytes.data()) == 1) return address;
  address.v6 = true;
  if (::inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) == 1) return address;
  return std::nullopt;
}

bool
IpAddress::in_prefix(const IpAddress& network, std::size_t length) const
{
  if (v6 != network.v6 || length > bits()) return false;
  std::size_t whole = length / 8;
  if (std::memcmp(bytes.data(), network.bytes.data(), whole) != 0) return false;
  if (length % 8 == 0) return true;
  unsigned mask = 0xFFu << (8 - length % 8) & 0xFFu;
  return (bytes[whole] & mask) == (network.bytes[whole] & mask);
}

std::optional<bool>
address_matches(const IpAddress& address, std::string_view text)
{
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    auto network = IpAddress::parse(text.substr(0, slash));
    std::size_t length = 0;
    for (char c : text.substr(slash + 1)) {
      if (c < '0' || c > '9' || length > 128) return std::nullopt;
      length = length * 10 + std::size_t(c - '0');
    }
    if (!network || length > network->bits()) return std::nullopt;
    return address.in_prefix(*network, length);
  }
  if (auto dash = text.find('-'); dash != std::string_view::npos) {
    auto first = IpAddress::parse(text.substr(0, dash));
    auto last = IpAddress::parse(text.substr(dash + 1));
    if (!first || !last) return std::nullopt;
    return address.v6 == first->v6 && *first <= address && address <= *last;
  }
  auto single = IpAddress::parse(text);
  if (!single) return std::nullopt;
  return *single == address;
}

std::string_view
to_string(Decision decision)
{
  switch (decision) {
  case Decision::accept: return "accept";
  case Decision::drop: return "drop";
  case Decision::reject: return "reject";
  case Decision::unknown: return "unknown";
  }
  return "unknown";
}

std::vector<RangeDecision>
decide_by_interval(PortRange range, const std::vector<std::uint32_t>& breakpoints,
                   const std::function<PortDecision(std::uint16_t port)>& decide)
{
  std::vector<std::uint32_t> starts{range.min};
  for (auto point : breakpoints) {
    if (point > range.min && point <= range.max) starts.push_back(point);
  }
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  std::vector<RangeDecision> runs;
  for (std::size_t i = 0; i < starts.size(); ++i) {
    auto last = i + 1 < starts.size() ? starts[i + 1] - 1 : std::uint32_t(range.max);
    auto decision = decide(std::uint16_t(starts[i]));
    if (!runs.empty() && runs.back().decision == decision.decision && runs.back().rule == decision.rule) {
      runs.back().ports.max = std::uint16_t(last);
    } else {
      runs.push_back({{std::uint16_t(starts[i]), std::uint16_t(last)}, decision.decision, std::move(decision.rule)});
    }
  }
  return runs;
}

PortDecision
combine(const std::vector<PortDecision>& decisions)
{
  auto rank = [](Decision d) { return d == Decision::drop || d == Decision::reject ? 0 : d == Decision::unknown ? 1 : 2; };
  const PortDecision* worst = nullptr;
  for (const auto& d : decisions) {
    if (!worst || rank(d.decision) < rank(worst->decision)) worst = &d;
  }
  if (!worst) return {Decision::accept, "no firewall rules"};
  return *worst;
}

} // namespace portmatrix
