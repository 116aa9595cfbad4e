// The profile YAML files of this folder, embedded at build time
// (cmake/embed_profiles.cmake writes builtin_profiles.cpp).
#pragma once

#include <cstddef>
#include <string_view>

namespace portmatrix {

struct BuiltinProfile
{
  std::string_view name;
  std::string_view text;
};

extern const BuiltinProfile k_builtin_profiles[];
extern const std::size_t k_builtin_profile_count;

// The guide's topology as an inventory (profiles/inventories/demo.yaml).
extern const std::string_view k_demo_inventory;

} // namespace portmatrix
