#include "report/check_report.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "egress/result_json.hpp"
#include "util/text_table.hpp"

namespace portmatrix {

std::optional<CheckFormat>
parse_check_format(std::string_view text)
{
  if (text == "table") return CheckFormat::table;
  if (text == "json") return CheckFormat::json;
  if (text == "junit") return CheckFormat::junit;
  if (text == "html") return CheckFormat::html;
  return std::nullopt;
}

namespace {

std::string
ports_text(const PortRange& range, Protocol protocol)
{
  return fmt::format("{}/{}", to_string(range), to_string(protocol));
}

// What the probes covered (check --coverage): see coverage_text.
nlohmann::json
coverage_json(const CheckReport& report)
{
  const auto& c = report.coverage;
  nlohmann::json out{{"mode", to_string(report.coverage_options.mode)},
                     {"flows_full", c.flows_full},
                     {"flows_sampled", c.flows_sampled},
                     {"ports_required", c.ports_required},
                     {"ports_probed", c.ports_probed},
                     {"ruleset_groups", report.ruleset_groups},
                     {"group_pairs_full", c.representative_pairs.size()}};
  if (report.coverage_options.mode == CoverageMode::sample) {
    out["seed"] = report.coverage_options.seed;
    out["sample_ports"] = report.coverage_options.sample_ports;
  }
  return out;
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
                     {"summary", {{"passed", report.passed}, {"failed", report.failed}, {"skipped", report.skipped}}},
                     {"duration_ms", report.duration.count()},
                     {"rounds_ms", [&] {
                        nlohmann::json rounds = nlohmann::json::object();
                        for (const auto& [name, time] : report.rounds) rounds[name] = time.count();
                        return rounds;
                      }()},
                     {"coverage", coverage_json(report)},
                     {"results_shown", report.passes_left_out ? "failures" : "all"},
                     {"results", std::move(results)},
                     {"agents", std::move(agents)}};
  if (!report.evaluation.empty()) {
    out["firewall_evaluation"] = nlohmann::json::array();
    for (const auto& node : report.evaluation) {
      nlohmann::json failures = nlohmann::json::array();
      for (const auto& f : node.reply.failures) {
        failures.push_back({{"from", f.from},
                            {"protocol", to_string(f.protocol)},
                            {"port_min", f.ports.min},
                            {"port_max", f.ports.max},
                            {"expect", to_string(f.expect)},
                            {"decision", to_string(f.decision)},
                            {"rule", f.rule}});
      }
      out["firewall_evaluation"].push_back({{"node", node.node},
                                            {"complete", node.complete()},
                                            {"error", node.error.empty() ? node.reply.error : node.error},
                                            {"backend", node.reply.backend},
                                            {"ports_expected", node.ports_expected},
                                            {"ports", node.reply.ports},
                                            {"passed", node.reply.passed},
                                            {"failed", node.reply.failed},
                                            {"unknown", node.reply.unknown},
                                            {"failures", std::move(failures)},
                                            {"failures_left_out", node.reply.failures_left_out}});
    }
  }
  if (!report.egress.empty()) {
    out["egress"] = nlohmann::json::array();
    for (const auto& node : report.egress) {
      nlohmann::json hosts = nlohmann::json::array();
      for (const auto& r : node.results) hosts.push_back(result_json(r));
      out["egress"].push_back({{"node", node.node}, {"ok", node.ok()}, {"error", node.error}, {"results", std::move(hosts)}});
    }
  }
  return out.dump(2) + "\n";
}

std::string
render_junit(const CheckReport& report)
{
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites name=\"portmatrix check\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3f}\">\n",
                     report.results.size(), report.failed, report.skipped, report.duration.count() / 1000.0);
  out += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
                     xml_escape(report.cluster), report.results.size(), report.failed, report.skipped);
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
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

// Results grouped by direction (worker -> master, ...) like the guide's
// tables; groups in order of their first result, failures first, then skips,
// then passes.
std::vector<std::pair<std::string, std::vector<const FlowResult*>>>
by_direction(const CheckReport& report)
{
  std::vector<const FlowResult*> ordered;
  for (const auto& r : report.results) ordered.push_back(&r);
  std::stable_sort(ordered.begin(), ordered.end(), [](const FlowResult* a, const FlowResult* b) {
    auto rank = [](Verdict v) { return v == Verdict::fail ? 0 : v == Verdict::skip ? 1 : 2; };
    return rank(a->verdict) < rank(b->verdict);
  });
  std::vector<std::pair<std::string, std::vector<const FlowResult*>>> groups;
  std::map<std::string, std::size_t> index;
  for (const auto* r : ordered) {
    auto key = fmt::format("{} → {}", to_string(r->flow.from_role), to_string(r->flow.to_role));
    auto [it, added] = index.emplace(key, groups.size());
    if (added) groups.push_back({key, {}});
    groups[it->second].second.push_back(r);
  }
  return groups;
}

