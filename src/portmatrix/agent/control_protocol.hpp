// The control channel between `check` and the agents: length-prefixed frames
// (4 bytes, big-endian) holding one JSON object each. Every request and every
// response carries an HMAC-SHA256 (keyed by the shared token) over its exact
// bytes; requests carry a random id and a timestamp, and the agent rejects ids
// it has seen and timestamps outside a window (replay protection). Frames are
// size-bounded before anything is parsed.
//
//   request  {"type": T, "id": ID, "ts": MS, "body": "<json text>", "mac": HEX}
//            mac = HMAC(token, "request\n" T "\n" ID "\n" MS "\n" body)
//   response {"id": ID, "status": "ok"|"error", "body": "<json text>", "mac": HEX}
//            mac = HMAC(token, "response\n" ID "\n" status "\n" body)
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "crypto/hmac.hpp"
#include "util/expected.hpp"

namespace portmatrix {

inline constexpr std::size_t k_max_request_bytes = 1 << 20;   // what an agent accepts
inline constexpr std::size_t k_max_response_bytes = 64 << 20; // what check accepts
inline constexpr std::chrono::seconds k_replay_window{120};

struct ControlRequest
{
  std::string type; // hello, probe, observed
  std::string id;   // 32 hex characters, random per request
  std::int64_t timestamp_ms = 0;
  std::string body; // JSON text
};

struct ControlResponse
{
  std::string id;
  bool ok = false;
  std::string body; // JSON text; for errors {"error": "..."}
};

// A whole frame (length prefix included), ready to write.
std::string encode_request(const Token& token, const ControlRequest& request);
std::string encode_response(const Token& token, const ControlResponse& response);

// Parses and authenticates a frame's payload (without the length prefix).
// Errors say what was wrong; they never throw.
Expected<ControlRequest, std::string> decode_request(const Token& token, std::string_view payload);
Expected<ControlResponse, std::string> decode_response(const Token& token, std::string_view payload);

// Makes a request with a fresh id and the current time.
ControlRequest make_request(std::string type, std::string body);
std::int64_t now_ms();

// Splits a byte stream into frame payloads.
class FrameReader
{
public:
  explicit FrameReader(std::size_t max_frame) : m_max_frame(max_frame) {}
  // Appends received bytes.
  void feed(std::string_view bytes) { m_buffer.append(bytes); }
  // The next complete payload, if any. After oversized() is true, never.
  std::optional<std::string> next();
  bool oversized() const { return m_oversized; }
  std::size_t buffered() const { return m_buffer.size(); }

private:
  std::size_t m_max_frame;
  std::string m_buffer;
  bool m_oversized = false;
};

// Remembers request ids for the replay window, bounded in size.
class ReplayGuard
{
public:
  explicit ReplayGuard(std::size_t capacity = 100000) : m_capacity(capacity) {}
  // False (with `why`) for a stale or future timestamp, or an id already seen.
  bool accept(const ControlRequest& request, std::int64_t now, std::string& why);

private:
  std::size_t m_capacity;
  std::deque<std::pair<std::int64_t, std::string>> m_order;
  std::unordered_set<std::string> m_seen;
};

} // namespace portmatrix
