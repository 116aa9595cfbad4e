#include "report/check_report.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/text_table.hpp"

namespace portmatrix {

std::optional<CheckFormat>
parse_check_format(std::string_view text)
{
  if (text == "table") return CheckFormat::table;
  if (text == "json") return CheckFormat::json;
  if (text == "junit") return CheckFormat::junit;
  return std::nullopt;
}

namespace {

std::string
ports_text(const PortRange& range, Protocol protocol)
{
  return fmt::format("{}/{}", to_string(range), to_string(protocol));
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
                      {"owners", a.owners}});
  }
  nlohmann::json out{{"cluster", report.cluster},
                     {"summary", {{"passed", report.passed}, {"failed", report.failed}, {"skipped", report.skipped}}},
                     {"duration_ms", report.duration.count()},
                     {"rounds_ms", [&] {
                        nlohmann::json rounds = nlohmann::json::object();
                        for (const auto& [name, time] : report.rounds) rounds[name] = time.count();
                        return rounds;
                      }()},
                     {"results", std::move(results)},
                     {"agents", std::move(agents)}};
  return out.dump(2) + "\n";
}

std::string
xml_escape(std::string_view text)
{
  std::string out;
  for (char c : text) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    default:
      if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') break;
      out += c;
    }
  }
  return out;
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

std::string
paint(Colour colour, std::string_view code, const std::string& text)
{
  return colour == Colour::on ? fmt::format("\033[{}m{}\033[0m", code, text) : text;
}

std::string
render_table(const CheckReport& report, Colour colour)
{
  // Grouped by direction (worker -> master, ...) like the guide's tables;
  // failures first, then skips, then passes.
  std::vector<const FlowResult*> ordered;
  for (const auto& r : report.results) ordered.push_back(&r);
  std::stable_sort(ordered.begin(), ordered.end(), [](const FlowResult* a, const FlowResult* b) {
    auto rank = [](Verdict v) { return v == Verdict::fail ? 0 : v == Verdict::skip ? 1 : 2; };
    return rank(a->verdict) < rank(b->verdict);
  });
  std::vector<std::string> order;
  std::map<std::string, std::vector<const FlowResult*>> groups;
  for (const auto* r : ordered) {
    auto key = fmt::format("{} → {}", to_string(r->flow.from_role), to_string(r->flow.to_role));
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(r);
  }
  std::string out;
  for (const auto& key : order) {
    out += "\n" + key + "\n";
    TextTable table({"Verdict", "From", "To", "Ports", "Purpose", "Diagnosis", "Detail"});
    for (const auto* r : groups[key]) {
      std::string verdict(to_string(r->verdict));
      verdict = paint(colour, r->verdict == Verdict::pass ? "32" : r->verdict == Verdict::fail ? "1;31" : "33", verdict);
      std::string detail;
      if (!r->failures.empty()) {
        const auto& f = r->failures.front();
        detail = fmt::format("{} {}: {}", to_string(f.ports), f.state, f.detail);
        if (r->failures.size() > 1) detail += fmt::format(" (+{} more)", r->failures.size() - 1);
      }
      if (!r->answered_by.empty()) detail += (detail.empty() ? "" : "; ") + ("answered by " + r->answered_by);
      if (r->to == "vip") {
        std::string reached;
        for (const auto& name : r->backends_reached) reached += (reached.empty() ? "" : ",") + name;
        detail += (detail.empty() ? "" : "; ") + ("reached " + (reached.empty() ? std::string("none") : reached));
      }
      table.add({verdict, r->from, r->to, ports_text(r->flow.range, r->flow.protocol), r->flow.purpose, r->diagnosis,
                 detail});
    }
    auto text = table.render();
    out += text;
  }
  std::string agents_note;
  for (const auto& a : report.agents) {
    if (!a.reachable) agents_note += fmt::format("  agent {}: unreachable ({})\n", a.node, a.error);
    else if (!a.error.empty()) agents_note += fmt::format("  agent {}: {}\n", a.node, a.error);
    else if (!a.capture) agents_note += fmt::format("  agent {}: no capture ({})\n", a.node, a.capture_error);
    for (const auto& owner : a.owners) agents_note += fmt::format("  agent {}: port {} is held by a service\n", a.node, owner);
  }
  if (!agents_note.empty()) out += "\nAgents\n" + agents_note;
  out += fmt::format("\n{} passed, {} failed, {} skipped in {:.2f} s\n", report.passed, report.failed, report.skipped,
                     report.duration.count() / 1000.0);
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
  }
  return {};
}

} // namespace portmatrix
