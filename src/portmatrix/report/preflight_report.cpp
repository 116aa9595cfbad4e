#include "report/preflight_report.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/text_table.hpp"

namespace portmatrix {
namespace {

using json = nlohmann::json;

std::string
owner_text(const PortHolder& held)
{
  auto answers = held.answered_by.empty() ? std::string() : "; answers as " + held.answered_by;
  if (!held.owner) return fmt::format("{} on {} (owner not visible){}", held.port, held.address, answers);
  return fmt::format("{} on {} by pid {} {} ({}){}", held.port, held.address, held.owner->pid, held.owner->name,
                     held.owner->command.empty() ? held.owner->name : held.owner->command, answers);
}

std::string
ports_summary(const PortsCheck& check)
{
  if (check.held.empty()) return "free";
  std::string text = fmt::format("{} held: {}", check.held.size(), owner_text(check.held.front()));
  if (check.held.size() > 1) text += fmt::format(" (+{} more)", check.held.size() - 1);
  return text;
}

std::string
ports_text(const PortRange& range, Protocol protocol)
{
  return fmt::format("{}/{}", to_string(range), to_string(protocol));
}

int
rank(CheckStatus status)
{
  switch (status) {
  case CheckStatus::fail: return 0;
  case CheckStatus::warn: return 1;
  case CheckStatus::skip: return 2;
  default: return 3;
  }
}

template <typename Item>
std::vector<const Item*>
failures_first(const std::vector<Item>& items)
{
  std::vector<const Item*> ordered;
  for (const auto& item : items) ordered.push_back(&item);
  std::stable_sort(ordered.begin(), ordered.end(), [](const Item* a, const Item* b) { return rank(a->status) < rank(b->status); });
  return ordered;
}

std::string
status_cell(Colour colour, CheckStatus status)
{
  auto code = status == CheckStatus::fail ? "1;31" : status == CheckStatus::warn ? "33" : status == CheckStatus::skip ? "2" : "32";
  return paint(colour, code, std::string(to_string(status)));
}

std::string
render_table(const PreflightReport& report, Colour colour)
{
  std::string out = fmt::format("Preflight of {} ({}), {} mode\n", report.node, report.address,
                                report.mode == PreflightMode::install ? "install" : "running");
  out += "\nPorts\n";
  TextTable ports({"Status", "Ports", "Names", "State"});
  for (const auto* check : failures_first(report.ports)) {
    ports.add({status_cell(colour, check->status), ports_text(check->range, check->protocol), check->names, ports_summary(*check)});
  }
  out += ports.render();
  for (const auto& check : report.ports) {
    for (std::size_t i = 1; i < check.held.size(); ++i) out += fmt::format("  {}/{} held: {}\n", check.held[i].port, to_string(check.protocol), owner_text(check.held[i]));
  }
  out += fmt::format("\nFirewall ({})\n", report.backend);
  TextTable firewall({"Status", "From", "Ports", "Purpose", "Decision", "Rule"});
  for (const auto* r : failures_first(report.firewall)) {
    firewall.add({status_cell(colour, r->status), r->from, ports_text(r->ports, r->protocol), r->purpose,
                  std::string(to_string(r->decision)), r->rule});
  }
  out += firewall.empty() ? "  no inbound flows\n" : firewall.render();
  for (const auto& manager : report.managers) out += fmt::format("  {} {}\n", paint(colour, "33", manager.name), manager.summary);
  out += "\nKernel\n";
  TextTable kernel({"Status", "Check", "Detail"});
  for (const auto* k : failures_first(report.kernel)) kernel.add({status_cell(colour, k->status), k->name, k->detail});
  out += kernel.render();
  out += fmt::format("\n{} passed, {} failed, {} warnings, {} skipped\n", report.passed, report.failed, report.warnings,
                     report.skipped);
  return out;
}

json
owner_json(const std::optional<ProcessInfo>& owner)
{
  if (!owner) return nullptr;
  return {{"pid", owner->pid}, {"process", owner->name}, {"command", owner->command}};
}

std::string
render_json(const PreflightReport& report)
{
  json ports = json::array();
  for (const auto& c : report.ports) {
    json held = json::array();
    for (const auto& h : c.held) {
      nlohmann::json item{{"port", h.port}, {"address", h.address}, {"owner", owner_json(h.owner)}};
      if (!h.answered_by.empty()) item["answered_by"] = h.answered_by;
      held.push_back(std::move(item));
    }
    ports.push_back({{"protocol", to_string(c.protocol)},
                     {"port_min", c.range.min},
                     {"port_max", c.range.max},
                     {"names", c.names},
                     {"status", to_string(c.status)},
                     {"held", std::move(held)}});
  }
  json results = json::array();
  for (const auto& r : report.firewall) {
    results.push_back({{"from", r.from},
                       {"from_address", r.from_address},
                       {"to_address", r.to_address},
                       {"protocol", to_string(r.protocol)},
                       {"port_min", r.ports.min},
                       {"port_max", r.ports.max},
                       {"purpose", r.purpose},
                       {"expect", to_string(r.expect)},
                       {"decision", to_string(r.decision)},
                       {"rule", r.rule},
                       {"status", to_string(r.status)}});
  }
  json managers = json::array();
  for (const auto& m : report.managers) managers.push_back({{"name", m.name}, {"summary", m.summary}});
  json kernel = json::array();
  for (const auto& k : report.kernel) kernel.push_back({{"check", k.name}, {"status", to_string(k.status)}, {"detail", k.detail}});
  json out{{"node", report.node},
           {"address", report.address},
           {"mode", report.mode == PreflightMode::install ? "install" : "running"},
           {"summary", {{"passed", report.passed}, {"failed", report.failed}, {"warnings", report.warnings}, {"skipped", report.skipped}}},
           {"ports", std::move(ports)},
           {"firewall", {{"backend", report.backend}, {"managers", std::move(managers)}, {"results", std::move(results)}}},
           {"kernel", std::move(kernel)}};
  return out.dump(2) + "\n";
}

std::string
testcase(std::string_view group, const std::string& name, CheckStatus status, const std::string& detail)
{
  std::string out = fmt::format("    <testcase classname=\"preflight.{}\" name=\"{}\">\n", group, xml_escape(name));
  if (status == CheckStatus::fail) out += fmt::format("      <failure message=\"{}\">{}</failure>\n", xml_escape(detail), xml_escape(detail));
  else if (status == CheckStatus::skip) out += fmt::format("      <skipped message=\"{}\"/>\n", xml_escape(detail));
  else if (!detail.empty()) out += fmt::format("      <system-out>{}</system-out>\n", xml_escape(detail));
  return out + "    </testcase>\n";
}

std::string
render_junit(const PreflightReport& report)
{
  auto total = report.ports.size() + report.firewall.size() + report.kernel.size();
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites name=\"portmatrix preflight\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n", total,
                     report.failed, report.skipped);
  out += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n", xml_escape(report.node), total,
                     report.failed, report.skipped);
  for (const auto& c : report.ports) {
    std::string detail = ports_summary(c);
    for (std::size_t i = 1; i < c.held.size(); ++i) detail += "\n" + owner_text(c.held[i]);
    out += testcase("ports", ports_text(c.range, c.protocol) + " " + c.names, c.status, detail);
  }
  for (const auto& r : report.firewall) {
    out += testcase("firewall", fmt::format("{} -> {} {} {}", r.from, report.node, ports_text(r.ports, r.protocol), r.purpose), r.status,
                    fmt::format("{}: {}", to_string(r.decision), r.rule));
  }
  for (const auto& k : report.kernel) out += testcase("kernel", k.name, k.status, k.detail);
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

} // namespace

std::string
render_preflight(const PreflightReport& report, CheckFormat format, Colour colour)
{
  switch (format) {
  case CheckFormat::json: return render_json(report);
  case CheckFormat::junit: return render_junit(report);
  case CheckFormat::table: return render_table(report, colour);
  case CheckFormat::html: break; // not offered for preflight: the CLI refuses it
  }
  return {};
}

} // namespace portmatrix
