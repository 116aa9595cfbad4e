// `portmatrix agent`: on one node, binds the ports the node must receive
// (Responder), watches its interface (Capture), and serves the control
// channel through which `check` asks it to probe and what it saw.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "agent/firewall_reader.hpp"
#include "crypto/hmac.hpp"
#include "net/event_loop.hpp"
#include "plan/plan.hpp"

namespace portmatrix {

inline constexpr std::size_t k_max_control_connections = 64;
inline constexpr std::chrono::seconds k_control_idle_timeout{30};
// A control connection must have sent one authenticated request this soon
// after it was accepted, however many bytes trickle in: otherwise 64 clients
// sending a byte now and then would hold every slot. When all slots are taken,
// a new connection takes the place of the oldest one not yet authenticated.
inline constexpr std::chrono::seconds k_control_auth_timeout{5};
// Probe requests, and observed requests, that may run at once (a check runs
// one probing per agent at a time, and one observed request): a request
// past these is refused with an error, the connection kept.
inline constexpr std::size_t k_max_probings = 4;
inline constexpr std::size_t k_max_observing = 4;
// A check's window stays open this long past the deadline its hello gave,
// for its last requests and its `done` (HelloRequest, Capture::open_window).
inline constexpr std::chrono::seconds k_window_grace{5};

class Agent
{
public:
  // `plan`, `node`, `token` and `loop` must outlive the agent. Messages go to `log`.
  Agent(EventLoop& loop, const Plan& plan, const Node& node, const Token& token, std::ostream& log);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Binds the control port (failure is fatal: returns false with `error`),
  // the node's ports and the capture (failures there are reported, not fatal).
  // `after_setup`, when given, runs once that is done and before any thread
  // starts (run_agent confines the process there); its non-empty result is
  // fatal too.
  bool start(std::string& error, const std::function<std::string()>& after_setup = {});

  // Where evaluate requests read the live firewalls (default: read_here(),
  // in this process; run_agent: its FirewallReader).
  void set_firewall_source(FirewallSource source);

  // The address:port the control channel listens on.
  std::string control_endpoint() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// Runs an agent until SIGINT or SIGTERM, or until `exit_after` has passed
// (zero: no limit). Logs "portmatrix agent NODE: ready" once it serves.
// Returns the exit status.
int run_agent(const Plan& plan, const Node& node, const Token& token,
              std::chrono::seconds exit_after = std::chrono::seconds(0));

} // namespace portmatrix
