// evaluate: preflight's check_firewall over the node's inbound flows, then
// counted per port, so the reply stays small whatever the cluster's size
// (a master of 5,000 nodes receives ~50,000 flows: their counts travel, and
// at most k_max_evaluate_failures of their failures).
#include "agent/evaluate.hpp"

#include <nlohmann/json.hpp>

namespace portmatrix {

EvaluateReply
evaluate_firewalls(const Plan& plan, const Node& node, const Expected<FirewallText, std::string>& text,
                   const std::string& interface)
{
  EvaluateReply reply;
  if (!text) {
    reply.error = text.error();
    return reply;
  }
  auto firewalls = parse_firewalls(*text);
  if (!firewalls) {
    reply.error = firewalls.error();
    return reply;
  }
  reply.backend = firewalls->backend;
  for (const auto& result : check_firewall(plan, node, firewalls->evaluators(), interface)) {
    auto ports = result.ports.size();
    reply.ports += ports;
    switch (result.status) {
    case CheckStatus::pass:
    case CheckStatus::info: reply.passed += ports; continue;
    case CheckStatus::fail: reply.failed += ports; break;
    case CheckStatus::warn:
    case CheckStatus::skip: reply.unknown += ports; break;
    }
    if (reply.failures.size() >= k_max_evaluate_failures) {
      ++reply.failures_left_out;
      continue;
    }
    reply.failures.push_back({result.from, result.protocol, result.ports, result.expect, result.decision, result.rule});
  }
  return reply;
}

namespace {

std::optional<Decision>
parse_decision(std::string_view text)
{
  for (auto decision : {Decision::accept, Decision::drop, Decision::reject, Decision::unknown}) {
    if (to_string(decision) == text) return decision;
  }
  return std::nullopt;
}

} // namespace

std::string
to_json(const EvaluateReply& reply)
{
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& f : reply.failures) {
    failures.push_back({{"from", f.from},
                        {"protocol", to_string(f.protocol)},
                        {"port_min", f.ports.min},
                        {"port_max", f.ports.max},
                        {"expect", to_string(f.expect)},
                        {"decision", to_string(f.decision)},
                        {"rule", f.rule}});
  }
  nlohmann::json out{{"error", reply.error},     {"backend", reply.backend}, {"ports", reply.ports},
                     {"passed", reply.passed},   {"failed", reply.failed},   {"unknown", reply.unknown},
                     {"failures", failures},     {"failures_left_out", reply.failures_left_out}};
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Expected<EvaluateReply, std::string>
parse_evaluate_reply(std::string_view json)
{
  auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return unexpected(std::string("not a JSON object"));
  try {
    EvaluateReply reply;
    reply.error = parsed.at("error").get<std::string>();
    reply.backend = parsed.at("backend").get<std::string>();
    reply.ports = parsed.at("ports").get<std::uint64_t>();
    reply.passed = parsed.at("passed").get<std::uint64_t>();
    reply.failed = parsed.at("failed").get<std::uint64_t>();
    reply.unknown = parsed.at("unknown").get<std::uint64_t>();
    reply.failures_left_out = parsed.at("failures_left_out").get<std::uint64_t>();
    for (const auto& item : parsed.at("failures")) {
      EvaluateFailure failure;
      failure.from = item.at("from").get<std::string>();
      auto protocol = parse_protocol(item.at("protocol").get<std::string>());
      auto decision = parse_decision(item.at("decision").get<std::string>());
      if (!protocol || !decision) return unexpected(std::string("unknown protocol or decision"));
      failure.protocol = *protocol;
      failure.decision = *decision;
      failure.ports = {item.at("port_min").get<std::uint16_t>(), item.at("port_max").get<std::uint16_t>()};
      failure.expect = item.at("expect").get<std::string>() == "deny" ? Expect::deny : Expect::allow;
      failure.rule = item.at("rule").get<std::string>();
      reply.failures.push_back(std::move(failure));
    }
    return reply;
  } catch (const nlohmann::json::exception& e) {
    return unexpected(std::string(e.what()));
  }
}

} // namespace portmatrix
