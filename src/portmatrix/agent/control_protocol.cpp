// Encoding, decoding and authentication of control frames. The body is kept
// as a JSON string inside the envelope so the MAC covers its exact bytes,
// independent of how a JSON library would re-serialise it.
#include "agent/control_protocol.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace portmatrix {
namespace {

std::string
frame(const std::string& payload)
{
  std::string out(4, '\0');
  auto size = std::uint32_t(payload.size());
  out[0] = char(size >> 24);
  out[1] = char(size >> 16);
  out[2] = char(size >> 8);
  out[3] = char(size);
  return out + payload;
}

std::string
request_mac_input(const ControlRequest& request)
{
  return fmt::format("request\n{}\n{}\n{}\n{}", request.type, request.id, request.timestamp_ms, request.body);
}

std::string
response_mac_input(const ControlResponse& response)
{
  return fmt::format("response\n{}\n{}\n{}", response.id, response.ok ? "ok" : "error", response.body);
}

const std::string*
string_field(const nlohmann::json& json, const char* name)
{
  auto it = json.find(name);
  return it != json.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

} // namespace

std::int64_t
now_ms()
{
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

ControlRequest
make_request(std::string type, std::string body)
{
  return {std::move(type), random_hex(16), now_ms(), std::move(body)};
}

std::string
encode_request(const Token& token, const ControlRequest& request)
{
  nlohmann::json json{{"type", request.type},
                      {"id", request.id},
                      {"ts", request.timestamp_ms},
                      {"body", request.body},
                      {"mac", token.sign(request_mac_input(request))}};
  return frame(json.dump());
}

std::string
encode_response(const Token& token, const ControlResponse& response)
{
  nlohmann::json json{{"id", response.id},
                      {"status", response.ok ? "ok" : "error"},
                      {"body", response.body},
                      {"mac", token.sign(response_mac_input(response))}};
  return frame(json.dump());
}

Expected<ControlRequest, std::string>
decode_request(const Token& token, std::string_view payload)
{
  auto json = nlohmann::json::parse(payload, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return unexpected(std::string("malformed request: not a JSON object"));
  const auto* type = string_field(json, "type");
  const auto* id = string_field(json, "id");
  const auto* body = string_field(json, "body");
  const auto* mac = string_field(json, "mac");
  auto ts = json.find("ts");
  if (!type || !id || !body || !mac || ts == json.end() || !ts->is_number_integer()) {
    return unexpected(std::string("malformed request: missing or mistyped field"));
  }
  if (id->size() != 32) return unexpected(std::string("malformed request: bad id"));
  ControlRequest request{*type, *id, ts->get<std::int64_t>(), *body};
  if (!token.verify(request_mac_input(request), *mac)) {
    return unexpected(std::string("unauthenticated request: bad mac (wrong token?)"));
  }
  return request;
}

Expected<ControlResponse, std::string>
decode_response(const Token& token, std::string_view payload)
{
  auto json = nlohmann::json::parse(payload, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return unexpected(std::string("malformed response: not a JSON object"));
  const auto* id = string_field(json, "id");
  const auto* status = string_field(json, "status");
  const auto* body = string_field(json, "body");
  const auto* mac = string_field(json, "mac");
  if (!id || !status || !body || !mac) return unexpected(std::string("malformed response: missing field"));
  ControlResponse response{*id, *status == "ok", *body};
  if (!token.verify(response_mac_input(response), *mac)) {
    // The agent could not authenticate us (or we it): both mean the tokens differ.
    auto error = nlohmann::json::parse(*body, nullptr, false);
    std::string detail = error.is_object() && error.contains("error") && error["error"].is_string()
                           ? error["error"].get<std::string>()
                           : std::string("bad mac");
    return unexpected("unauthenticated response: " + detail);
  }
  return response;
}

std::optional<std::string>
FrameReader::next()
{
  if (m_oversized || m_buffer.size() < 4) return std::nullopt;
  auto byte = [&](int i) { return std::uint32_t(static_cast<unsigned char>(m_buffer[i])); };
  std::size_t size = (byte(0) << 24) | (byte(1) << 16) | (byte(2) << 8) | byte(3);
  if (size > m_max_frame) {
    m_oversized = true;
    m_buffer.clear();
    return std::nullopt;
  }
  if (m_buffer.size() < 4 + size) return std::nullopt;
  std::string payload = m_buffer.substr(4, size);
  m_buffer.erase(0, 4 + size);
  return payload;
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
