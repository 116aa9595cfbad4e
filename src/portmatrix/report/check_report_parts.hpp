// The pieces of check_report.cpp, one file per concern: what every format
// shares (check_report_summary.cpp), the terminal table, HTML and JSON.
// Internal to report/; callers use check_report.hpp.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "check/check.hpp"
#include "report/check_report.hpp"
#include "report/markup.hpp"

namespace portmatrix::check_report {

// "10250/tcp", "2379-2380/tcp"; "ipip (IP protocol 4)" for a protocol without ports.
std::string ports_text(const PortRange& range, Protocol protocol);
// A failure's ports before its state in a detail: "8472 ", or "" for a
// protocol without ports (whose one "port" is 0).
std::string failure_ports(const PortRange& range, Protocol protocol);

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

// The run as a whole, as exit_status() judges it: "pass" (exit 0), "fail" (a
// flow failed, or a node's egress) or "incomplete" (nothing failed, something
// could not be tested).
std::string_view run_status(const CheckReport& report);

// The overall line, at the top and the bottom of the terminal report:
// "FAIL prod: 198 passed, 5 failed, 0 skipped in 2.31 s" (the word in colour).
std::string overall_line(const CheckReport& report, Colour colour);

// Flows of one verdict that share a cause at a place: one line of the
// terminal report, one row of the HTML page's failures.
struct CauseGroup
{
  std::string place;               // a node, or "vip": the destination; the source for its own firewall's cause
  bool place_is_source = false;    // `others` are then the destinations
  std::string ports;               // "8472/udp"
  std::string diagnosis;
  std::string detail;              // the first flow's detail
  std::vector<std::string> others; // the flows' other ends, each once, in report order
  std::vector<const FlowResult*> flows;
};

// The failed (or skipped) flows grouped by place, ports and diagnosis, in
// order of first appearance. A skipped flow whose source's agent could not be
// asked is placed at that source, else at the destination.
std::vector<CauseGroup> cause_groups(const CheckReport& report, Verdict verdict);

// "master2 drops 8472/udp from 5 sources: dropped-by-destination-firewall
// (master1, master3, worker1, worker2, worker3)".
std::string cause_text(const CauseGroup& group);

// The untested flows of one node and cause: those from it (its agent could
// not be asked to probe) and to it (nor what arrived).
struct UntestedPlace
{
  std::string node;
  std::string diagnosis;
  std::size_t from = 0;
  std::size_t to = 0;
  std::string why; // the agent's error, else the first flow's detail
  const FlowResult* first = nullptr;
};

std::vector<UntestedPlace> untested_places(const CheckReport& report);

// "worker3: 10 flows untested (5 from it, 5 to it): agent-unreachable (connection refused)".
std::string untested_text(const UntestedPlace& place);

struct DirectionCounts
{
  std::string direction; // "worker → master"
  std::size_t passed = 0;
  std::size_t failed = 0;
  std::size_t skipped = 0;
};

// Flows counted per direction (roles), in order of first appearance.
std::vector<DirectionCounts> direction_counts(const CheckReport& report);

// "master1: 14 passed, 2 failed, 1 warning" (or "master1: ssh: ..." when it could not run).
std::string preflight_text(const NodePreflight& node);

// The ANSI colour of a verdict ("32" green, ...).
std::string_view verdict_colour(Verdict verdict);

// "2026-12-03T06:34:44Z" (UTC, to the second); empty for the epoch.
std::string utc_text(std::chrono::system_clock::time_point at);

std::string render_json(const CheckReport& report);
std::string render_junit(const CheckReport& report);
std::string render_table(const CheckReport& report, Colour colour, CheckDetail detail);
std::string render_html(const CheckReport& report);

} // namespace portmatrix::check_report
