// Test helpers: the built-in demo inventory planned with its profile, and
// generated inventories of any size.
#pragma once

#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "plan/plan.hpp"
#include "profiles/builtin.hpp"

namespace portmatrix::testing {

inline Plan
plan_for(std::string_view inventory_text, std::string_view profile_name = {})
{
  auto inventory = parse_inventory(inventory_text, "test.yaml");
  if (!inventory) throw std::runtime_error(to_string(inventory.error().front()));
  auto profile = load_profile(profile_name.empty() ? inventory->profile : std::string(profile_name));
  if (!profile) throw std::runtime_error(to_string(profile.error().front()));
  auto problems = check_against(*inventory, *profile);
  if (!problems.empty()) throw std::runtime_error(to_string(problems.front()));
  return make_plan(std::move(*profile), std::move(*inventory));
}

inline Plan
demo_plan()
{
  return plan_for(k_demo_inventory);
}

// `masters` masters, then workers, mongodb and elasticsearch nodes filling
// `nodes`, one load balancer and one client; addresses in 10.0.0.0/8.
inline std::string
generated_inventory(int nodes, std::string extra = {})
{
  std::string text = "cluster: big\nloadbalancer: {vip: 10.255.255.254}\nadmin_cidrs: [10.0.0.0/8]\n" + extra +
                     "nodes:\n  - {name: lb1, address: 10.255.255.1, roles: [loadbalancer]}\n"
                     "  - {name: client1, address: 10.255.255.2, roles: [client]}\n";
  for (int i = 0; i < nodes; ++i) {
    const char* role = i < 3 ? "master" : i % 10 == 3 ? "mongodb" : i % 10 == 4 ? "elasticsearch" : "worker";
    text += fmt::format("  - {{name: n{}, address: 10.{}.{}.{}, roles: [{}]}}\n", i, i / 65536 % 256, i / 256 % 256,
                        i % 256, role);
  }
  return text;
}

} // namespace portmatrix::testing
