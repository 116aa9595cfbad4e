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
namespace {

// The token of m_bulk's own event in m_epoll: no fd has it.
constexpr std::uint64_t k_bulk_token = ~std::uint64_t(0);
constexpr int k_batch = 256;

} // namespace

EventLoop::EventLoop() : m_epoll(::epoll_create1(EPOLL_CLOEXEC))
{
  if (!m_epoll) throw std::runtime_error("epoll_create1 failed");
}

bool
EventLoop::add(int fd, std::uint32_t events, IoCallback callback, Priority priority)
{
  bool bulk = priority == Priority::bulk;
  if (bulk && !m_bulk) {
    Fd nested(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = k_bulk_token;
    if (!nested || ::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, nested.get(), &event) != 0) return false;
    m_bulk = std::move(nested);
  }
  auto generation = ++m_generation;
  epoll_event event{};
  event.events = events;
  event.data.u64 = (std::uint64_t(generation) << 32) | std::uint32_t(fd);
  if (fd < 0 || ::epoll_ctl((bulk ? m_bulk : m_epoll).get(), EPOLL_CTL_ADD, fd, &event) != 0) return false;
  if (std::size_t(fd) >= m_callbacks.size()) m_callbacks.resize(std::max(std::size_t(fd) + 1, 2 * m_callbacks.size()));
  auto& watch = m_callbacks[std::size_t(fd)];
  m_watched += !watch.callback;
  watch = Watch{generation, std::make_shared<IoCallback>(std::move(callback)), bulk};
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
  return ::epoll_ctl((watch->bulk ? m_bulk : m_epoll).get(), EPOLL_CTL_MOD, fd, &event) == 0;
}

void
EventLoop::remove(int fd)
{
  auto* watch = watch_of(fd);
  if (!watch) return;
  int epoll = (watch->bulk ? m_bulk : m_epoll).get();
  unwatch(fd);
  ::epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
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
  ++m_turns;
  auto wait = max_wait;
  if (!m_timer_order.empty()) {
    auto until = std::chrono::ceil<std::chrono::milliseconds>(m_timer_order.begin()->first - Clock::now());
    wait = std::clamp(until, std::chrono::milliseconds(0), max_wait);
  }
  std::array<epoll_event, k_batch> events;
  int count = ::epoll_wait(m_epoll.get(), events.data(), int(events.size()), int(wait.count()));
  if (count < 0 && errno != EINTR) throw std::runtime_error("epoll_wait failed");
  dispatch(events.data(), count);
  run_timers();
  return !m_stopped;
}

void
EventLoop::dispatch_bulk()
{
  std::array<epoll_event, k_batch> events;
  int count = ::epoll_wait(m_bulk.get(), events.data(), int(events.size()), 0);
  dispatch(events.data(), count);
}

void
EventLoop::dispatch(const epoll_event* events, int count)
{
  bool bulk_ready = false;
  for (int i = 0; i < count; ++i) {
    if (events[i].data.u64 == k_bulk_token) {
      bulk_ready = true; // after everything else that is ready
      continue;
    }
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
  if (bulk_ready && m_bulk) dispatch_bulk();
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
