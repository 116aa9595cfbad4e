#include "util/thousands.hpp"

namespace portmatrix {

std::string
with_thousands(std::uint64_t value)
{
  auto digits = std::to_string(value);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

} // namespace portmatrix
