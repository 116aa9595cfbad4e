// The messages of the control channel between `check` and the agents, as
// they travel inside TLS (agent/control_channel.hpp):
// one JSON object per message, parsed only after its records were
// authenticated, and only when it nests no deeper than k_max_json_depth.
//
//   request  {"type": T, "id": ID, "ts": MS, "node": NODE, "instance": NONCE, ["window": W,] "body": "<json text>"}
//   response {"id": ID, "status": "ok"|"error", "body": "<json text>"}
//
// A request names the node it is for and, except `hello`, the agent instance
// that node's hello reply gave (a random nonce per agent start): an agent
// refuses a request for another node or for an earlier run of itself. Ids
// are random per request, timestamps within k_replay_window (ReplayGuard).
// A check's requests after hello also name the window its hello opened
// (HelloReply::window): an agent refuses probe and observed requests of a
// window that closed (`done`, or the check's deadline passed).
// docs/control-protocol.md is the contract.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>

#include "util/expected.hpp"

namespace portmatrix {

// What an agent accepts in one request (a probe request names a source's
// flows: about 110 bytes each, 2,750 at 100 nodes of the demo's roles) and
// what check accepts in one response. Only what arrives after the TLS
// handshake counts towards it; an unauthenticated peer gets at most
// k_max_handshake_bytes read.
inline constexpr std::size_t k_max_request_bytes = 1 << 20;
inline constexpr std::size_t k_max_response_bytes = 64 << 20;
// No control message nests deeper (a probe reply: object, list, list, object, list).
inline constexpr std::size_t k_max_json_depth = 8;
inline constexpr std::chrono::seconds k_replay_window{120};

struct ControlRequest
{
  std::string type;     // hello, probe, observed, egress, evaluate, done
  std::string id;       // 32 hex characters, random per request
  std::int64_t timestamp_ms = 0;
  std::string node;     // the node the request is for
  std::string instance; // that node's agent instance (HelloReply::instance); empty for hello
  std::uint64_t window = 0; // the check's window (HelloReply::window); 0: none (hello), not sent
  std::string body;     // JSON text
};

struct ControlResponse
{
  std::string id;
  bool ok = false;
  std::string body; // JSON text; for errors {"error": "..."}
};

// A message's text, for ControlChannel::send.
std::string encode_request(const ControlRequest& request);
std::string encode_response(const ControlResponse& response);

// Parses an authenticated message. Errors say what was wrong; they never throw.
Expected<ControlRequest, std::string> decode_request(std::string_view message);
Expected<ControlResponse, std::string> decode_response(std::string_view message);

// A request for `node` (and its agent `instance`, in the check's `window`)
// with a fresh id and the current time.
ControlRequest make_request(std::string type, std::string body, std::string node, std::string instance = {},
                            std::uint64_t window = 0);
std::int64_t now_ms();

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
