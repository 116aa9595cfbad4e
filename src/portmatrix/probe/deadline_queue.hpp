// Probes share one timeout and start in time order, so their deadlines are
// due in the order they were queued: a FIFO (DeadlineQueue) with one loop
// timer for its head replaces a timer per probe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <utility>

#include "net/event_loop.hpp"

namespace portmatrix::probing {

// Entries that share one delay, queued in time order and therefore due in
// queue order: one loop timer, set for the head, serves them all. An entry
// names a slot and its generation; the handler skips stale ones.
class DeadlineQueue
{
public:
  using Clock = EventLoop::Clock;
  using Handler = std::function<void(std::uint32_t slot, std::uint32_t generation)>;

  DeadlineQueue(EventLoop& loop, Handler handler) : m_loop(loop), m_handler(std::move(handler)) {}
  ~DeadlineQueue() { clear(); }
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  // Queues (slot, generation) for `when`, which is no earlier than any queued entry's.
  void push(Clock::time_point when, std::uint32_t slot, std::uint32_t generation);
  // Drops every entry and the timer.
  void clear();

private:
  struct Entry
  {
    Clock::time_point when;
    std::uint32_t slot;
    std::uint32_t generation;
  };

  void arm();
  void fire();

  EventLoop& m_loop;
  Handler m_handler;
  std::deque<Entry> m_entries;
  std::uint64_t m_timer = 0;
  bool m_firing = false;
};

} // namespace portmatrix::probing