std::string
backends_text(const FlowResult& r)
{
  std::string reached;
  for (const auto& name : r.backends_reached) reached += (reached.empty() ? "" : ",") + name;
  return "reached " + (reached.empty() ? std::string("none") : reached);
}

// One line per agent that needs a word: unreachable, in error, blind, or
// sharing a port with a service.
std::vector<std::string>
agent_notes(const CheckReport& report)
{
  std::vector<std::string> notes;
  for (const auto& a : report.agents) {
    if (!a.reachable) notes.push_back(fmt::format("agent {}: unreachable ({})", a.node, a.error));
    else if (!a.error.empty()) notes.push_back(fmt::format("agent {}: {}", a.node, a.error));
    else if (!a.capture) notes.push_back(fmt::format("agent {}: no capture ({})", a.node, a.capture_error));
    for (const auto& owner : a.owners) notes.push_back(fmt::format("agent {}: port {} is held by a service", a.node, owner));
    if (!a.note.empty()) notes.push_back(fmt::format("agent {}: {}", a.node, a.note));
  }
  return notes;
}

// The coverage statement: every pair's path probed, and on how many ports;
// in sample mode, every port probed between one pair per pair of ruleset
// groups (so every group's ruleset on every port), and the seed to redo it.
std::string
coverage_text(const CheckReport& report)
{
  const auto& c = report.coverage;
  auto flows = c.flows_full + c.flows_sampled;
  if (report.coverage_options.mode == CoverageMode::full) {
    return fmt::format("coverage full: every port of every flow probed ({} flows, {} ports)", flows, c.ports_required);
  }
  return fmt::format("coverage sample (seed {}, {} random ports a flow): path coverage for every pair ({} flows); "
                     "every port probed on {} flows ({} pairs of {} ruleset groups, and the VIP), the edges and "
                     "the sample on the other {}; {} of {} ports probed",
                     report.coverage_options.seed, report.coverage_options.sample_ports, flows, c.flows_full,
                     c.representative_pairs.size(), report.ruleset_groups, c.flows_sampled, c.ports_probed,
                     c.ports_required);
}

// check --coverage sample: the firewall coverage statement, and one line per
// node whose evaluation failed or could not be done.
std::string
evaluation_text(const CheckReport& report, Colour colour)
{
  if (report.evaluation.empty()) return {};
  std::string out = "\nFirewalls (each node's live rules, evaluated by its agent for every port of every inbound flow)\n";
  std::size_t complete = 0;
  std::uint64_t ports = 0, failed = 0;
  TextTable table({"Node", "Verdict", "From", "Ports", "Decision", "Rule"});
  for (const auto& node : report.evaluation) {
    complete += node.complete();
    ports += node.reply.ports;
    failed += node.reply.failed;
    auto error = node.error.empty() ? node.reply.error : node.error;
    if (!error.empty()) table.add({node.node, paint(colour, "1;33", "not evaluated"), "", "", "", error});
    for (const auto& f : node.reply.failures) {
      bool unknown = f.decision == Decision::unknown;
      table.add({node.node, unknown ? paint(colour, "1;33", "unknown") : paint(colour, "1;31", "fail"), f.from,
                 ports_text(f.ports, f.protocol), std::string(to_string(f.decision)), f.rule});
    }
    if (node.reply.failures_left_out > 0) {
      table.add({node.node, "", "", "", "", fmt::format("(+{} more)", node.reply.failures_left_out)});
    }
  }
  if (!table.empty()) out += table.render();
  out += fmt::format("  firewall coverage: {} of {} nodes evaluated on every port of every inbound flow ({} "
                     "ports), {} failing\n",
                     complete, report.evaluation.size(), ports, failed);
  return out;
}

std::string
summary_text(const CheckReport& report)
{
  return fmt::format("{} passed, {} failed, {} skipped in {:.2f} s", report.passed, report.failed, report.skipped,
                     report.duration.count() / 1000.0);
}

// A single self-contained page (no scripts, no external resources), to keep
// as a CI artefact or mail to whoever owns the firewall.
std::string
render_html(const CheckReport& report)
{
  std::string out = fmt::format(R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>portmatrix check: {0}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }}
