// Vocabulary shared by every layer: protocols, roles, port ranges and the
// positioned diagnostics that loaders report. Plain data, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portmatrix {

// IP protocols a requirement can name. vrrp (IP protocol 112: keepalived
// between load-balancer nodes), ipip (4: Calico's IP-in-IP) and esp (50:
// IPsec, Cilium's encryption) have no ports.
enum class Protocol { tcp, udp, vrrp, ipip, esp };

std::string_view to_string(Protocol protocol);
std::optional<Protocol> parse_protocol(std::string_view text);
// "tcp, udp, vrrp, ipip, esp": what parse_protocol accepts, for messages.
std::string_view protocol_names();
// False for the protocols without ports (vrrp, ipip, esp).
bool has_ports(Protocol protocol);
// The protocol's number in the IP header (6, 17, 112, 4, 50).
std::uint8_t ip_protocol_number(Protocol protocol);

// Node roles. `any` is only a requirement source ("from anywhere"); `vip` is
// only a requirement destination (the load balancer's virtual address).
enum class Role { master, worker, mongodb, elasticsearch, loadbalancer, client, any, vip };

std::string_view to_string(Role role);
// Accepts the aliases an operator would write (control-plane for master).
std::optional<Role> parse_role(std::string_view text);
// Roles a node of the inventory may carry (everything but any and vip).
const std::vector<Role>& node_roles();

// How an overlay wraps the frames it carries in the UDP datagrams of its
// port: VXLAN (RFC 7348: Flannel, Calico, Cilium), Geneve (RFC 8926: Cilium),
// WireGuard (its data messages). A port marked with one gets shaped probes
// beside the plain ones (agent/encapsulation.hpp).
enum class Encapsulation { none, vxlan, geneve, wireguard };
std::string_view to_string(Encapsulation encapsulation);
std::optional<Encapsulation> parse_encapsulation(std::string_view text);

enum class Expect { allow, deny };
std::string_view to_string(Expect expect);

// An inclusive range of ports; min == max for a single port. Both are 0 for a
// protocol without ports.
struct PortRange
{
  std::uint16_t min = 0;
  std::uint16_t max = 0;

  bool single() const { return min == max; }
  std::uint32_t size() const { return std::uint32_t(max) - min + 1; }
  bool overlaps(const PortRange& other) const { return min <= other.max && other.min <= max; }
  friend bool operator==(const PortRange&, const PortRange&) = default;
  friend auto operator<=>(const PortRange&, const PortRange&) = default;
};

// "6443" or "2379-2380"; the caller names the separator it printed with.
std::string to_string(const PortRange& range, std::string_view separator = "-");

// Parses "6443", "2379-2380" (also "51820/51821" as the guide writes it).
// Returns an explanation on failure: out of 1-65535, first > last, not a number.
struct PortRangeParse
{
  std::optional<PortRange> range;
  std::string error;
};
PortRangeParse parse_port_range(std::string_view text);

// One problem in an input file, with a 1-based position (0 when unknown).
struct Diagnostic
{
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
};
using Diagnostics = std::vector<Diagnostic>;

// "file:line:column: error: message"
std::string to_string(const Diagnostic& diagnostic);

// How many errors one input (a file, or the checks of a whole profile or
// inventory) may report; one more ends it with "too many errors".
constexpr std::size_t k_max_errors = 100;

// Appends one input's diagnostics to a sink, at most k_max_errors of them:
// the next appends "too many errors (more than 100); fix these first" for
// `file` instead and ends the walk run() is running, wherever it is. Every
// add() must happen inside run(). The sink must outlive the collector.
class BoundedDiagnostics
{
public:
  BoundedDiagnostics(std::string file, Diagnostics& sink) : m_file(std::move(file)), m_sink(sink) {}

  // Runs `walk`; returns false when it was ended at the limit.
  template <class Walk>
  bool run(Walk&& walk);

  void add(Diagnostic diagnostic);
  const std::string& file() const { return m_file; }

private:
  struct Full
  {
  };

  std::string m_file;
  Diagnostics& m_sink;
  std::size_t m_count = 0;
};

template <class Walk>
bool
BoundedDiagnostics::run(Walk&& walk)
{
  try {
    walk();
    return true;
  } catch (const Full&) {
    return false;
  }
}

// How many bytes of an input value a message quotes; the rest is counted.
constexpr std::size_t k_max_quoted = 64;

// `text` as a message quotes it: control characters written as escapes ("\0",
// "\t", "\x1b"), so an embedded NUL or escape shows instead of vanishing, and
// past k_max_quoted bytes cut (at a character boundary) and followed by
// "... (N bytes)", so a 5 MB value does not make a 5 MB message. Every input
// value quoted into a diagnostic goes through here.
std::string printable(std::string_view text);

} // namespace portmatrix
