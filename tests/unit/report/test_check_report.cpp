// Check reports rendered from hand-made reports: what every format must
// carry (who answers on a port held by a real service, too), and that text
// from the inventory or a peer cannot break out of its markup.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
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

TEST(CheckReport, VerboseTableShowsWhoAnswered)
{
  auto table = render_check(report_with_service(), CheckFormat::table, Colour::off, CheckDetail::every_flow);
  EXPECT_NE(table.find("answered by etcd 3.4.23 (cluster version 3.4.0)"), std::string::npos) << table;
  EXPECT_EQ(table.find("answered by", table.find("master3")), std::string::npos) << table;
}


// A protocol without ports (IP-in-IP) is named with its number, never as port 0.
TEST(CheckReport, IpInIpIsNamedByItsProtocolNotByAPortZero)
{
  CheckReport report;
  report.cluster = "calico";
  auto ipip = result("master1", "worker2", Verdict::fail, "Calico IP-in-IP");
  ipip.flow.protocol = Protocol::ipip;
  ipip.flow.range = PortRange{0, 0};
  ipip.failures.push_back({PortRange{0, 0}, "filtered", "dropped-by-destination-firewall",
                           "the ipip probes reached worker2's interface, never its agent's raw socket"});
  report.results.push_back(ipip);
  report.failed = 1;
  auto table = render_check(report, CheckFormat::table, Colour::off, CheckDetail::every_flow);
  EXPECT_NE(table.find("ipip (IP protocol 4)"), std::string::npos) << table;
  EXPECT_NE(table.find("  filtered: the ipip probes"), std::string::npos) << table;
  EXPECT_EQ(table.find("0/ipip"), std::string::npos) << table;
  auto html = render_check(report, CheckFormat::html);
  EXPECT_NE(html.find("<li>filtered: the ipip probes"), std::string::npos);
}

// The demo's planted fault: master2 drops 8472/udp; five sources see it.
CheckReport
planted_report()
{
  CheckReport report;
  report.cluster = "demo";
  report.profile = "apinizer";
  report.profile_version = "2025.1";
  report.portmatrix = "portmatrix 0.1.0 (commit abc, dynamic)";
  report.inventory_sha256 = std::string(64, 'a');
  report.started = std::chrono::sys_days{std::chrono::year{2026} / 12 / 3} + std::chrono::hours(6) + std::chrono::minutes(34);
  report.duration = std::chrono::milliseconds(2310);
  std::vector<std::string> nodes{"master1", "master2", "master3", "worker1", "worker2", "worker3"};
  for (const auto& name : nodes) {
    AgentStatus agent;
    agent.node = name;
    agent.reachable = name != "worker3";
    agent.capture = true;
    agent.error = name == "worker3" ? "connection refused" : "";
    report.agents.push_back(agent);
  }
  for (const auto& from : nodes) {
    for (const auto& to : nodes) {
      if (from == to) continue;
      auto r = result(from, to, Verdict::pass, "Flannel VXLAN");
      r.flow.protocol = Protocol::udp;
      r.flow.range = {8472, 8472};
      r.flow.from_role = from.starts_with("master") ? Role::master : Role::worker;
      r.flow.to_role = to.starts_with("master") ? Role::master : Role::worker;
      if (from == "worker3" || to == "worker3") {
        r.verdict = Verdict::skip;
        r.diagnosis = "agent-unreachable";
      } else if (to == "master2") {
        r.verdict = Verdict::fail;
        r.diagnosis = "dropped-by-destination-firewall";
        r.failures.push_back({PortRange{8472, 8472}, "filtered", "dropped-by-destination-firewall",
                              "1 of 1 ports' probes reached master2's interface, never its socket"});
      }
      report.passed += r.verdict == Verdict::pass;
      report.failed += r.verdict == Verdict::fail;
      report.skipped += r.verdict == Verdict::skip;
      report.results.push_back(r);
    }
  }
  return report;
}

