// The pieces of check_report.cpp, one file per concern: what every format
// shares (check_report_summary.cpp), the terminal table, HTML and JSON.
// Internal to report/; callers use check_report.hpp.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "check/check.hpp"
#include "report/markup.hpp"

namespace portmatrix::check_report {

// "10250/tcp", "2379-2380/tcp".
std::string ports_text(const PortRange& range, Protocol protocol);

// Results grouped by direction (worker -> master, ...) like the guide's
// tables; groups in order of their first result, failures first, then skips,
// then passes.
std::vector<std::pair<std::string, std::vector<const FlowResult*>>> by_direction(const CheckReport& report);

// "reached master1,master2" (or "reached none") for a flow to the VIP.
std::string backends_text(const FlowResult& r);

// One line per agent that needs a word: unreachable, in error, blind, or
// sharing a port with a service.
std::vector<std::string> agent_notes(const CheckReport& report);

// "41 passed, 2 failed, 0 skipped in 1.23 s".
std::string summary_text(const CheckReport& report);

// What the check covered (check_report_coverage.cpp): the JSON `coverage`
// object and `firewall_evaluation` array, and the table's statements (the
// evaluation's failures first; empty without an evaluation).
nlohmann::json coverage_json(const CheckReport& report);
nlohmann::json evaluation_json(const CheckReport& report);
std::string coverage_text(const CheckReport& report);
std::string evaluation_text(const CheckReport& report, Colour colour);

std::string render_json(const CheckReport& report);
std::string render_junit(const CheckReport& report);
std::string render_table(const CheckReport& report, Colour colour);
std::string render_html(const CheckReport& report);

} // namespace portmatrix::check_report
