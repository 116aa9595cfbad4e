// A single-threaded epoll loop with one-shot timers. Callbacks run on the
// loop's thread; a callback may add, modify or remove any fd (including its
// own) and schedule or cancel timers. Exceptions must not escape callbacks:
// the loop catches and counts them so one bad peer cannot stop the others.
//
// Bulk fds (Priority::bulk: a prober's thousands of sockets) wait in an epoll
// set of their own, nested in the loop's: each turn serves every other ready
// fd, then at most one batch of bulk ones. A listener that becomes ready is
// served the next turn, not after the thousands of bulk fds ready before it
// (the kernel reports ready fds in the order they became ready).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include <sys/epoll.h> // EPOLLIN, EPOLLOUT, ... for callers

#include "net/fd.hpp"

namespace portmatrix {

class EventLoop
{
public:
  using Clock = std::chrono::steady_clock;
  using IoCallback = std::function<void(std::uint32_t events)>;
  using TimerCallback = std::function<void()>;

  enum class Priority { normal, bulk };

  EventLoop();

  // Watches `fd` (owned by the caller, open until remove()) for `events`
  // (EPOLLIN, EPOLLOUT, ...). Returns false (errno set) if epoll refuses it.
  bool add(int fd, std::uint32_t events, IoCallback callback, Priority priority = Priority::normal);
  bool modify(int fd, std::uint32_t events);
  void remove(int fd);
  // remove() for an fd the caller closes right away and never dup()ed:
  // closing it takes it out of epoll, so no epoll_ctl is needed.
  void forget(int fd) { unwatch(fd); }
  std::size_t watched() const { return m_watched; }

  // Runs `callback` once after `delay`; returns an id for cancel().
  std::uint64_t after(std::chrono::milliseconds delay, TimerCallback callback);
  std::uint64_t at(Clock::time_point when, TimerCallback callback);
  void cancel(std::uint64_t timer);

  // Waits for events at most until the next timer or `max_wait`, dispatches
  // them and due timers. Returns false when stop() was called.
  bool run_once(std::chrono::milliseconds max_wait = std::chrono::milliseconds(1000));
  // Runs until stop() or until `deadline` passes.
  void run_until(Clock::time_point deadline);
  void run();
  void stop() { m_stopped = true; }
  bool stopped() const { return m_stopped; }

  std::uint64_t callback_errors() const { return m_callback_errors; }
  // How many turns (run_once calls) the loop has taken: a callback can tell
  // an fd ready turn after turn (a queue builds up) from one ready now and then.
  std::uint64_t turns() const { return m_turns; }

private:
  void run_timers();
  // Calls the callbacks of `count` events (m_bulk's own: one batch of it, last).
  void dispatch(const epoll_event* events, int count);
  // One batch of the ready bulk fds, without waiting.
  void dispatch_bulk();

  Fd m_epoll;
  Fd m_bulk; // created with the first bulk fd, and watched in m_epoll
  struct Watch
  {
    std::uint32_t generation;
    std::shared_ptr<IoCallback> callback; // shared: a callback that removes its own fd stays alive while it runs
    bool bulk = false;                    // in m_bulk, not m_epoll
  };
  Watch* watch_of(int fd); // nullptr when `fd` is not watched
  bool unwatch(int fd);    // false when it was not watched
  // The epoll token carries the fd and a generation, so an event still queued
  // for a closed fd is never delivered to a new watch that reuses the number.
  // Indexed by fd (the kernel hands out the lowest free number, so the table
  // stays as small as the highest fd): a probe's watch costs no hashing and
  // no node of its own. An empty callback is a free entry.
  std::vector<Watch> m_callbacks;
  std::size_t m_watched = 0;
  std::uint32_t m_generation = 0;
  std::multimap<Clock::time_point, std::uint64_t> m_timer_order;
  std::unordered_map<std::uint64_t, std::pair<std::multimap<Clock::time_point, std::uint64_t>::iterator, TimerCallback>>
    m_timers;
  std::uint64_t m_next_timer = 1;
  std::uint64_t m_callback_errors = 0;
  std::uint64_t m_turns = 0;
  bool m_stopped = false;
};

} // namespace portmatrix