std::vector<std::string>
lines_of(const std::string& text)
{
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < text.size();) {
    auto end = text.find('\n', at);
    lines.push_back(text.substr(at, end - at));
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return lines;
}

std::string
without_escapes(std::string text)
{
  for (auto at = text.find('\033'); at != std::string::npos; at = text.find('\033', at)) {
    text.erase(at, text.find('m', at) - at + 1);
  }
  return text;
}

TEST(CheckReportTable, GroupsFailuresByCauseAndPlace)
{
  auto report = planted_report();
  auto table = render_check(report, CheckFormat::table);
  EXPECT_NE(table.find("master2 drops 8472/udp from 4 sources: dropped-by-destination-firewall "
                       "(master1, master3, worker1, worker2)\n"),
            std::string::npos)
    << table;
  EXPECT_EQ(count(table, "master2 drops"), 1u) << table;
  EXPECT_EQ(table.find("pass "), std::string::npos) << "no passing flow listed by default:\n" << table;
}

TEST(CheckReportTable, HasTheOverallLineAtTopAndBottom)
{
  auto lines = lines_of(render_check(planted_report(), CheckFormat::table));
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines.front(), "FAIL demo: 16 passed, 4 failed, 10 skipped in 2.31 s");
  EXPECT_EQ(lines.back(), lines.front());
}

TEST(CheckReportTable, SaysWhatCouldNotBeTestedAndWhy)
{
  auto table = render_check(planted_report(), CheckFormat::table);
  EXPECT_NE(table.find("worker3: 10 flows untested (5 from it, 5 to it): agent-unreachable (connection refused)"),
            std::string::npos)
    << table;
}

TEST(CheckReportTable, HasOneLinePerDirection)
{
  auto lines = lines_of(render_check(planted_report(), CheckFormat::table));
  auto line = [&](const std::string& start) {
    return std::count_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.starts_with(start); });
  };
  EXPECT_EQ(line("  master → master "), 1);
  EXPECT_EQ(line("  worker → master "), 1);
  EXPECT_EQ(line("  master → worker "), 1);
  EXPECT_EQ(line("  worker → worker "), 1);
  EXPECT_NE(std::find(lines.begin(), lines.end(), "  worker → master  4       2       3"), lines.end())
    << render_check(planted_report(), CheckFormat::table);
}

TEST(CheckReportTable, VerboseListsEveryFlow)
{
  auto report = planted_report();
  auto terse = render_check(report, CheckFormat::table);
  auto verbose = render_check(report, CheckFormat::table, Colour::off, CheckDetail::every_flow);
  EXPECT_EQ(count(verbose, "Flannel VXLAN"), report.results.size());
  EXPECT_EQ(count(terse, "Flannel VXLAN"), 0u);
  EXPECT_LT(lines_of(terse).size(), report.results.size()) << terse;
}

TEST(CheckReportTable, ColourKeepsTheColumnsAligned)
{
  auto report = planted_report();
  for (auto detail : {CheckDetail::summary, CheckDetail::every_flow}) {
    auto plain = render_check(report, CheckFormat::table, Colour::off, detail);
    auto coloured = render_check(report, CheckFormat::table, Colour::on, detail);
    EXPECT_NE(coloured.find('\033'), std::string::npos);
    EXPECT_EQ(without_escapes(coloured), plain);
  }
}

