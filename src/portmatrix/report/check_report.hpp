// Renders a check report: for the terminal, failures grouped by cause and
// place (every flow with --verbose; colour when asked), JSON (DESIGN.md's
// contract) and JUnit XML (one testcase per flow) for CI systems, and a
// self-contained HTML page with a picture of the cluster.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "check/check.hpp"
#include "report/markup.hpp"

namespace portmatrix {

enum class CheckFormat { table, json, junit, html };
std::optional<CheckFormat> parse_check_format(std::string_view text);

// How much the terminal table says: failures grouped by cause and place, what
// could not be tested and a line per direction (summary), or every flow too
// (every_flow, --verbose). The other formats always carry every flow.
enum class CheckDetail { summary, every_flow };

std::string render_check(const CheckReport& report, CheckFormat format, Colour colour = Colour::off,
                         CheckDetail detail = CheckDetail::summary);

// One line for the terminal: "FAIL prod: 198 passed, 5 failed, 0 skipped in
// 2.31 s" (check --output prints it on stderr).
std::string check_overall_line(const CheckReport& report, Colour colour = Colour::off);

} // namespace portmatrix
