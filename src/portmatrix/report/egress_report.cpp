// Egress reports. The table puts failures first; JSON carries every field a
// script needs (verdict per host and port, the detail, the addresses); JUnit
// has one testcase per host and port. The allowlists are rendered from the
// resolved list, so a mirror the inventory adds is in them too.
#include "report/egress_report.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "egress/result_json.hpp"
#include "plan/egress.hpp"
#include "util/text_table.hpp"

namespace portmatrix {

std::optional<EgressFormat>
parse_egress_format(std::string_view text)
{
  if (text == "table") return EgressFormat::table;
  if (text == "json") return EgressFormat::json;
  if (text == "junit") return EgressFormat::junit;
  if (text == "squid") return EgressFormat::squid;
  if (text == "domains") return EgressFormat::domains;
  return std::nullopt;
}

bool
is_allowlist(EgressFormat format)
{
  return format == EgressFormat::squid || format == EgressFormat::domains;
}

std::size_t
EgressReport::failed() const
{
  return std::size_t(std::count_if(results.begin(), results.end(),
                                   [](const EgressResult& r) { return r.verdict != EgressVerdict::ok; }));
}

namespace {

std::string
target_text(const EgressTarget& target)
{
  return fmt::format("{}:{}", target.host, target.port.port);
}

std::string
render_json(const EgressReport& report)
{
  nlohmann::json results = nlohmann::json::array();
  for (const auto& r : report.results) {
    results.push_back(result_json(r));
  }
  nlohmann::json out{{"cluster", report.cluster},
                     {"summary", {{"ok", report.results.size() - report.failed()}, {"failed", report.failed()}}},
                     {"proxy", report.proxy_source},
                     {"duration_ms", report.duration.count()},
                     {"results", std::move(results)},
                     {"unchecked", report.unchecked}};
  return out.dump(2) + "\n";
}

std::string
render_junit(const EgressReport& report)
{
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites name=\"portmatrix egress\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n",
                     report.results.size(), report.failed(), report.duration.count() / 1000.0);
  out += fmt::format("  <testsuite name=\"{}.egress\" tests=\"{}\" failures=\"{}\">\n", xml_escape(report.cluster),
                     report.results.size(), report.failed());
  for (const auto& r : report.results) {
    out += fmt::format("    <testcase classname=\"{}.egress\" name=\"{} {}\" time=\"{:.3f}\">\n",
                       xml_escape(report.cluster), xml_escape(target_text(r.target)), xml_escape(r.target.purpose),
                       r.elapsed.count() / 1000.0);
    if (r.verdict != EgressVerdict::ok) {
      out += fmt::format("      <failure message=\"{0}\" type=\"{0}\">{1}</failure>\n", to_string(r.verdict),
                         xml_escape(r.detail));
    }
    out += "    </testcase>\n";
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

std::string
render_table(const EgressReport& report, Colour colour)
{
  std::vector<const EgressResult*> ordered;
  for (const auto& r : report.results) ordered.push_back(&r);
  std::stable_sort(ordered.begin(), ordered.end(), [](const EgressResult* a, const EgressResult* b) {
    return (a->verdict == EgressVerdict::ok) < (b->verdict == EgressVerdict::ok);
  });
  TextTable table({"Verdict", "Host", "Port", "Entry", "Via", "Detail"});
  for (const auto* r : ordered) {
    std::string verdict(to_string(r->verdict));
    table.add({paint(colour, r->verdict == EgressVerdict::ok ? "32" : "1;31", verdict), r->target.host,
               fmt::format("{}/{}", r->target.port.port, to_string(r->target.port.scheme)), r->target.entry,
               r->proxy.empty() ? "direct" : r->proxy, r->detail});
  }
  std::string out = table.render();
  for (const auto& entry : report.unchecked) {
    out += fmt::format("not checked: {} names no concrete host (add `serves` in the profile)\n", entry);
  }
  out += fmt::format("\n{} ok, {} failed in {:.2f} s{}\n", report.results.size() - report.failed(), report.failed(),
                     report.duration.count() / 1000.0,
                     report.proxy_source.empty() ? "" : fmt::format(" (proxy from {})", report.proxy_source));
  return out;
}

} // namespace

std::string
render_egress(const EgressReport& report, EgressFormat format, Colour colour)
{
  switch (format) {
  case EgressFormat::json: return render_json(report);
  case EgressFormat::junit: return render_junit(report);
  case EgressFormat::table: return render_table(report, colour);
  case EgressFormat::squid:
  case EgressFormat::domains: break;
  }
  return {};
}

std::string
render_allowlist(const std::vector<EgressHost>& hosts, EgressFormat format, std::string_view label)
{
  auto domains = egress_allowlist(hosts);
  std::string out;
  if (format == EgressFormat::domains) {
    for (const auto& domain : domains) out += domain + "\n";
    return out;
  }
  std::vector<std::uint16_t> ports;
  for (const auto& host : hosts) {
    for (const auto& port : host.ports) ports.push_back(port.port);
  }
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  out += fmt::format("# portmatrix egress allowlist for {}: the hosts the installation needs.\n", label);
  out += "# Wildcards are written .domain (the domain and its subdomains).\n";
  for (const auto& domain : domains) {
    out += fmt::format("acl portmatrix_egress dstdomain {}\n", domain.starts_with("*.") ? domain.substr(1) : domain);
  }
  std::string port_list;
  for (auto port : ports) port_list += fmt::format(" {}", port);
  out += fmt::format("acl portmatrix_egress_ports port{}\n", port_list);
  out += "# Then, before the final `http_access deny all`, allow your nodes, e.g.:\n";
  out += "# http_access allow localnet portmatrix_egress_ports portmatrix_egress\n";
  return out;
}

} // namespace portmatrix