tr.fail td.verdict {{ background: #f8d0d0; font-weight: bold; }}
tr.skip td.verdict {{ background: #f8eec0; }}
tr.pass td.verdict {{ background: #d4f0d4; }}
ul {{ margin: 0; padding-left: 1.2em; }}
</style>
</head>
<body>
<h1>portmatrix check: {0}</h1>
<p class="summary">{1}</p>
)",
                                xml_escape(report.cluster), xml_escape(summary_text(report)));
  for (const auto& [direction, results] : by_direction(report)) {
    out += fmt::format("<h2>{}</h2>\n<table>\n<tr><th>Verdict</th><th>From</th><th>To</th><th>Ports</th>"
                       "<th>Purpose</th><th>Diagnosis</th><th>Detail</th></tr>\n",
                       xml_escape(direction));
    for (const auto* r : results) {
      std::string detail;
      for (const auto& f : r->failures) {
        detail += fmt::format("<li>{} {}: {}</li>", xml_escape(to_string(f.ports)), xml_escape(f.state), xml_escape(f.detail));
      }
      if (r->to == "vip") detail += "<li>" + xml_escape(backends_text(*r)) + "</li>";
      if (!detail.empty()) detail = "<ul>" + detail + "</ul>";
      auto verdict = std::string(to_string(r->verdict));
      out += fmt::format("<tr class=\"{0}\"><td class=\"verdict\">{0}</td><td>{1}</td><td>{2}</td><td>{3}</td>"
                         "<td>{4}</td><td>{5}</td><td>{6}</td></tr>\n",
                         verdict, xml_escape(r->from), xml_escape(r->to),
                         xml_escape(ports_text(r->flow.range, r->flow.protocol)), xml_escape(r->flow.purpose),
                         xml_escape(r->diagnosis), detail);
    }
    out += "</table>\n";
  }
  auto notes = agent_notes(report);
  if (!notes.empty()) {
    out += "<h2>Agents</h2>\n<ul>\n";
    for (const auto& note : notes) out += "<li>" + xml_escape(note) + "</li>\n";
    out += "</ul>\n";
  }
  out += "</body>\n</html>\n";
  return out;
}

std::string
render_table(const CheckReport& report, Colour colour)
{
  std::string out;
  for (const auto& [key, results] : by_direction(report)) {
    out += "\n" + key + "\n";
    TextTable table({"Verdict", "From", "To", "Ports", "Purpose", "Diagnosis", "Detail"});
    for (const auto* r : results) {
      std::string verdict(to_string(r->verdict));
      verdict = paint(colour, r->verdict == Verdict::pass ? "32" : r->verdict == Verdict::fail ? "1;31" : "33", verdict);
      std::string detail;
      if (!r->failures.empty()) {
        const auto& f = r->failures.front();
        detail = fmt::format("{} {}: {}", to_string(f.ports), f.state, f.detail);
        if (r->failures.size() > 1) detail += fmt::format(" (+{} more)", r->failures.size() - 1);
      }
      if (!r->answered_by.empty()) detail += (detail.empty() ? "" : "; ") + ("answered by " + r->answered_by);
      if (r->to == "vip") detail += (detail.empty() ? "" : "; ") + backends_text(*r);
      table.add({verdict, r->from, r->to, ports_text(r->flow.range, r->flow.protocol), r->flow.purpose, r->diagnosis,
                 detail});
    }
    auto text = table.render();
    out += text;
  }
  auto notes = agent_notes(report);
  if (!notes.empty()) {
    out += "\nAgents\n";
    for (const auto& note : notes) out += "  " + note + "\n";
  }
  if (!report.egress.empty()) {
    // Failures only: one line per node and host that did not answer as it must.
    out += "\nEgress (from every node)\n";
    TextTable table({"Node", "Verdict", "Host", "Port", "Via", "Detail"});
    std::size_t ok = 0;
    for (const auto& node : report.egress) {
      if (!node.error.empty()) table.add({node.node, paint(colour, "1;31", "error"), "", "", "", node.error});
      for (const auto& r : node.results) {
        if (r.verdict == EgressVerdict::ok) {
          ++ok;
          continue;
        }
        table.add({node.node, paint(colour, "1;31", std::string(to_string(r.verdict))), r.target.host,
                   std::to_string(r.target.port.port), r.proxy.empty() ? "direct" : r.proxy, r.detail});
      }
    }
    if (!table.empty()) out += table.render();
    out += fmt::format("  {} host check(s) ok on {} node(s)\n", ok, report.egress.size());
  }
  out += evaluation_text(report, colour);
  out += "\n" + coverage_text(report) + "\n";
  out += summary_text(report) + "\n";
  return out;
}

} // namespace

std::string
render_check(const CheckReport& report, CheckFormat format, Colour colour)
{
  switch (format) {
  case CheckFormat::json: return render_json(report);
  case CheckFormat::junit: return render_junit(report);
  case CheckFormat::table: return render_table(report, colour);
  case CheckFormat::html: return render_html(report);
  }
  return {};
}

} // namespace portmatrix
