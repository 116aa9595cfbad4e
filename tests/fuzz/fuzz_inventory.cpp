// Fuzz target: the inventory loader, then its check against the default
// profile and planning. Any input must give a value or diagnostics, never a
// crash, a hang or an exception.
#include <cstdint>
#include <string_view>

#include "model/inventory.hpp"
#include "plan/plan.hpp"

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto inventory = portmatrix::parse_inventory(text, "fuzz.yaml");
  if (!inventory || inventory->nodes.size() > 64) return 0;
  static const auto profile = portmatrix::load_profile("apinizer");
  if (!profile || !portmatrix::check_against(*inventory, *profile).empty()) return 0;
  auto plan = portmatrix::make_plan(*profile, std::move(*inventory));
  (void)plan.flows();
  for (const auto& node : plan.inventory.nodes) (void)plan.ingress(node);
  return 0;
}
