// An overlay port's shaped probe beside its plain one. A network can pass
// plain UDP to 8472 and drop VXLAN (a hypervisor's distributed firewall that
// knows the protocol: flannel-io/flannel #2388): the plain probe then
// passes, the shaped one is dropped, and the flow fails with
// `encapsulation-dropped` instead of passing.
#include "check/overlay.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "agent/encapsulation.hpp"
#include "agent/identity.hpp"

#include "check/diagnosis.hpp"

namespace portmatrix {
namespace {

std::string
shape_words(const ProbeTarget& shaped)
{
  switch (shaped.encapsulation) {
  case Encapsulation::vxlan:
    return fmt::format("VXLAN's shape (flags 0x08, VNI {}, an inner Ethernet + IPv4 frame)", shaped.vni);
  case Encapsulation::geneve: return fmt::format("Geneve's shape (base header, VNI {}, an inner Ethernet frame)", shaped.vni);
  case Encapsulation::wireguard: return "the shape of a WireGuard data message (type 4 header, 32 + 16n bytes)";
  case Encapsulation::none: break;
  }
  return "its overlay's shape";
}

} // namespace

std::optional<ProbeTarget>
shaped_target(const Flow& flow, const NamedPort* port, const ProbeTarget& plain)
{
  if (!port || port->encapsulation == Encapsulation::none || !flow.to || flow.protocol != Protocol::udp ||
      flow.expect != Expect::allow) {
    return std::nullopt;
  }
  auto shaped = plain;
  shaped.encapsulation = port->encapsulation;
  shaped.vni = port->vni;
  return shaped;
}

bool
answered_by_agent(const std::vector<Segment>& segments, const std::string& node)
{
  return !segments.empty() && std::all_of(segments.begin(), segments.end(), [&](const Segment& segment) {
    return segment.state == ProbeState::open && segment.authentic && segment.responder == node;
  });
}

std::optional<ProbeTarget>
full_size_target(const ProbeTarget& shaped, std::uint32_t mtu)
{
  if (mtu == 0 || mtu > 65535 || mtu <= shaped_probe_size(shaped, shaped.address.find(':') != std::string::npos)) {
    return std::nullopt;
  }
  auto full = shaped;
  full.size = std::uint16_t(mtu);
  return full;
}

std::uint32_t
shaped_probe_size(const ProbeTarget& shaped, bool ipv6)
{
  auto payload = shape_probe({shaped.encapsulation, shaped.vni}, make_probe_payload(std::string(16, '0'))).size();
  return std::uint32_t(payload + (ipv6 ? 48 : 28));
}

std::uint32_t
backend_overhead(Encapsulation encapsulation)
{
  switch (encapsulation) {
  case Encapsulation::vxlan:
  case Encapsulation::geneve: return 50;
  case Encapsulation::wireguard: return 80;
  case Encapsulation::none: break;
  }
  return 0;
}

std::optional<FlowFailure>
diagnose_full_size(const ProbeTarget& full, const std::vector<Segment>& segments, const MtuEvidence& evidence)
{
  if (answered_by_agent(segments, evidence.destination)) return std::nullopt;
  if (evidence.search && evidence.search->lost_by_chance()) return std::nullopt;
  if (std::any_of(segments.begin(), segments.end(), [](const Segment& s) { return s.state == ProbeState::unprobed; })) {
    return std::nullopt;
  }
  const auto& first = segments.front();
  auto mtu = [](std::uint32_t value) { return value == 0 ? std::string("unknown") : std::to_string(value); };
  std::string largest = "not searched (no time left before the deadline)";
  std::string advice;
  if (evidence.search && evidence.search->steps > 0) {
    largest = fmt::format("{} bytes", evidence.search->passed);
    auto overhead = backend_overhead(full.encapsulation);
    if (evidence.search->passed > overhead) {
      advice = fmt::format("; the overlay's own MTU must be at most {} (the path's {} less the backend's {})",
                           evidence.search->passed - overhead, evidence.search->passed, overhead);
    }
  }
  return FlowFailure{
    first.range, state_name(first.state), "mtu-blackhole",
    fmt::format("the overlay's small probes passed, its full-size probe ({} bytes, DF set: {}'s interface MTU) got "
                "no answer ({}): a link on the path has a smaller MTU and its ICMP 'fragmentation needed' never "
                "came back. Largest size that passed: {}; interface MTUs: {} {}, {} {}; {} adds {} bytes{}",
                full.size, evidence.source, state_name(first.state), largest, evidence.source, mtu(evidence.mtu_from),
                evidence.destination, mtu(evidence.mtu_to), to_string(full.encapsulation),
                backend_overhead(full.encapsulation), advice)};
}

RttSummary
summarize_rtts(std::vector<std::uint32_t> samples)
{
  RttSummary summary;
  summary.samples = samples.size();
  if (samples.empty()) return summary;
  std::sort(samples.begin(), samples.end());
  auto rank = [&](double share) {
    auto index = std::size_t(std::max(1.0, std::ceil(share * double(samples.size())))) - 1;
    return std::chrono::microseconds(samples[std::min(index, samples.size() - 1)]);
  };
  summary.median = rank(0.5);
  summary.p99 = rank(0.99);
  return summary;
}

std::vector<FlowFailure>
diagnose_shaped(const FlowResult& plain, const ProbeTarget& shaped, const std::vector<Segment>& segments)
{
  std::vector<FlowFailure> failures;
  if (plain.verdict != Verdict::pass) return failures;
  for (const auto& segment : segments) {
    bool answered = segment.state == ProbeState::open && segment.authentic && segment.responder == plain.to;
    if (answered || segment.state == ProbeState::unprobed) continue;
    auto port = to_string(segment.range);
    auto got = segment.state == ProbeState::open
                 ? (segment.responder.empty() ? std::string("an answer without our identity")
                                              : fmt::format("an answer from {}", segment.responder))
                 : fmt::format("no answer from {}'s agent ({})", plain.to, state_name(segment.state));
    failures.push_back(
      {segment.range, state_name(segment.state), "encapsulation-dropped",
       fmt::format("plain UDP to {} passed ({}'s agent answered); the same probe in {} got {}: something on the "
                   "path drops the overlay's packets by their shape",
                   port, plain.to, shape_words(shaped), got)});
  }
  return failures;
}

} // namespace portmatrix
