// Pacing, members of Prober::Impl (see prober.cpp for the round): the
// adaptive window of young probes (adapt_window, reopen_window), probes that
// leave it unanswered (on_quiet), and the hold while this node's conntrack
// table is full (table_full).
#include <algorithm>

#include "probe/prober_impl.hpp"

namespace portmatrix {

namespace {

// The adaptive window (adapt_window): its floor, how many answers it
// averages, and the share of the timeout an answer may take before the
// window shrinks, or under which it grows.
constexpr std::size_t k_min_window = 32;
constexpr std::uint32_t k_window_samples = 32;
constexpr double k_slow_share = 0.3;
constexpr double k_fast_share = 0.1;

// How often the conntrack table is read while it has room (ProbeOptions::conntrack).
constexpr std::chrono::milliseconds k_table_read_interval{20};

} // namespace

// Unanswered for quiet_after while nothing of its target, a range of
// k_silent_range ports or more, has opened yet: presumed dropped, out of
// the window (it keeps its socket and its deadline, and is not resent), so
// the next probe can start. Where ports of the target have opened, a slow
// probe is a busy machine's, and more probes in flight would only add load.
void
Prober::Impl::on_quiet(std::uint32_t slot, std::uint32_t generation)
{
  if (!live(slot, generation) || !m_probes[slot].young) return;
  auto target = m_probes[slot].job.target;
  if (m_target_opened[target] || m_outcomes[target].ports.size() < k_silent_range) return;
  m_probes[slot].young = false;
  --m_young;
  reopen_window();
  fill();
}

// A window narrowed by answers that queued up stays narrow only while there
// are answers to say so. Without any for a whole timeout (what is left is
// silent: a dropped range, a dead agent's ports) it is whole again, as at
// the start, or a silent range would crawl through a few dozen probes a
// timeout (a check with one agent dead took 25 s instead of 3).
void
Prober::Impl::reopen_window()
{
  auto limit = std::max<std::size_t>(m_options.max_in_flight, 1);
  if (m_window >= limit || Clock::now() - m_last_answer < m_options.timeout) return;
  m_window = limit;
  m_latency_sum = {};
  m_latency_samples = 0;
}

// The window follows how long answers take (Little's law: probes in flight
// = rate x latency). Where the machine or the destination cannot keep up,
// more probes in flight do not raise the rate, they only make every answer
// later, until answers miss the timeout and read as drops. So: answers
// slower than k_slow_share of the timeout shrink the window by a third;
// faster than k_fast_share let it grow by a quarter, up to max_in_flight
// (it shrinks only while answers take twice the fastest one's time: a long
// path is slow without any queue, and a smaller window would not help).
// Only an agent's answers count (an identity line, TCP or UDP): they cross
// both machines' loops. Silence does not (a firewall's drop is not load,
// and a silent probe in the window would then hold back the rest of its
// range), nor do refusals (the kernel's ICMP errors are rate limited: one
// answering a resend much later says nothing about load), nor a service
// that keeps the connection without a word until identity_timeout.
void
Prober::Impl::adapt_window(const Probe& probe, const Finding& finding)
{
  if (finding.state != ProbeState::open || !finding.responder) return;
  auto started = probe.deadline - m_options.timeout;
  m_last_answer = Clock::now();
  auto latency = std::chrono::nanoseconds(m_last_answer - started);
  m_fastest = std::min(m_fastest, latency);
  m_latency_sum += latency;
  if (++m_latency_samples < k_window_samples) return;
  auto mean = m_latency_sum / m_latency_samples;
  m_latency_sum = {};
  m_latency_samples = 0;
  auto limit = std::max<std::size_t>(m_options.max_in_flight, 1);
  // Slow because answers queue up (not because the path is long: then a
  // smaller window would only lower the rate).
  if (mean > m_options.timeout * k_slow_share && mean > 2 * m_fastest) {
    m_window = std::max(std::min(k_min_window, limit), m_window * 2 / 3);
  } else if (mean < m_options.timeout * k_fast_share) {
    m_window = std::min(limit, m_window + m_window / 4 + 1);
  }
}

// A reading at most every k_table_read_interval while there is room (a
// probe launched in between adds one entry), and every k_table_recheck while
// the table is full. True: start nothing now.
bool
Prober::Impl::table_full()
{
  if (!m_options.conntrack || (m_deferred.empty() && m_next_target >= m_start_order.size())) return false;
  if (m_table_timer != 0) return true;
  auto now = Clock::now();
  if (!m_table_full && now - m_table_read < k_table_read_interval) return false;
  m_table_read = now;
  auto reading = m_options.conntrack();
  bool full = reading && reading->max > 0
              && double(reading->count) >= m_options.conntrack_ceiling * double(reading->max);
  if (!full) {
    release_table(now);
    return false;
  }
  if (!m_table_full) m_held_since = now;
  m_table_full = true;
  if (reading->count >= m_fullest.count) m_fullest = *reading;
  m_table_timer = m_loop.after(k_table_recheck, [this] {
    m_table_timer = 0;
    fill();
  });
  return true;
}

TableHold
Prober::Impl::held_for_conntrack() const
{
  auto held = m_held + (m_table_full ? Clock::now() - m_held_since : std::chrono::nanoseconds{0});
  return {std::chrono::duration_cast<std::chrono::milliseconds>(held), m_fullest};
}

// The hold (if any) ends now.
void
Prober::Impl::release_table(Clock::time_point now)
{
  if (m_table_full) m_held += now - m_held_since;
  m_table_full = false;
  if (m_table_timer != 0) m_loop.cancel(m_table_timer);
  m_table_timer = 0;
}

} // namespace portmatrix
