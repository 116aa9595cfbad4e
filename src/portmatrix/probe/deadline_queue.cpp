// DeadlineQueue: one loop timer, set for the head of a FIFO of deadlines.
#include "probe/deadline_queue.hpp"

namespace portmatrix::probing {

void
DeadlineQueue::push(Clock::time_point when, std::uint32_t slot, std::uint32_t generation)
{
  m_entries.push_back(Entry{when, slot, generation});
  if (!m_firing) arm();
}

void
DeadlineQueue::clear()
{
  if (m_timer != 0) m_loop.cancel(m_timer);
  m_timer = 0;
  m_entries.clear();
}

void
DeadlineQueue::arm()
{
  if (m_timer == 0 && !m_entries.empty()) m_timer = m_loop.at(m_entries.front().when, [this] { fire(); });
}

void
DeadlineQueue::fire()
{
  m_timer = 0;
  m_firing = true;
  auto now = Clock::now();
  while (!m_entries.empty() && m_entries.front().when <= now) {
    auto entry = m_entries.front();
    m_entries.pop_front();
    m_handler(entry.slot, entry.generation); // may push (new probes): those are due later
  }
  m_firing = false;
  arm();
}

} // namespace portmatrix::probing
