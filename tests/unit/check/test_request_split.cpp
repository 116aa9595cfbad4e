// Probe requests above the agents' bound go in parts that each fit, in order.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "agent/control_protocol.hpp"
#include "check/request_split.hpp"

namespace portmatrix {
namespace {

ProbeRequest
request_of(std::size_t targets)
{
  ProbeRequest request;
  request.timeout = std::chrono::milliseconds(700);
  request.budget = std::chrono::milliseconds(9000);
  for (std::size_t i = 0; i < targets; ++i) {
    request.targets.push_back({Protocol::tcp, fmt::format("10.{}.{}.{}", i / 65536, i / 256 % 256, i % 256),
                               {std::uint16_t(30000 + i % 2000), std::uint16_t(30000 + i % 2000)}, 1});
  }
  return request;
}

std::size_t
encoded(const ProbeRequest& part)
{
  return encode_request(make_request("probe", to_json(part), "master1", std::string(32, 'a'))).size();
}

TEST(RequestSplit, ASmallRequestIsOnePart)
{
  auto request = request_of(100);
  auto parts = split_probe_request(request, k_max_request_bytes, encoded);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].targets.size(), 100u);
  EXPECT_EQ(split_probe_request(request_of(0), k_max_request_bytes, encoded).size(), 1u);
}

TEST(RequestSplit, ALargeRequestGoesInPartsThatFitInOrder)
{
  auto request = request_of(25000); // ~3 MB: a sampled master of 1,000 nodes
  ASSERT_GT(encoded(request), 2 * k_max_request_bytes);
  auto parts = split_probe_request(request, k_max_request_bytes, encoded);
  ASSERT_GE(parts.size(), 3u);
  std::size_t next = 0;
  for (const auto& part : parts) {
    EXPECT_LE(encoded(part), k_max_request_bytes);
    EXPECT_EQ(part.timeout, request.timeout);
    EXPECT_EQ(part.budget, request.budget);
    for (const auto& target : part.targets) {
      ASSERT_LT(next, request.targets.size());
      EXPECT_EQ(target.address, request.targets[next].address);
      EXPECT_EQ(target.range, request.targets[next].range);
      ++next;
    }
  }
  EXPECT_EQ(next, request.targets.size());
}

TEST(RequestSplit, RepliesJoinInOrderAndAddWhatWasHeldBack)
{
  ProbeReply whole;
  ProbeReply first, second;
  first.targets.resize(2);
  Segment open;
  open.range = {1, 1};
  open.state = ProbeState::open;
  first.targets[1].push_back(open);
  first.held.time = std::chrono::milliseconds(100);
  first.held.fullest = {10, 100};
  second.targets.resize(1);
  Segment filtered;
  filtered.range = {2, 2};
  second.targets[0].push_back(filtered);
  second.held.time = std::chrono::milliseconds(50);
  second.held.fullest = {20, 100};
  second.rtts = {{700, 900}}; // the first part sent no round trips
  join_probe_reply(whole, first);
  join_probe_reply(whole, second);
  ASSERT_EQ(whole.targets.size(), 3u);
  EXPECT_EQ(whole.targets[2][0].range.min, 2);
  EXPECT_EQ(whole.held.time, std::chrono::milliseconds(150));
  EXPECT_EQ(whole.held.fullest.count, 20u);
  // The round trips stay beside their targets (they were lost when joined).
  ASSERT_EQ(whole.rtts.size(), 3u);
  EXPECT_TRUE(whole.rtts[0].empty());
  EXPECT_EQ(whole.rtts[2], (std::vector<std::uint32_t>{700, 900}));
}

} // namespace
} // namespace portmatrix
