// Fuzz target: the profile loader (composition through built-in includes
// included). Any input must give a profile or diagnostics, never a crash.
#include <cstdint>
#include <string_view>

#include "model/profile.hpp"
#include "plan/plan.hpp"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto profile = portmatrix::parse_profile(text, "<fuzz>/profile.yaml");
  if (profile) (void)portmatrix::resolve(std::move(*profile), nullptr);
  return 0;
}
