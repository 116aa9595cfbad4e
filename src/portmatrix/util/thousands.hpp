// Numbers as people read them in logs and reports.
#pragma once

#include <cstdint>
#include <string>

namespace portmatrix {

// 1234567 as "1,234,567".
std::string with_thousands(std::uint64_t value);

} // namespace portmatrix
