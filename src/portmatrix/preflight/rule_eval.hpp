// What a host firewall decides for one inbound flow, shared by the nftables
// and iptables evaluators: the packet, the decision and the rule that made it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/types.hpp"

namespace portmatrix {

// An IPv4 or IPv6 address as 16 bytes (IPv4 in the first 4), for prefix and
// range comparisons.
struct IpAddress
{
  bool v6 = false;
  std::array<unsigned char, 16> bytes{};

  // "10.0.0.1" or "fd00::1"; nullopt otherwise.
  static std::optional<IpAddress> parse(std::string_view text);
  std::size_t bits() const { return v6 ? 128 : 32; }
  // True when the first `length` bits equal `network`'s (same family).
  bool in_prefix(const IpAddress& network, std::size_t length) const;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

// "10.0.0.0/8", "10.0.0.1-10.0.0.9" or a single address: true when `address`
// falls inside. nullopt when `text` is none of these.
std::optional<bool> address_matches(const IpAddress& address, std::string_view text);

// A new inbound connection (TCP SYN or first UDP datagram) to this node.
struct Packet
{
  IpAddress source;
  IpAddress destination;
  Protocol protocol = Protocol::tcp;
  std::uint16_t port = 0;
  std::string interface; // incoming interface name; empty when unknown
};

enum class Decision { accept, drop, reject, unknown };
std::string_view to_string(Decision decision);

// A decision for a run of destination ports, with the rule that made it
// ("inet portmatrix input #7: tcp dport 10250 drop", or "chain input policy drop").
struct RangeDecision
{
  PortRange ports;
  Decision decision = Decision::unknown;
  std::string rule;
};

struct PortDecision
{
  Decision decision = Decision::unknown;
  std::string rule;
};

// Evaluates `decide` once per run of ports between consecutive `breakpoints`
// (ports where some rule's port match may change: a value v gives v and
// v + 1, a range a-b gives a and b + 1) inside `range`, and merges adjacent
// runs with the same decision and rule. So a 5,536-port range costs a
// handful of evaluations, not 5,536.
std::vector<RangeDecision> decide_by_interval(PortRange range, const std::vector<std::uint32_t>& breakpoints,
                                              const std::function<PortDecision(std::uint16_t port)>& decide);

// One firewall that can be asked about a packet (nftables, iptables).
class RuleEvaluator
{
public:
  virtual ~RuleEvaluator() = default;
  // The decision for `packet` and the rule that made it.
  virtual PortDecision decide(const Packet& packet) const = 0;
  // Every port where a port match of some rule may change its result.
  virtual std::vector<std::uint32_t> breakpoints() const = 0;
};

// Decisions of several firewalls a packet traverses one after the other
// (nftables and iptables-legacy both hook input): a drop or reject wins,
// then unknown, then accept. An empty list accepts (no firewall).
PortDecision combine(const std::vector<PortDecision>& decisions);

} // namespace portmatrix
