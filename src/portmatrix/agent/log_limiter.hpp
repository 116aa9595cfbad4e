// The agent's log under a flood: a stranger opening thousands of connections
// must not write thousands of lines (finding 11). Each kind of event is
// written in full a few times per window; past that it is only counted, and
// when the window ends one line says how many there were:
//   "portmatrix agent w1: 1,234 rejected control requests in the last 10 s (5 shown)"
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>

#include "net/event_loop.hpp"
#include "util/thousands.hpp"

namespace portmatrix {

class LogLimiter
{
public:
  // `prefix` starts every line ("portmatrix agent w1"). `loop` and `out`
  // must outlive the limiter.
  LogLimiter(EventLoop& loop, std::ostream& out, std::string prefix, std::chrono::seconds window = std::chrono::seconds(10),
             int shown_per_window = 5);
  ~LogLimiter();
  LogLimiter(const LogLimiter&) = delete;
  LogLimiter& operator=(const LogLimiter&) = delete;

  // One event of `kind` (plural, as the summary counts it: "rejected control
  // requests"); `line` is written (after the prefix) while under the
  // window's share.
  void event(const std::string& kind, std::string_view line);

private:
  struct Kind
  {
    std::uint64_t count = 0; // in the current window
  };
  void end_window();

  EventLoop& m_loop;
  std::ostream& m_out;
  std::string m_prefix;
  std::chrono::seconds m_window;
  int m_shown;
  std::map<std::string, Kind> m_kinds;
  std::uint64_t m_timer = 0;
};

} // namespace portmatrix