TEST(CheckReportHtml, HasAHeaderAndAMatrixCellPerNodePair)
{
  auto report = planted_report();
  auto html = render_check(report, CheckFormat::html);
  EXPECT_NE(html.find("<th>Profile</th><td>apinizer 2025.1</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>portmatrix</th><td>portmatrix 0.1.0 (commit abc, dynamic)</td>"), std::string::npos);
  EXPECT_NE(html.find(std::string(64, 'a')), std::string::npos);
  EXPECT_NE(html.find("<th>Started</th><td>2026-12-03 06:34:00 UTC</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>Duration</th><td>2.31 s</td>"), std::string::npos);
  auto node_matrix = html.substr(html.find("<details id=\"node-matrix\""));
  node_matrix = node_matrix.substr(0, node_matrix.find("</details>"));
  EXPECT_EQ(count(node_matrix, "<td class=\"cell "), 36u) << "6 x 6 nodes";
  EXPECT_EQ(count(node_matrix, "<td class=\"cell none\""), 6u) << "no flow from a node to itself";
  EXPECT_EQ(count(node_matrix, "<td class=\"cell fail\""), 4u);
  EXPECT_EQ(count(node_matrix, "<td class=\"cell skip\""), 10u);
  EXPECT_NE(html.find("<details id=\"role-matrix\">"), std::string::npos) << "folded for 6 nodes";
  // A failing cell links to a failing flow's row.
  auto cell = node_matrix.find("data-from=\"worker1\" data-to=\"master2\"");
  ASSERT_NE(cell, std::string::npos);
  auto href = node_matrix.substr(node_matrix.find("href=\"#", cell) + 7);
  href = href.substr(0, href.find('"'));
  auto row = html.find("id=\"" + href + "\"");
  ASSERT_NE(row, std::string::npos) << href;
  EXPECT_EQ(html.rfind("<tr class=\"fail\">", row), html.rfind("<tr class=", row));
  EXPECT_NE(html.find("master2 drops 8472/udp from 4 sources"), std::string::npos);
  EXPECT_NE(html.find("<h2 id=\"untested\">"), std::string::npos);
  EXPECT_NE(html.find("@media print"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);
}

TEST(CheckReportJson, SaysWhatWasCheckedWithWhatAndWhen)
{
  auto json = nlohmann::json::parse(render_check(planted_report(), CheckFormat::json));
  EXPECT_EQ(json["status"], "fail");
  EXPECT_EQ(json["profile"]["name"], "apinizer");
  EXPECT_EQ(json["profile"]["version"], "2025.1");
  EXPECT_EQ(json["portmatrix"], "portmatrix 0.1.0 (commit abc, dynamic)");
  EXPECT_EQ(json["inventory_sha256"], std::string(64, 'a'));
  EXPECT_EQ(json["started"], "2026-12-03T06:34:00Z");
  auto skipped = planted_report();
  std::erase_if(skipped.results, [](const FlowResult& r) { return r.verdict == Verdict::fail; });
  skipped.failed = 0;
  EXPECT_EQ(nlohmann::json::parse(render_check(skipped, CheckFormat::json))["status"], "incomplete");
  EXPECT_EQ(nlohmann::json::parse(render_check(report_with_service(), CheckFormat::json))["status"], "pass");
}


// Every id="..." of the page.
std::vector<std::string>
ids_of(const std::string& html)
{
  std::vector<std::string> ids;
  for (auto at = html.find(" id=\""); at != std::string::npos; at = html.find(" id=\"", at + 1)) {
    ids.push_back(html.substr(at + 5, html.find('"', at + 5) - at - 5));
  }
  return ids;
}

// The <tr ...> rows of the page's flow tables, each as its From and To cells.
std::vector<std::pair<std::string, std::string>>
row_pairs(const std::string& html)
{
  std::vector<std::pair<std::string, std::string>> rows;
  for (auto at = html.find("<tr class="); at != std::string::npos; at = html.find("<tr class=", at + 1)) {
    auto from = html.find("</td><td>", at) + 9;
    auto to = html.find("</td><td>", from) + 9;
    rows.push_back({html.substr(from, html.find('<', from) - from), html.substr(to, html.find('<', to) - to)});
  }
  return rows;
}

TEST(CheckReportHtml, ACellLinksToItsFlowsOneAfterAnother)
{
  // In report order the pair worker1 -> master1 is split by worker2 -> master1.
  CheckReport report;
  report.cluster = "c";
  for (const auto* purpose : {"kubelet", "apiserver"}) {
    for (const auto* from : {"worker1", "worker2"}) {
      auto r = result(from, "master1", Verdict::fail, purpose);
      r.failures.push_back({PortRange{10250, 10250}, "filtered", "dropped-by-destination-firewall", "x"});
      report.results.push_back(r);
      ++report.failed;
    }
  }
  report.results.push_back(result("worker1", "master1", Verdict::pass, "etcd"));
  ++report.passed;
  auto html = render_check(report, CheckFormat::html);
  auto cell = html.find("data-from=\"worker1\" data-to=\"master1\"");
  ASSERT_NE(cell, std::string::npos);
  auto href = html.substr(html.find("href=\"#", cell) + 7);
  href = href.substr(0, href.find('"'));
  auto rows = row_pairs(html.substr(html.rfind("<tr class=", html.find("id=\"" + href + "\""))));
  ASSERT_GE(rows.size(), 3u) << html;
  using Pair = std::pair<std::string, std::string>;
  EXPECT_EQ(rows[0], Pair("worker1", "master1"));
  EXPECT_EQ(rows[1], Pair("worker1", "master1")) << "the pair's two failures follow the link, one after the other";
  EXPECT_EQ(rows[2], Pair("worker2", "master1"));
}

TEST(CheckReportHtml, EveryLinkLandsOnThePageAndNothingIsFetched)
{
  auto report = planted_report();
  report.egress.push_back({"master1", "", {}});
  for (const auto& html : {render_check(report, CheckFormat::html), render_check(sample_report(), CheckFormat::html)}) {
    auto ids = ids_of(html);
    std::size_t links = 0;
    for (auto at = html.find("href=\""); at != std::string::npos; at = html.find("href=\"", at + 1), ++links) {
      auto target = html.substr(at + 6, html.find('"', at + 6) - at - 6);
      ASSERT_TRUE(target.starts_with("#")) << "a link off the page: " << target;
      EXPECT_NE(std::find(ids.begin(), ids.end(), target.substr(1)), ids.end()) << "no element " << target;
    }
    EXPECT_GT(links, 0u);
    for (const auto* fetches : {"src=", "url(", "@import", "<link", "<script", "<iframe", "<object", "<embed"}) {
      EXPECT_EQ(html.find(fetches), std::string::npos) << fetches;
    }
  }
}

TEST(CheckReportHtml, ALargeClusterOpensOnRoleByRole)
{
  auto html = render_check(planted_report(), CheckFormat::html);
  EXPECT_NE(html.find("<details id=\"node-matrix\" open>"), std::string::npos) << "6 nodes: node x node";
  EXPECT_NE(html.find("<details id=\"role-matrix\">"), std::string::npos);
  CheckReport large;
  large.cluster = "large";
  for (int i = 0; i < 30; ++i) {
    auto r = result(fmt::format("worker{}", i), "master1", Verdict::pass, "kubelet");
    large.results.push_back(r);
    ++large.passed;
  }
  html = render_check(large, CheckFormat::html);
  EXPECT_NE(html.find("<details id=\"node-matrix\">"), std::string::npos) << "31 nodes: node x node folded";
  EXPECT_NE(html.find("<details id=\"role-matrix\" open>"), std::string::npos);
  auto roles = html.substr(html.find("<details id=\"role-matrix\""));
  roles = roles.substr(0, roles.find("</details>"));
  EXPECT_EQ(count(roles, "<td class=\"cell "), 1u) << "worker -> master";
  EXPECT_NE(roles.find("title=\"worker → master: 30 passed, 0 failed, 0 skipped\""), std::string::npos) << roles;
  // Past 200 nodes, node x node is left out: its cells would outweigh the page.
  for (int i = 30; i < 250; ++i) large.results.push_back(result(fmt::format("worker{}", i), "master1", Verdict::pass, "kubelet"));
  html = render_check(large, CheckFormat::html);
  EXPECT_EQ(html.find("<details id=\"node-matrix\""), std::string::npos);
  EXPECT_NE(html.find("Node × node is left out for 251 nodes (more than 200)"), std::string::npos);
  EXPECT_NE(html.find("<details id=\"role-matrix\" open>"), std::string::npos);
  EXPECT_LT(html.size(), 200'000u) << "251 flows";
}

TEST(CheckReportHtml, HasEgressAndUntestedSectionsOnlyWhenThereIsSomething)
{
  auto report = sample_report();
  auto html = render_check(report, CheckFormat::html);
  EXPECT_EQ(html.find("id=\"egress\""), std::string::npos);
  EXPECT_EQ(html.find("id=\"untested\""), std::string::npos) << "nothing skipped";
  EXPECT_NE(html.find("<h2 id=\"failures\">"), std::string::npos);
  EgressResult denied;
  denied.target.host = "registry.k8s.io";
  denied.verdict = EgressVerdict::proxy_denied;
  denied.proxy = "proxy:3128";
  denied.detail = "HTTP/1.1 403 Forbidden";
  EgressResult ok;
  ok.target.host = "pkgs.k8s.io";
  ok.verdict = EgressVerdict::ok;
  report.egress.push_back({"master1", "", {denied, ok}});
  report.egress.push_back({"worker1", "connection refused", {}});
  html = render_check(report, CheckFormat::html);
  auto egress = html.substr(html.find("<h2 id=\"egress\">"));
  egress = egress.substr(0, egress.find("</p>"));
  EXPECT_NE(egress.find("<td>registry.k8s.io</td><td>443</td><td>proxy:3128</td><td>HTTP/1.1 403 Forbidden</td>"),
            std::string::npos)
    << egress;
  EXPECT_NE(egress.find("connection refused"), std::string::npos);
  EXPECT_EQ(egress.find("pkgs.k8s.io"), std::string::npos) << "only what failed is listed";
  EXPECT_NE(egress.find("1 host check(s) ok on 2 node(s)"), std::string::npos);
}


TEST(CheckReport, ShowsEachNodesPreflightWhenItRan)
{
  auto report = sample_report();
  for (auto format : {CheckFormat::table, CheckFormat::html, CheckFormat::json}) {
    EXPECT_EQ(render_check(report, format).find("reflight"), std::string::npos) << "none without --preflight";
  }
  NodePreflight master1;
  master1.node = "master1";
  master1.json = R"({"node": "master1", "summary": {"passed": 14, "failed": 1, "warnings": 1, "skipped": 0}})";
  master1.passed = 14;
  master1.failed = 1;
  master1.warnings = 1;
  master1.failures = {"kernel br_netfilter: the module <is not> loaded"};
  NodePreflight worker1;
  worker1.node = "worker1";
  worker1.error = "ssh: connect to host 10.0.0.21 port 22: Connection refused";
  report.preflight = {master1, worker1};

  auto table = render_check(report, CheckFormat::table);
  EXPECT_NE(table.find("\nPreflight (each node, before its agent)\n"
                       "  master1: 14 passed, 1 failed, 1 warning\n"
                       "    kernel br_netfilter: the module <is not> loaded\n"
                       "  worker1: not run: ssh: connect to host 10.0.0.21 port 22: Connection refused\n"),
            std::string::npos)
    << table;
  EXPECT_TRUE(table.starts_with("FAIL prod<1>: 2 passed, 1 failed")) << "preflight is no part of the verdict";

  auto html = render_check(report, CheckFormat::html);
  auto section = html.substr(html.find("<h2 id=\"preflight\">"));
  section = section.substr(0, section.find("</table>"));
  EXPECT_NE(section.find("<tr><td>master1</td><td>14</td><td class=\"cell fail\">1</td><td>1</td>"
                         "<td><ul><li>kernel br_netfilter: the module &lt;is not&gt; loaded</li></ul></td></tr>"),
            std::string::npos)
    << section;
  EXPECT_NE(section.find("<td>worker1</td><td></td><td class=\"cell fail\">not run</td>"), std::string::npos) << section;

  auto json = nlohmann::json::parse(render_check(report, CheckFormat::json));
  EXPECT_EQ(json["preflight"]["master1"]["summary"]["passed"], 14);
  EXPECT_EQ(json["preflight"]["worker1"]["error"], worker1.error);
  EXPECT_EQ(json["status"], "fail");
}


} // namespace
} // namespace portmatrix
