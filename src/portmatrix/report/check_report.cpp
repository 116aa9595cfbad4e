// Renders a check report: picks the format (one file per concern:
// check_report_{summary,table,html,json}.cpp).
#include "report/check_report.hpp"

#include "report/check_report_parts.hpp"

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

std::string
render_check(const CheckReport& report, CheckFormat format, Colour colour, CheckDetail detail)
{
  switch (format) {
  case CheckFormat::json: return check_report::render_json(report);
  case CheckFormat::junit: return check_report::render_junit(report);
  case CheckFormat::table: return check_report::render_table(report, colour, detail);
  case CheckFormat::html: return check_report::render_html(report);
  }
  return {};
}

std::string
check_overall_line(const CheckReport& report, Colour colour)
{
  return check_report::overall_line(report, colour);
}

} // namespace portmatrix
