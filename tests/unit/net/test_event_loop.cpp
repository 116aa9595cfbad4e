// The loop serves every ready fd of normal priority each turn, before one
// batch of its bulk fds (a prober's sockets), so a listener never waits
// behind thousands of probes that became ready before it; bulk fds are
// still served, a batch a turn, and can be modified and removed like others.
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include <gtest/gtest.h>

#include "net/event_loop.hpp"
#include "net/fd.hpp"

namespace portmatrix {
namespace {

using namespace std::chrono_literals;

// An eventfd that is readable (and stays so: nobody reads it) when `ready`.
Fd
event_fd(bool ready)
{
  return Fd(::eventfd(ready ? 1 : 0, EFD_NONBLOCK | EFD_CLOEXEC));
}

void
make_ready(const Fd& fd)
{
  std::uint64_t one = 1;
  ASSERT_EQ(::write(fd.get(), &one, sizeof one), ssize_t(sizeof one));
}

TEST(EventLoop, AReadyFdIsServedTheNextTurnThoughThousandsOfBulkFdsWereReadyFirst)
{
  EventLoop loop;
  std::vector<Fd> bulk;
  int bulk_calls = 0;
  for (int i = 0; i < 1000; ++i) {
    bulk.push_back(event_fd(true));
    ASSERT_TRUE(loop.add(bulk.back().get(), EPOLLIN, [&](std::uint32_t) { ++bulk_calls; },
                         EventLoop::Priority::bulk));
  }
  loop.run_once(0ms);
  EXPECT_EQ(bulk_calls, 256) << "one batch of bulk fds a turn";

  auto listener = event_fd(false);
  int served = 0;
  ASSERT_TRUE(loop.add(listener.get(), EPOLLIN, [&](std::uint32_t) { ++served; }));
  make_ready(listener);
  loop.run_once(0ms);
  EXPECT_EQ(served, 1) << "the listener waited behind the bulk fds";
  EXPECT_EQ(bulk_calls, 512) << "and the bulk fds still got their batch";
  EXPECT_EQ(loop.watched(), 1001u);
}

TEST(EventLoop, BulkFdsAreModifiedAndRemovedLikeOthers)
{
  EventLoop loop;
  auto quiet = event_fd(true);
  auto gone = event_fd(true);
  int quiet_calls = 0, gone_calls = 0;
  ASSERT_TRUE(loop.add(quiet.get(), EPOLLIN, [&](std::uint32_t) { ++quiet_calls; }, EventLoop::Priority::bulk));
  ASSERT_TRUE(loop.add(gone.get(), EPOLLIN, [&](std::uint32_t) { ++gone_calls; }, EventLoop::Priority::bulk));
  ASSERT_TRUE(loop.modify(quiet.get(), EPOLLOUT | EPOLLIN));
  loop.run_once(0ms);
  EXPECT_EQ(quiet_calls, 1);
  EXPECT_EQ(gone_calls, 1);
  ASSERT_TRUE(loop.modify(quiet.get(), 0)); // no events wanted
  loop.remove(gone.get());
  EXPECT_EQ(loop.watched(), 1u);
  loop.run_once(0ms);
  EXPECT_EQ(quiet_calls, 1);
  EXPECT_EQ(gone_calls, 1);
  // A number closed and reused for a normal watch is served as that.
  gone.reset();
  auto reused = event_fd(true);
  int reused_calls = 0;
  ASSERT_TRUE(loop.add(reused.get(), EPOLLIN, [&](std::uint32_t) { ++reused_calls; }));
  loop.run_once(0ms);
  EXPECT_EQ(reused_calls, 1);
  EXPECT_EQ(gone_calls, 1);
}

} // namespace
} // namespace portmatrix
