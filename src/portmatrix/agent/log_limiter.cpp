#include "agent/log_limiter.hpp"

#include <fmt/format.h>

namespace portmatrix {

LogLimiter::LogLimiter(EventLoop& loop, std::ostream& out, std::string prefix, std::chrono::seconds window,
                       int shown_per_window)
  : m_loop(loop), m_out(out), m_prefix(std::move(prefix)), m_window(window), m_shown(shown_per_window)
{
}

LogLimiter::~LogLimiter()
{
  if (m_timer != 0) m_loop.cancel(m_timer);
}

void
LogLimiter::event(const std::string& kind, std::string_view line)
{
  auto& counted = m_kinds[kind];
  if (++counted.count <= std::uint64_t(m_shown)) m_out << m_prefix << ": " << line << "\n" << std::flush;
  if (m_timer == 0) m_timer = m_loop.after(m_window, [this] { end_window(); });
}

void
LogLimiter::end_window()
{
  m_timer = 0;
  for (const auto& [kind, counted] : m_kinds) {
    if (counted.count <= std::uint64_t(m_shown)) continue;
    m_out << fmt::format("{}: {} {} in the last {} s ({} shown)\n", m_prefix, with_thousands(counted.count), kind,
                         m_window.count(), m_shown)
          << std::flush;
  }
  m_kinds.clear();
}

} // namespace portmatrix
