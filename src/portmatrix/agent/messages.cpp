// JSON for the control bodies. Every parser checks types before reading and
// bounds list sizes, because the agent parses bodies from the network (after
// authentication, but a buggy or compromised peer must still not crash it).
#include "agent/messages.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/responder.hpp"
#include "agent/control_protocol.hpp"
#include "egress/result_json.hpp"
#include "model/provable.hpp"
#include "util/json_depth.hpp"

namespace portmatrix {

using nlohmann::json;

namespace {

constexpr std::size_t k_max_items = 100000;

struct ParseError
{
  std::string message;
};

const json&
field(const json& object, const char* name)
{
  auto it = object.find(name);
  if (it == object.end()) throw ParseError{fmt::format("missing field '{}'", name)};
  return *it;
}

std::string
text_field(const json& object, const char* name)
{
  const auto& value = field(object, name);
  if (!value.is_string()) throw ParseError{fmt::format("field '{}' must be a string", name)};
  return value.get<std::string>();
}

std::int64_t
number_field(const json& object, const char* name, std::int64_t min, std::int64_t max)
{
  const auto& value = field(object, name);
  if (!value.is_number_integer()) throw ParseError{fmt::format("field '{}' must be an integer", name)};
  auto number = value.get<std::int64_t>();
  if (number < min || number > max) throw ParseError{fmt::format("field '{}' out of range", name)};
  return number;
}

// A count that older peers do not send: 0 when absent.
std::uint64_t
optional_count(const json& object, const char* name)
{
  return object.contains(name) ? std::uint64_t(number_field(object, name, 0, INT64_MAX)) : 0;
}

bool
bool_field(const json& object, const char* name)
{
  const auto& value = field(object, name);
  if (!value.is_boolean()) throw ParseError{fmt::format("field '{}' must be true or false", name)};
  return value.get<bool>();
}

const json&
list_field(const json& object, const char* name)
{
  const auto& value = field(object, name);
  if (!value.is_array()) throw ParseError{fmt::format("field '{}' must be a list", name)};
  if (value.size() > k_max_items) throw ParseError{fmt::format("field '{}' has too many items", name)};
  return value;
}

// A protocol the prober has a probe for: tcp, udp, ipip.
Protocol
protocol_field(const json& object)
{
  auto protocol = parse_protocol(text_field(object, "protocol"));
  if (!protocol || !has_probe(*protocol)) throw ParseError{"protocol must be tcp, udp or ipip"};
  return *protocol;
}

// Ports 1-65535 of `protocol`, or 0-0 for one without ports (ipip); any
// (a segment of a probe's result) without one.
PortRange
range_fields(const json& object, std::optional<Protocol> protocol = std::nullopt)
{
  bool portless = protocol && !has_ports(*protocol);
  std::int64_t lowest = !protocol ? 0 : portless ? 0 : 1;
  std::int64_t highest = portless ? 0 : 65535;
  PortRange range{std::uint16_t(number_field(object, "port_min", lowest, highest)),
                  std::uint16_t(number_field(object, "port_max", lowest, highest))};
  if (range.min > range.max) throw ParseError{"port_min above port_max"};
  return range;
}

template <class T, class F>
Expected<T, std::string>
parse_with(std::string_view text, F&& read)
{
  if (!json_depth_within(text, k_max_json_depth)) return unexpected(std::string("body nests too deep"));
  auto document = json::parse(text, nullptr, false);
  if (document.is_discarded() || !document.is_object()) return unexpected(std::string("body is not a JSON object"));
  try {
    return read(document);
  } catch (const ParseError& e) {
    return unexpected(e.message);
  } catch (const json::exception& e) {
    return unexpected(std::string("malformed body: ") + e.what());
  }
}

} // namespace

std::optional<ProbeState>
parse_probe_state(std::string_view text)
{
  for (auto state : {ProbeState::open, ProbeState::refused, ProbeState::admin_prohibited, ProbeState::unreachable,
                     ProbeState::blocked_locally, ProbeState::filtered, ProbeState::error, ProbeState::unprobed}) {
    if (to_string(state) == text) return state;
  }
  return std::nullopt;
}

std::vector<Segment>
compress(const TargetOutcome& outcome)
{
  std::vector<Segment> segments;
  for (const auto& port : outcome.ports) {
    Segment segment{{port.port, port.port},
                    port.state,
                    port.error,
                    port.responder ? port.responder->node : std::string(),
                    port.responder && port.responder->authentic,
                    port.responders,
                    port.silent};
    if (!segments.empty()) {
      auto& last = segments.back();
      if (last.range.max + 1 == port.port && last.state == segment.state && last.error == segment.error &&
          last.responder == segment.responder && last.authentic == segment.authentic &&
          last.responders == segment.responders && last.silent == segment.silent) {
        last.range.max = port.port;
        continue;
      }
    }
    segments.push_back(std::move(segment));
  }
  return segments;
}

std::string
to_json(const HelloRequest& request)
{
  json body = json::object();
  if (request.deadline.count() > 0) body["deadline_ms"] = request.deadline.count();
  return body.dump();
}

std::string
to_json(const HelloReply& reply)
{
  json owners = json::array();
  for (const auto& owner : reply.owners) {
    owners.push_back({{"protocol", to_string(owner.protocol)},
                      {"port", owner.port},
                      {"pid", owner.pid},
                      {"process", owner.process},
                      {"error", owner.error},
                      {"service", owner.service.substr(0, k_max_service_text)}});
  }
  json body{{"node", reply.node},
            {"version", reply.version},
            {"instance", reply.instance},
            {"capture", reply.capture},
            {"capture_error", reply.capture_error},
            {"capture_lost", reply.capture_lost},
            {"capture_mark", reply.capture_mark},
            {"answered_mark", reply.answered_mark},
            {"window", reply.window},
            {"listeners", reply.listeners},
            {"owners", owners}};
  if (reply.mtu > 0) body["mtu"] = reply.mtu;
  return body.dump();
}

std::string
to_json(const ProbeRequest& request)
{
  json targets = json::array();
  for (const auto& target : request.targets) {
    targets.push_back({{"protocol", to_string(target.protocol)},
                       {"address", target.address},
                       {"port_min", target.range.min},
                       {"port_max", target.range.max},
                       {"repeat", target.repeat}});
    if (target.encapsulation != Encapsulation::none) {
      targets.back()["encapsulation"] = to_string(target.encapsulation);
      targets.back()["vni"] = target.vni;
    }
    if (target.size > 0) targets.back()["size"] = target.size;
    if (!target.identity) targets.back()["identity"] = false;
  }
  json body{{"timeout_ms", request.timeout.count()}, {"retries", request.retries}, {"targets", targets}};
  if (request.continues) body["continues"] = true;
  if (request.budget.count() > 0) body["budget_ms"] = request.budget.count();
  if (request.conntrack_ceiling != k_default_conntrack_ceiling) body["conntrack_ceiling"] = request.conntrack_ceiling;
  return body.dump();
}

std::string
to_json(const ProbeReply& reply)
{
  json targets = json::array();
  for (const auto& segments : reply.targets) {
    json list = json::array();
    for (const auto& s : segments) {
      json item{{"port_min", s.range.min},
                {"port_max", s.range.max},
                {"state", to_string(s.state)},
                {"error", s.error},
                {"responder", s.responder},
                {"authentic", s.authentic},
                {"responders", s.responders}};
      if (s.silent > 0) item["silent"] = s.silent;
      list.push_back(std::move(item));
    }
    targets.push_back(std::move(list));
  }
  json body{{"targets", targets}};
  if (std::any_of(reply.rtts.begin(), reply.rtts.end(), [](const auto& rtts) { return !rtts.empty(); })) {
    body["rtt_us"] = reply.rtts;
  }
  if (reply.held.time.count() > 0) {
    body["held_ms"] = reply.held.time.count();
    body["held_count"] = reply.held.fullest.count;
    body["held_max"] = reply.held.fullest.max;
  }
  return body.dump();
}

std::string
to_json(const std::vector<ObservedQuery>& queries)
{
  json list = json::array();
  for (const auto& q : queries) {
    json query{{"protocol", to_string(q.protocol)},
               {q.departed ? "destination" : "source", q.peer},
               {"port_min", q.range.min},
               {"port_max", q.range.max}};
    if (q.since != 0) query["since"] = q.since;
    if (q.answered_since != 0) query["answered_since"] = q.answered_since;
    list.push_back(std::move(query));
  }
  return json{{"queries", list}}.dump();
}

std::string
to_json(const ObservedReply& reply)
{
  json answers = json::array();
  for (const auto& a : reply.answers) {
    answers.push_back({{"packets", a.packets},
                       {"ports_seen", a.ports_seen},
                       {"ports_listening", a.ports_listening},
                       {"ports_answered", a.ports_answered}});
  }
  return json{{"capture", reply.capture},
              {"departures", reply.departures},
              {"capture_lost", reply.capture_lost},
              {"departures_lost", reply.departures_lost},
              {"answers", answers}}
    .dump();
}

std::string
to_json(const EgressRequest& request)
{
  return json{{"timeout_ms", request.timeout.count()}, {"deadline_ms", request.deadline.count()}}.dump();
}

std::string
to_json(const EgressReply& reply)
{
  json results = json::array();
  for (const auto& r : reply.results) {
    results.push_back(result_json(r));
  }
  return json{{"error", reply.error}, {"results", results}}.dump();
}

Expected<HelloRequest, std::string>
parse_hello_request(std::string_view text)
{
  return parse_with<HelloRequest>(text, [](const json& document) {
    HelloRequest request;
    if (document.contains("deadline_ms")) {
      request.deadline = std::chrono::milliseconds(number_field(document, "deadline_ms", 0, k_max_probe_budget.count()));
    }
    return request;
  });
}

Expected<HelloReply, std::string>
parse_hello_reply(std::string_view text)
{
  return parse_with<HelloReply>(text, [](const json& document) {
    HelloReply reply;
    reply.node = text_field(document, "node");
    reply.version = text_field(document, "version");
    reply.instance = text_field(document, "instance");
    reply.capture = bool_field(document, "capture");
    reply.capture_error = text_field(document, "capture_error");
    reply.capture_lost = optional_count(document, "capture_lost");
    reply.capture_mark = optional_count(document, "capture_mark");
    reply.answered_mark = optional_count(document, "answered_mark");
    reply.window = optional_count(document, "window");
    reply.mtu = std::uint32_t(std::min<std::uint64_t>(optional_count(document, "mtu"), 65535));
    reply.listeners = std::size_t(number_field(document, "listeners", 0, 1 << 24));
    for (const auto& item : list_field(document, "owners")) {
      if (!item.is_object()) throw ParseError{"owner must be an object"};
      PortOwner owner;
      owner.protocol = protocol_field(item);
      owner.port = std::uint16_t(number_field(item, "port", 1, 65535));
      owner.pid = int(number_field(item, "pid", 0, 1 << 30));
      owner.process = text_field(item, "process");
      owner.error = text_field(item, "error");
      // Optional: agents before "who answers" do not send it.
      if (item.contains("service")) owner.service = text_field(item, "service").substr(0, k_max_service_text);
      reply.owners.push_back(std::move(owner));
    }
    return reply;
  });
}

Expected<ProbeRequest, std::string>
parse_probe_request(std::string_view text)
{
  return parse_with<ProbeRequest>(text, [](const json& document) {
    ProbeRequest request;
    request.timeout = std::chrono::milliseconds(number_field(document, "timeout_ms", 10, 60000));
    if (document.contains("retries")) request.retries = int(number_field(document, "retries", 0, 3));
    request.continues = document.contains("continues") && bool_field(document, "continues");
    if (document.contains("budget_ms")) request.budget = std::chrono::milliseconds(number_field(document, "budget_ms", 0, k_max_probe_budget.count()));
    if (document.contains("conntrack_ceiling")) {
      request.conntrack_ceiling = int(number_field(document, "conntrack_ceiling", 1, 100));
    }
    for (const auto& item : list_field(document, "targets")) {
      if (!item.is_object()) throw ParseError{"target must be an object"};
      ProbeTarget target;
      target.protocol = protocol_field(item);
      target.address = text_field(item, "address");
      target.range = range_fields(item, target.protocol);
      target.repeat = int(number_field(item, "repeat", 1, k_max_probe_repeat));
      if (item.contains("encapsulation")) {
        auto encapsulation = parse_encapsulation(text_field(item, "encapsulation"));
        if (!encapsulation) throw ParseError{"unknown encapsulation"};
        target.encapsulation = *encapsulation;
        target.vni = std::uint32_t(number_field(item, "vni", 0, 0xffffff));
      }
      if (item.contains("size")) target.size = std::uint16_t(number_field(item, "size", 0, 65535));
      if (item.contains("identity")) target.identity = bool_field(item, "identity");
      request.targets.push_back(std::move(target));
    }
    return request;
  });
}

Expected<ProbeReply, std::string>
parse_probe_reply(std::string_view text)
{
  return parse_with<ProbeReply>(text, [](const json& document) {
    ProbeReply reply;
    for (const auto& list : list_field(document, "targets")) {
      if (!list.is_array()) throw ParseError{"target result must be a list"};
      std::vector<Segment> segments;
      for (const auto& item : list) {
        if (!item.is_object()) throw ParseError{"segment must be an object"};
        Segment segment;
        segment.range = range_fields(item);
        auto state = parse_probe_state(text_field(item, "state"));
        if (!state) throw ParseError{"unknown probe state"};
        segment.state = *state;
        segment.error = int(number_field(item, "error", 0, 1 << 20));
        segment.responder = text_field(item, "responder");
        segment.authentic = bool_field(item, "authentic");
        for (const auto& name : list_field(item, "responders")) {
          if (!name.is_string()) throw ParseError{"responder must be a string"};
          segment.responders.push_back(name.get<std::string>());
        }
        segment.silent = std::uint32_t(std::min<std::uint64_t>(optional_count(item, "silent"), 64));
        segments.push_back(std::move(segment));
      }
      reply.targets.push_back(std::move(segments));
    }
    if (document.contains("rtt_us")) {
      for (const auto& list : list_field(document, "rtt_us")) {
        if (!list.is_array() || list.size() > k_max_rtt_samples) throw ParseError{"rtt_us must be lists of round trips"};
        std::vector<std::uint32_t> rtts;
        for (const auto& rtt : list) {
          if (!rtt.is_number_unsigned()) throw ParseError{"a round trip must be a count of microseconds"};
          rtts.push_back(std::uint32_t(std::min<std::uint64_t>(rtt.get<std::uint64_t>(), 60'000'000)));
        }
        reply.rtts.push_back(std::move(rtts));
      }
    }
    reply.held.time = std::chrono::milliseconds(optional_count(document, "held_ms"));
    reply.held.fullest = {optional_count(document, "held_count"), optional_count(document, "held_max")};
    return reply;
  });
}

Expected<std::vector<ObservedQuery>, std::string>
parse_observed_queries(std::string_view text)
{
  return parse_with<std::vector<ObservedQuery>>(text, [](const json& document) {
    std::vector<ObservedQuery> queries;
    for (const auto& item : list_field(document, "queries")) {
      if (!item.is_object()) throw ParseError{"query must be an object"};
      bool departed = item.contains("destination");
      if (departed == item.contains("source")) throw ParseError{"a query names either a source or a destination"};
      auto protocol = protocol_field(item);
      queries.push_back({protocol, text_field(item, departed ? "destination" : "source"),
                         range_fields(item, protocol), departed, optional_count(item, "since"),
                         optional_count(item, "answered_since")});
    }
    return queries;
  });
}

Expected<ObservedReply, std::string>
parse_observed_reply(std::string_view text)
{
  return parse_with<ObservedReply>(text, [](const json& document) {
    ObservedReply reply;
    reply.capture = bool_field(document, "capture");
    reply.departures = document.contains("departures") && bool_field(document, "departures");
    reply.capture_lost = optional_count(document, "capture_lost");
    reply.departures_lost = optional_count(document, "departures_lost");
    for (const auto& item : list_field(document, "answers")) {
      if (!item.is_object()) throw ParseError{"answer must be an object"};
      reply.answers.push_back(
        {std::uint64_t(number_field(item, "packets", 0, INT64_MAX)),
         std::uint32_t(number_field(item, "ports_seen", 0, 65535)),
         std::uint32_t(number_field(item, "ports_listening", 0, 65535)),
         item.contains("ports_answered") ? std::uint32_t(number_field(item, "ports_answered", 0, 65535)) : 0u});
    }
    return reply;
  });
}

Expected<EgressRequest, std::string>
parse_egress_request(std::string_view text)
{
  return parse_with<EgressRequest>(text, [](const json& document) {
    EgressRequest request;
    request.timeout = std::chrono::milliseconds(number_field(document, "timeout_ms", 10, 60000));
    request.deadline = std::chrono::milliseconds(number_field(document, "deadline_ms", 100, 600000));
    // An older check passes its --proxy here: the agent would connect to
    // whatever it names (its own loopback services included).
    if (document.contains("proxy") || document.contains("no_proxy")) {
      throw ParseError{"an egress request cannot name a proxy: the agent uses the inventory's egress proxy, else its "
                       "own environment"};
    }
    return request;
  });
}

Expected<EgressReply, std::string>
parse_egress_reply(std::string_view text)
{
  return parse_with<EgressReply>(text, [](const json& document) {
    EgressReply reply;
    reply.error = text_field(document, "error");
    for (const auto& item : list_field(document, "results")) {
      if (!item.is_object()) throw ParseError{"result must be an object"};
      EgressResult result;
      result.target.host = text_field(item, "host");
      result.target.port.port = std::uint16_t(number_field(item, "port", 1, 65535));
      result.target.port.scheme = text_field(item, "scheme") == "http" ? EgressScheme::http : EgressScheme::https;
      result.target.entry = text_field(item, "entry");
      result.target.purpose = text_field(item, "purpose");
      auto verdict = parse_egress_verdict(text_field(item, "verdict"));
      if (!verdict) throw ParseError{"unknown egress verdict"};
      result.verdict = *verdict;
      result.detail = text_field(item, "detail");
      for (const auto& address : list_field(item, "addresses")) {
        if (!address.is_string()) throw ParseError{"address must be a string"};
        result.addresses.push_back(address.get<std::string>());
      }
      result.proxy = text_field(item, "proxy");
      result.elapsed = std::chrono::milliseconds(number_field(item, "elapsed_ms", 0, INT64_MAX));
      reply.results.push_back(std::move(result));
    }
    return reply;
  });
}

} // namespace portmatrix
