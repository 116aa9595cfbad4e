// epoll with level-triggered readiness and timers in an ordered map. Level
// triggering keeps callbacks simple (read what you can, return); the number
// of fds is bounded by the caller (the prober caps probes in flight).
#include "net/event_loop.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <stdexcept>

namespace portmatrix {

EventLoop::EventLoop() : m_epoll(::epoll_create1(EPOLL_CLOEXEC))
{
  if (!m_epoll) throw std::runtime_error("epoll_create1 failed");
}

bool
EventLoop::add(int fd, std::uint32_t events, IoCallback callback)
{
  auto generation = ++m_generation;
  epoll_event event{};
  event.events = events;
  event.data.u64 = (std::uint64_t(generation) << 32) | std::uint32_t(fd);
  if (fd < 0 || ::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &event) != 0) return false;
  if (std::size_t(fd) >= m_callbacks.size()) m_callbacks.resize(std::max(std::size_t(fd) + 1, 2 * m_callbacks.size()));
  auto& watch = m_callbacks[std::size_t(fd)];
  m_watched += !watch.callback;
  watch = Watch{generation, std::make_shared<IoCallback>(std::move(callback))};
  return true;
}

EventLoop::Watch*
EventLoop::watch_of(int fd)
{
  if (fd < 0 || std::size_t(fd) >= m_callbacks.size() || !m_callbacks[std::size_t(fd)].callback) return nullptr;
  return &m_callbacks[std::size_t(fd)];
}

bool
EventLoop::unwatch(int fd)
{
  auto* watch = watch_of(fd);
  if (!watch) return false;
  watch->callback.reset();
  --m_watched;
  return true;
}

bool
EventLoop::modify(int fd, std::uint32_t events)
{
  auto* watch = watch_of(fd);
  if (!watch) return false;
  epoll_event event{};
  event.events = events;
  event.data.u64 = (std::uint64_t(watch->generation) << 32) | std::uint32_t(fd);
  return ::epoll_ctl(m_epoll.get(), EPOLL_CTL_MOD, fd, &event) == 0;
}

void
EventLoop::remove(int fd)
{
  if (unwatch(fd)) ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
}

std::uint64_t
EventLoop::after(std::chrono::milliseconds delay, TimerCallback callback)
{
  return at(Clock::now() + delay, std::move(callback));
}

std::uint64_t
EventLoop::at(Clock::time_point when, TimerCallback callback)
{
  auto id = m_next_timer++;
  auto position = m_timer_order.emplace(when, id);
  m_timers.emplace(id, std::make_pair(position, std::move(callback)));
  return id;
}

void
EventLoop::cancel(std::uint64_t timer)
{
  auto it = m_timers.find(timer);
  if (it == m_timers.end()) return;
  m_timer_order.erase(it->second.first);
  m_timers.erase(it);
}

void
EventLoop::run_timers()
{
  auto now = Clock::now();
  while (!m_timer_order.empty() && m_timer_order.begin()->first <= now) {
    auto id = m_timer_order.begin()->second;
    auto it = m_timers.find(id);
    auto callback = std::move(it->second.second);
    m_timer_order.erase(m_timer_order.begin());
    m_timers.erase(it);
    try {
      callback();
    } catch (...) {
      ++m_callback_errors;
    }
  }
}

bool
EventLoop::run_once(std::chrono::milliseconds max_wait)
{
  if (m_stopped) return false;
  auto wait = max_wait;
  if (!m_timer_order.empty()) {
    auto until = std::chrono::ceil<std::chrono::milliseconds>(m_timer_order.begin()->first - Clock::now());
    wait = std::clamp(until, std::chrono::milliseconds(0), max_wait);
  }
  std::array<epoll_event, 256> events;
  int count = ::epoll_wait(m_epoll.get(), events.data(), int(events.size()), int(wait.count()));
  if (count < 0 && errno != EINTR) throw std::runtime_error("epoll_wait failed");
  for (int i = 0; i < count; ++i) {
    int fd = int(std::uint32_t(events[i].data.u64));
    auto generation = std::uint32_t(events[i].data.u64 >> 32);
    auto* watch = watch_of(fd);
    // Removed (or removed and reused) by an earlier callback in this batch.
    if (!watch || watch->generation != generation) continue;
    auto callback = watch->callback;
    try {
      (*callback)(events[i].events);
    } catch (...) {
      ++m_callback_errors;
    }
  }
  run_timers();
  return !m_stopped;
}

void
EventLoop::run_until(Clock::time_point deadline)
{
  while (!m_stopped && Clock::now() < deadline) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    run_once(std::min(left, std::chrono::milliseconds(1000)));
  }
}

void
EventLoop::run()
{
  while (run_once()) {
  }
}

} // namespace portmatrix
