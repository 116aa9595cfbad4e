// Check reports show who answers on a port held by a real service: the JSON
// result's `answered_by`, the table's detail. Flows without it have no key.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "report/check_report.hpp"

namespace portmatrix {
namespace {

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

TEST(CheckReport, TableShowsWhoAnswered)
{
  auto table = render_check(report_with_service(), CheckFormat::table);
  EXPECT_NE(table.find("answered by etcd 3.4.23 (cluster version 3.4.0)"), std::string::npos) << table;
  EXPECT_EQ(table.find("answered by", table.find("master3")), std::string::npos) << table;
}

} // namespace
} // namespace portmatrix
