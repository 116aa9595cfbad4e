#include <gtest/gtest.h>

#include "util/edit_distance.hpp"

namespace portmatrix {

TEST(EditDistance, CountsInsertionsDeletionsSubstitutionsAndSwaps)
{
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("format", "format"), 0u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("fromat", "format"), 1u); // one swap, not two substitutions
  EXPECT_EQ(edit_distance("chek", "check"), 1u);
  EXPECT_EQ(edit_distance("checkk", "check"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("ca", "abc"), 3u); // optimal string alignment: no edit of a swapped pair
}

TEST(EditDistance, ClosestSuggestsTheNearestWithinAThirdOfTheWord)
{
  std::vector<std::string> commands{"ports", "diff", "firewall", "lb", "agent", "check", "egress", "preflight", "demo",
                                    "profiles"};
  EXPECT_EQ(closest("prots", commands), "ports");
  EXPECT_EQ(closest("chekc", commands), "check");
  EXPECT_EQ(closest("firewal", commands), "firewall");
  EXPECT_EQ(closest("profile", commands), "profiles");
  EXPECT_EQ(closest("Ports", commands), "ports");
  EXPECT_EQ(closest("frobnicate", commands), std::nullopt);
  EXPECT_EQ(closest("xyz", commands), std::nullopt);
  std::vector<std::string> flags{"--help", "--inventory", "--profile", "--format", "--output", "--node"};
  EXPECT_EQ(closest("--fromat", flags), "--format");
  EXPECT_EQ(closest("--inventroy", flags), "--inventory");
  EXPECT_EQ(closest("--colour", flags), std::nullopt);
}

TEST(EditDistance, ClosestTakesAUniquePrefixOfThreeOrMore)
{
  std::vector<std::string> flags{"--inventory", "--profile", "--preflight-mode"};
  EXPECT_EQ(closest("--inv", flags), "--inventory");
  EXPECT_EQ(closest("--pr", flags), std::nullopt);   // too short
  EXPECT_EQ(closest("--pre", flags), "--preflight-mode");
  EXPECT_EQ(closest("--pro", flags), "--profile");
  std::vector<std::string> nodes{"master1", "master2", "worker1"};
  EXPECT_EQ(closest("mas", nodes), std::nullopt); // a prefix of two
  EXPECT_EQ(closest("master4", nodes), "master1");
  EXPECT_EQ(closest("wroker1", nodes), "worker1");
}

} // namespace portmatrix
