// The check report as JSON (DESIGN.md's contract) and as JUnit XML (one
// testcase per flow) for CI systems.
#include "report/check_report_parts.hpp"
#include "report/untested_report.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "egress/result_json.hpp"

namespace portmatrix::check_report {

// "2026-12-03T06:34:44Z"; empty for a report that never started.
std::string
utc_text(std::chrono::system_clock::time_point at)
{
  if (at == std::chrono::system_clock::time_point{}) return {};
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::chrono::system_clock::to_time_t(at)));
}

std::string
render_json(const CheckReport& report)
{
  nlohmann::json results = nlohmann::json::array();
  for (const auto& r : report.results) {
    nlohmann::json item{{"from", r.from},
                        {"to", r.to},
                        {"to_address", r.to_address},
                        {"protocol", to_string(r.flow.protocol)},
                        {"port_min", r.flow.range.min},
                        {"port_max", r.flow.range.max},
                        {"purpose", r.flow.purpose},
                        {"expect", to_string(r.flow.expect)},
                        {"verdict", to_string(r.verdict)},
                        {"diagnosis", r.diagnosis}};
    nlohmann::json failures = nlohmann::json::array();
    for (const auto& f : r.failures) {
      nlohmann::json failure{{"port", f.ports.min}, {"state", f.state}, {"diagnosis", f.diagnosis}, {"detail", f.detail}};
      if (!f.ports.single()) failure["port_max"] = f.ports.max;
      failures.push_back(std::move(failure));
    }
    item["failures"] = std::move(failures);
    if (!r.answered_by.empty()) item["answered_by"] = r.answered_by;
    if (!r.sampled.empty()) {
      nlohmann::json sampled = nlohmann::json::array();
      for (const auto& range : r.sampled) sampled.push_back(to_string(range));
      item["ports_sampled"] = std::move(sampled);
    }
    if (r.to == "vip") {
      item["backends_reached"] = r.backends_reached;
      item["backends_expected"] = r.backends_expected;
    }
    results.push_back(std::move(item));
  }
  nlohmann::json agents = nlohmann::json::array();
  for (const auto& a : report.agents) {
    agents.push_back({{"node", a.node},
                      {"reachable", a.reachable},
                      {"error", a.error},
                      {"capture", a.capture},
                      {"capture_error", a.capture_error},
                      {"owners", a.owners},
                      {"note", a.note}});
  }
  nlohmann::json out{{"cluster", report.cluster},
                     {"status", std::string(run_status(report))},
                     {"profile", {{"name", report.profile}, {"version", report.profile_version}}},
                     {"portmatrix", report.portmatrix},
                     {"inventory_sha256", report.inventory_sha256},
                     {"started", utc_text(report.started)},
                     {"summary",
                      {{"passed", report.passed},
                       {"failed", report.failed},
                       {"skipped", report.skipped},
                       {"untested", untested_count(report.untested)}}},
                     {"duration_ms", report.duration.count()},
                     {"rounds_ms", [&] {
                        nlohmann::json rounds = nlohmann::json::object();
                        for (const auto& [name, time] : report.rounds) rounds[name] = time.count();
                        return rounds;
                      }()},
                     {"coverage", coverage_json(report)},
                     {"results_shown", report.passes_left_out ? "failures" : "all"},
                     {"results", std::move(results)},
                     {"untested", untested_json(report.untested)},
                     {"agents", std::move(agents)}};
  if (!report.evaluation.empty()) out["firewall_evaluation"] = evaluation_json(report);
  if (!report.pairs.empty()) {
    out["pairs"] = nlohmann::json::array();
    for (const auto& pair : report.pairs) {
      nlohmann::json item{{"from", pair.from}, {"to", pair.to}, {"rtt_samples", pair.rtt_samples}};
      if (pair.rtt_samples > 0) {
        item["rtt_median_us"] = pair.rtt_median.count();
        item["rtt_p99_us"] = pair.rtt_p99.count();
      }
      if (pair.rtt_bound.count() > 0) item["rtt_bound_ms"] = pair.rtt_bound.count();
      if (pair.path_mtu > 0) item["path_mtu"] = pair.path_mtu;
      if (pair.mtu_from > 0) item["mtu_from"] = pair.mtu_from;
      if (pair.mtu_to > 0) item["mtu_to"] = pair.mtu_to;
      out["pairs"].push_back(std::move(item));
    }
  }
  if (!report.warnings.empty()) out["warnings"] = report.warnings;
  if (!report.egress.empty()) {
    out["egress"] = nlohmann::json::array();
    for (const auto& node : report.egress) {
      nlohmann::json hosts = nlohmann::json::array();
      for (const auto& r : node.results) hosts.push_back(result_json(r));
      out["egress"].push_back({{"node", node.node}, {"ok", node.ok()}, {"error", node.error}, {"results", std::move(hosts)}});
    }
  }
  if (!report.preflight.empty()) {
    // As preflight --ssh --format json gives it: each node's report, or its error.
    out["preflight"] = nlohmann::json::object();
    for (const auto& node : report.preflight) {
      auto parsed = node.error.empty() ? nlohmann::json::parse(node.json, nullptr, false) : nlohmann::json();
      out["preflight"][node.node] = node.error.empty() && !parsed.is_discarded()
                                      ? parsed
                                      : nlohmann::json{{"error", node.error.empty() ? "no report" : node.error}};
    }
  }
  return out.dump(2) + "\n";
}

// Untested requirements are testcases too, skipped with their cause, so a
// CI dashboard counts what the check could not exercise.
std::string
render_junit(const CheckReport& report)
{
  auto untested = untested_count(report.untested);
  auto tests = report.results.size() + untested;
  auto skipped = report.skipped + untested;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites name=\"portmatrix check\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3f}\">\n",
                     tests, report.failed, skipped, report.duration.count() / 1000.0);
  out += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
                     xml_escape(report.cluster), tests, report.failed, skipped);
  for (const auto& r : report.results) {
    out += fmt::format("    <testcase classname=\"{}.{}\" name=\"{} -&gt; {} {} {}\">\n", xml_escape(report.cluster),
                       xml_escape(r.from), xml_escape(r.from), xml_escape(r.to), ports_text(r.flow.range, r.flow.protocol),
                       xml_escape(r.flow.purpose));
    if (r.verdict == Verdict::skip) {
      out += fmt::format("      <skipped message=\"{}\"/>\n", xml_escape(r.diagnosis));
    } else if (r.verdict == Verdict::fail) {
      std::string body;
      for (const auto& f : r.failures) {
        body += fmt::format("{} {}: {} ({})\n", ports_text(f.ports, r.flow.protocol), f.state, f.diagnosis, f.detail);
      }
      out += fmt::format("      <failure message=\"{}\" type=\"{}\">{}</failure>\n", xml_escape(r.diagnosis),
                         xml_escape(r.diagnosis), xml_escape(body));
    }
    out += "    </testcase>\n";
  }
  for (const auto& entry : report.untested) {
    for (const auto& item : entry.requirements) {
      out += fmt::format("    <testcase classname=\"{}.untested\" name=\"{}\">\n", xml_escape(report.cluster),
                         xml_escape(item.direction));
      out += fmt::format("      <skipped message=\"{}: {}\"/>\n    </testcase>\n", xml_escape(to_string(entry.cause)),
                         xml_escape(entry.message));
    }
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

} // namespace portmatrix::check_report
