// Check reports rendered from hand-made reports: what every format must
// carry (who answers on a port held by a real service, too), and that text
// from the inventory or a peer cannot break out of its markup.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "report/check_report.hpp"

namespace portmatrix {
namespace {

std::size_t
count(const std::string& text, const std::string& what)
{
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

FlowResult
result(std::string from, std::string to, Verdict verdict, std::string purpose)
{
  FlowResult r;
  r.flow.from_role = Role::worker;
  r.flow.to_role = Role::master;
  r.flow.protocol = Protocol::tcp;
  r.flow.range = PortRange{10250, 10250};
  r.flow.purpose = std::move(purpose);
  r.from = std::move(from);
  r.to = std::move(to);
  r.verdict = verdict;
  r.diagnosis = verdict == Verdict::pass ? "ok" : "dropped-by-destination-firewall";
  return r;
}

CheckReport
sample_report()
{
  CheckReport report;
  report.cluster = "prod<1>";
  report.results.push_back(result("worker1", "master1", Verdict::pass, "kubelet"));
  auto failed = result("worker2", "master1", Verdict::fail, "kubelet <script>alert(1)</script>");
  failed.failures.push_back({PortRange{10250, 10250}, "filtered", "dropped-by-destination-firewall",
                             "1 of 1 ports' probes reached master1's interface & never its socket"});
  report.results.push_back(failed);
  auto vip = result("worker1", "vip", Verdict::pass, "apiserver via VIP");
  vip.backends_reached = {"master1", "master2"};
  report.results.push_back(vip);
  AgentStatus dead;
  dead.node = "worker3";
  dead.error = "connection refused";
  report.agents.push_back(dead);
  report.passed = 2;
  report.failed = 1;
  report.duration = std::chrono::milliseconds(1234);
  return report;
}

TEST(CheckReportHtml, IsOnePageWithARowPerResultFailuresFirst)
{
  auto html = render_check(sample_report(), CheckFormat::html);
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  EXPECT_TRUE(html.ends_with("</html>\n"));
  EXPECT_EQ(count(html, "<tr class="), 3u);
  EXPECT_EQ(count(html, "<tr class=\"fail\">"), 1u);
  EXPECT_LT(html.find("<tr class=\"fail\">"), html.find("<tr class=\"pass\">")) << "failures first";
  EXPECT_NE(html.find("2 passed, 1 failed, 0 skipped in 1.23 s"), std::string::npos);
  EXPECT_NE(html.find("reached master1,master2"), std::string::npos);
  EXPECT_NE(html.find("agent worker3: unreachable (connection refused)"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos) << "no scripts, and none injected";
  EXPECT_EQ(html.find("http"), std::string::npos) << "nothing loaded from elsewhere";
}

TEST(CheckReportHtml, EscapesTextFromTheInventoryAndFromPeers)
{
  auto html = render_check(sample_report(), CheckFormat::html);
  EXPECT_NE(html.find("kubelet &lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("interface &amp; never"), std::string::npos);
  EXPECT_NE(html.find("portmatrix check: prod&lt;1&gt;"), std::string::npos);
}

TEST(CheckReportFormats, ParseEveryNameAndNothingElse)
{
  EXPECT_EQ(parse_check_format("table"), CheckFormat::table);
  EXPECT_EQ(parse_check_format("json"), CheckFormat::json);
  EXPECT_EQ(parse_check_format("junit"), CheckFormat::junit);
  EXPECT_EQ(parse_check_format("html"), CheckFormat::html);
  EXPECT_FALSE(parse_check_format("HTML"));
  EXPECT_FALSE(parse_check_format(""));
}

TEST(CheckReportJunit, HasATestcasePerResultAndEscapes)
{
  auto xml = render_check(sample_report(), CheckFormat::junit);
  EXPECT_EQ(count(xml, "<testcase "), 3u);
  EXPECT_EQ(count(xml, "<failure "), 1u);
  EXPECT_EQ(xml.find("<script"), std::string::npos);
}

CheckReport
report_with_service()
{
  CheckReport report;
  report.cluster = "test";
  FlowResult service;
  service.flow.from_role = Role::master;
  service.flow.to_role = Role::master;
  service.flow.protocol = Protocol::tcp;
  service.flow.range = {2379, 2380};
  service.flow.purpose = "etcd server client API";
  service.from = "master2";
  service.to = "master1";
  service.verdict = Verdict::pass;
  service.diagnosis = "service";
  service.answered_by = "etcd 3.4.23 (cluster version 3.4.0)";
  FlowResult plain = service;
  plain.to = "master3";
  plain.diagnosis = "ok";
  plain.answered_by.clear();
  report.results = {service, plain};
  report.passed = 2;
  return report;
}

TEST(CheckReport, JsonCarriesAnsweredByOnlyWhereKnown)
{
  auto json = nlohmann::json::parse(render_check(report_with_service(), CheckFormat::json));
  ASSERT_EQ(json["results"].size(), 2u);
  EXPECT_EQ(json["results"][0]["answered_by"], "etcd 3.4.23 (cluster version 3.4.0)");
  EXPECT_FALSE(json["results"][1].contains("answered_by"));
}

// A destination that vouched for answers its probers did not get in time:
// its note is in the JSON (empty for the others) and under the table.
TEST(CheckReport, AnAgentsNoteIsInTheJsonAndUnderTheTable)
{
  auto report = sample_report();
  AgentStatus busy;
  busy.node = "master2";
  busy.reachable = true;
  busy.capture = true;
  busy.note = "answered probes to 3 ports (counted per source) too late for the prober";
  report.agents.push_back(busy);
  auto json = nlohmann::json::parse(render_check(report, CheckFormat::json));
  ASSERT_EQ(json["agents"].size(), 2u);
  EXPECT_EQ(json["agents"][0]["note"], "");
  EXPECT_EQ(json["agents"][1]["note"], "answered probes to 3 ports (counted per source) too late for the prober");
  auto table = render_check(report, CheckFormat::table);
  EXPECT_NE(table.find("agent master2: answered probes to 3 ports (counted per source) too late for the prober"), std::string::npos) << table;
}

TEST(CheckReport, TableShowsWhoAnswered)
{
  auto table = render_check(report_with_service(), CheckFormat::table);
  EXPECT_NE(table.find("answered by etcd 3.4.23 (cluster version 3.4.0)"), std::string::npos) << table;
  EXPECT_EQ(table.find("answered by", table.find("master3")), std::string::npos) << table;
}


} // namespace
} // namespace portmatrix
