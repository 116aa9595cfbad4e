// Encoding and decoding of control messages. TLS (control_channel.cpp)
// has authenticated and decrypted them; this only
// parses, after a depth check, so even a peer with the token cannot make the
// parser build a deep tree.
#include "agent/control_protocol.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "crypto/hmac.hpp"
#include "util/json_depth.hpp"

namespace portmatrix {
namespace {

const std::string*
string_field(const nlohmann::json& json, const char* name)
{
  auto it = json.find(name);
  return it != json.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

Expected<nlohmann::json, std::string>
parse_object(std::string_view message, const char* what)
{
  if (!json_depth_within(message, k_max_json_depth)) {
    return unexpected(fmt::format("malformed {}: nested deeper than {}", what, k_max_json_depth));
  }
  auto json = nlohmann::json::parse(message, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return unexpected(fmt::format("malformed {}: not a JSON object", what));
  return json;
}

} // namespace

std::int64_t
now_ms()
{
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

ControlRequest
make_request(std::string type, std::string body, std::string node, std::string instance, std::uint64_t window)
{
  return {std::move(type), random_hex(16), now_ms(), std::move(node), std::move(instance), window, std::move(body)};
}

std::string
encode_request(const ControlRequest& request)
{
  nlohmann::json json{{"type", request.type},         {"id", request.id},
                      {"ts", request.timestamp_ms},   {"node", request.node},
                      {"instance", request.instance}, {"body", request.body}};
  if (request.window != 0) json["window"] = request.window;
  return json.dump();
}

std::string
encode_response(const ControlResponse& response)
{
  return nlohmann::json{{"id", response.id}, {"status", response.ok ? "ok" : "error"}, {"body", response.body}}.dump();
}

Expected<ControlRequest, std::string>
decode_request(std::string_view message)
{
  auto json = parse_object(message, "request");
  if (!json) return unexpected(json.error());
  const auto* type = string_field(*json, "type");
  const auto* id = string_field(*json, "id");
  const auto* node = string_field(*json, "node");
  const auto* instance = string_field(*json, "instance");
  const auto* body = string_field(*json, "body");
  auto ts = json->find("ts");
  if (!type || !id || !node || !instance || !body || ts == json->end() || !ts->is_number_integer()) {
    return unexpected(std::string("malformed request: missing or mistyped field"));
  }
  if (id->size() != 32) return unexpected(std::string("malformed request: bad id"));
  std::uint64_t window = 0;
  if (auto it = json->find("window"); it != json->end()) {
    if (!it->is_number_unsigned()) return unexpected(std::string("malformed request: bad window"));
    window = it->get<std::uint64_t>();
  }
  return ControlRequest{*type, *id, ts->get<std::int64_t>(), *node, *instance, window, *body};
}

Expected<ControlResponse, std::string>
decode_response(std::string_view message)
{
  auto json = parse_object(message, "response");
  if (!json) return unexpected(json.error());
  const auto* id = string_field(*json, "id");
  const auto* status = string_field(*json, "status");
  const auto* body = string_field(*json, "body");
  if (!id || !status || !body) return unexpected(std::string("malformed response: missing field"));
  return ControlResponse{*id, *status == "ok", *body};
}

bool
ReplayGuard::accept(const ControlRequest& request, std::int64_t now, std::string& why)
{
  auto window = std::chrono::duration_cast<std::chrono::milliseconds>(k_replay_window).count();
  if (request.timestamp_ms < now - window || request.timestamp_ms > now + window) {
    why = "request timestamp outside the replay window (clocks differ by more than 120 s?)";
    return false;
  }
  while (!m_order.empty() && (m_order.front().first < now - window || m_order.size() >= m_capacity)) {
    m_seen.erase(m_order.front().second);
    m_order.pop_front();
  }
  if (!m_seen.insert(request.id).second) {
    why = "replayed request id";
    return false;
  }
  m_order.emplace_back(request.timestamp_ms, request.id);
  return true;
}

} // namespace portmatrix
