#include <gtest/gtest.h>

#include <chrono>

#include "util/process.hpp"

namespace portmatrix {

TEST(Process, SeparateStreamsKeepStdoutAndStderrApart)
{
  auto result = run_process({"sh", "-c", "cat; echo oops >&2; exit 3"}, "in\n", Streams::separate);
  EXPECT_EQ(result.status, 3);
  EXPECT_EQ(result.output, "in\n");
  EXPECT_EQ(result.errors, "oops\n");
  auto merged = run_process({"sh", "-c", "echo out; echo err >&2"});
  EXPECT_NE(merged.output.find("out\n"), std::string::npos);
  EXPECT_NE(merged.output.find("err\n"), std::string::npos);
}

TEST(Process, ABackgroundProcessGetsItsInputAndIsWaitedForByWhatItPrints)
{
  using namespace std::chrono_literals;
  // It reads its input to the end (as the agent reads its token), says so, and goes on running.
  BackgroundProcess process({"sh", "-c", "read -r line; echo \"got $line\"; exec sleep 60"}, "the-token\n");
  EXPECT_TRUE(process.wait_for("got the-token", 20s)) << process.output();
  EXPECT_TRUE(process.running());
  EXPECT_FALSE(process.wait_for("never printed", 50ms));
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(process.finish(0ms), 128 + 15); // stopped with SIGTERM
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST(Process, ABackgroundProcessThatEndsEndsTheWait)
{
  using namespace std::chrono_literals;
  BackgroundProcess process({"sh", "-c", "echo 'sudo: a password is required' >&2; exit 1"}, "");
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(process.wait_for("ready", 30s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 20s); // it ended: no waiting out the timeout
  EXPECT_EQ(process.finish(10s), 1);
  EXPECT_EQ(process.output(), "sudo: a password is required\n");
  BackgroundProcess missing({"/nonexistent/program"}, "");
  EXPECT_EQ(missing.finish(10s), 127);
  EXPECT_NE(missing.output().find("cannot run /nonexistent/program"), std::string::npos);
}

} // namespace portmatrix
