// The check report as one self-contained HTML page.
#include "report/check_report_parts.hpp"

#include <fmt/format.h>

namespace portmatrix::check_report {

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

} // namespace portmatrix::check_report
