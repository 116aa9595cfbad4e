// How an agent reads its node's live firewalls for an `evaluate` request.
// Listing them (nft, iptables-save, ipset) needs exec and CAP_NET_ADMIN,
// which the confined agent no longer has; so run_agent forks a reader
// before it confines itself. The reader takes no input but a byte meaning
// "read now", runs those fixed programs and writes their text back; the
// agent parses it (preflight's parsers) inside its confinement. The reader
// ends when the agent's end of the socket closes, or when the agent dies.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "net/event_loop.hpp"
#include "preflight/preflight.hpp"
#include "util/expected.hpp"

namespace portmatrix {

using FirewallTextResult = Expected<FirewallText, std::string>;
// Reads the firewalls and calls back on the loop's thread (maybe at once).
using FirewallSource = std::function<void(std::function<void(FirewallTextResult)>)>;

// The text of read_firewall_text() as the reader sends it, and back.
std::string encode_firewall_text(const FirewallText& text);
Expected<FirewallText, std::string> decode_firewall_text(std::string_view json);

class FirewallReader
{
public:
  // Forks the reader (call it before threads start and before confine()).
  // On failure the reader answers every read with the error.
  FirewallReader();
  ~FirewallReader(); // closes the socket: the reader ends
  FirewallReader(const FirewallReader&) = delete;
  FirewallReader& operator=(const FirewallReader&) = delete;

  // A FirewallSource served on `loop` (which must outlive it): one read at
  // a time, others wait behind it; each bounded by `timeout`.
  FirewallSource source(EventLoop& loop, std::chrono::milliseconds timeout = std::chrono::milliseconds(20000));

private:
  struct State;
  std::shared_ptr<State> m_state;
};

// Reads in this process, at once (tests, and agents run inside another program).
FirewallSource read_here();

} // namespace portmatrix
