// Renders a check report: a terminal table (grouped by direction, failures
// first, colour when asked), JSON (DESIGN.md's contract) and JUnit XML (one
// testcase per flow) for CI systems.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "check/check.hpp"
#include "report/markup.hpp"

namespace portmatrix {

enum class CheckFormat { table, json, junit };
std::optional<CheckFormat> parse_check_format(std::string_view text);

std::string render_check(const CheckReport& report, CheckFormat format, Colour colour = Colour::off);

} // namespace portmatrix
