// One thread per owner, at most k_max_identified_owners, each making its
// bounded identify() call; results are queued under a mutex and the loop is
// woken through an eventfd, so the Done callback (and everything it
// touches) only ever runs on the loop's thread.
#include "agent/owner_identifier.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <mutex>
#include <thread>

namespace portmatrix {

struct OwnerIdentifier::Impl
{
  EventLoop& loop;
  std::vector<Job> jobs;
  Done done;
  Fd wake;
  std::mutex mutex;
  std::vector<std::pair<std::size_t, Identification>> ready; // guarded by mutex
  std::size_t delivered = 0;
  std::vector<std::thread> threads;

  Impl(EventLoop& loop, std::vector<Job> jobs, Done done) : loop(loop), jobs(std::move(jobs)), done(std::move(done)) {}

  void deliver()
  {
    std::uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(wake.get(), &count, sizeof(count));
    std::vector<std::pair<std::size_t, Identification>> results;
    {
      std::lock_guard lock(mutex);
      results.swap(ready);
    }
    for (const auto& [index, result] : results) {
      ++delivered;
      done(jobs[index], result);
    }
  }
};

OwnerIdentifier::OwnerIdentifier(EventLoop& loop, std::string address, std::vector<Job> jobs,
                                 std::chrono::milliseconds timeout, Done done)
  : m_impl(std::make_unique<Impl>(loop, std::move(jobs), std::move(done)))
{
  auto& impl = *m_impl;
  if (impl.jobs.size() > k_max_identified_owners) impl.jobs.resize(k_max_identified_owners);
  impl.wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!impl.wake || !loop.add(impl.wake.get(), EPOLLIN, [&impl](std::uint32_t) { impl.deliver(); })) {
    impl.jobs.clear(); // no way back to the loop: nothing is identified
    return;
  }
  for (std::size_t i = 0; i < impl.jobs.size(); ++i) {
    impl.threads.emplace_back([&impl, i, address, timeout] {
      Identification result;
      try {
        result = identify(address, impl.jobs[i].port, impl.jobs[i].protocol, impl.jobs[i].hint, timeout);
      } catch (const std::exception& e) { // (out of memory): nothing may escape a thread
        result.summary = std::string("unknown: ") + e.what();
      }
      {
        std::lock_guard lock(impl.mutex);
        impl.ready.emplace_back(i, std::move(result));
      }
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(impl.wake.get(), &one, sizeof(one));
    });
  }
}

OwnerIdentifier::~OwnerIdentifier()
{
  for (auto& thread : m_impl->threads) thread.join();
  if (m_impl->wake) m_impl->loop.remove(m_impl->wake.get());
}

bool
OwnerIdentifier::finished() const
{
  return m_impl->delivered == m_impl->jobs.size();
}

} // namespace portmatrix
