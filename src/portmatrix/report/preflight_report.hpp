// Renders a preflight report in check's three forms: a terminal table (ports,
// firewall, kernel; failures first), JSON (README's contract) and JUnit XML
// (one testcase per check).
#pragma once

#include <string>

#include "preflight/preflight.hpp"
#include "report/check_report.hpp"

namespace portmatrix {

std::string render_preflight(const PreflightReport& report, CheckFormat format, Colour colour = Colour::off);

} // namespace portmatrix
