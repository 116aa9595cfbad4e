// The agent's rate-limited log (finding 11): a flood of one kind of event
// writes a few lines and then one count per window, not a line per event.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

#include "agent/log_limiter.hpp"

namespace portmatrix {
namespace {

using namespace std::chrono_literals;

std::size_t
lines(const std::string& text)
{
  return std::size_t(std::count(text.begin(), text.end(), '\n'));
}

TEST(LogLimiter, AFloodWritesAFewLinesAndThenItsCount)
{
  EventLoop loop;
  std::ostringstream out;
  LogLimiter limited(loop, out, "portmatrix agent w1", 1s, 3);
  for (int i = 0; i < 5000; ++i) limited.event("rejected control requests", "rejected a control request: unauthenticated");
  limited.event("closed connections", "closed one");
  EXPECT_EQ(lines(out.str()), 4u) << out.str();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (out.str().find("in the last") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    loop.run_once(50ms);
  }
  EXPECT_NE(out.str().find("portmatrix agent w1: 5,000 rejected control requests in the last 1 s (3 shown)"),
            std::string::npos)
    << out.str();
  EXPECT_EQ(out.str().find("closed connections in the last"), std::string::npos) << "under its share: no summary";
  EXPECT_EQ(lines(out.str()), 5u) << out.str();

  // A new window shows lines again.
  limited.event("rejected control requests", "rejected again");
  EXPECT_NE(out.str().find("rejected again"), std::string::npos);
}

TEST(LogLimiter, GroupsThousands)
{
  EXPECT_EQ(with_thousands(0), "0");
  EXPECT_EQ(with_thousands(999), "999");
  EXPECT_EQ(with_thousands(1234), "1,234");
  EXPECT_EQ(with_thousands(1234567), "1,234,567");
}

} // namespace
} // namespace portmatrix
