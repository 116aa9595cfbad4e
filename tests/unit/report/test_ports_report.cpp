// The ports report with an inventory: the streamed flows are what the plan
// holds, the JSON is exactly nlohmann's layout, and the groups add up.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../plan/demo.hpp"
#include "report/ports_report.hpp"

namespace portmatrix {
namespace {

using testing::demo_plan;
using testing::generated_inventory;
using testing::plan_for;

} // namespace

TEST(PortsReport, JsonFlowsAreThePlansFlowsInNlohmannsLayout)
{
  auto plan = demo_plan();
  auto text = render_ports(plan.matrix, &plan, PortsFormat::json);
  auto json = nlohmann::json::parse(text);
  EXPECT_EQ(json.dump(2) + "\n", text); // spliced, yet byte for byte what dump() writes
  auto flows = plan.flows();
  ASSERT_EQ(json["flows"].size(), flows.size());
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const auto& f = flows[i];
    const auto& j = json["flows"][i];
    EXPECT_EQ(j["from"], plan.inventory.nodes[f.from].name);
    EXPECT_EQ(j["to"], plan.flow_target(f));
    EXPECT_EQ(j["to_address"], plan.flow_address(f));
    EXPECT_EQ(j["port_min"], f.range.min);
    EXPECT_EQ(j["port_max"], f.range.max);
    EXPECT_EQ(j["purpose"], f.purpose);
  }
  EXPECT_FALSE(json.contains("flow_groups"));
}

TEST(PortsReport, JsonWithoutFlowsIsAnEmptyArray)
{
  auto plan = plan_for("nodes:\n  - {name: m1, address: 10.0.0.1, roles: [master]}\n");
  auto text = render_ports(plan.matrix, &plan, PortsFormat::json);
  auto json = nlohmann::json::parse(text);
  EXPECT_EQ(json.dump(2) + "\n", text);
  EXPECT_TRUE(json["flows"].empty());
}

TEST(PortsReport, GroupsAddUpToThePairsInEveryFormat)
{
  auto plan = plan_for(generated_inventory(40));
  const auto pairs = plan.flows().size();
  auto json = nlohmann::json::parse(render_ports(plan.matrix, &plan, PortsFormat::json, FlowsView::groups));
  ASSERT_FALSE(json.contains("flows"));
  std::size_t total = 0;
  for (const auto& group : json["flow_groups"]) {
    total += group["flows"].get<std::size_t>();
    EXPECT_TRUE(group["to"] == "vip" || group["to"].is_array());
  }
  EXPECT_EQ(total, pairs);
  std::size_t active = 0;
  for (const auto& r : plan.matrix.profile.requirements) active += plan.matrix.active(r);
  EXPECT_EQ(json["flow_groups"].size(), active);

  auto heading = fmt::format("Flow groups ({} requirements, {} flows)", active, pairs);
  EXPECT_NE(render_ports(plan.matrix, &plan, PortsFormat::table, FlowsView::groups).find(heading), std::string::npos);
  EXPECT_NE(render_ports(plan.matrix, &plan, PortsFormat::markdown, FlowsView::groups).find("## " + heading),
            std::string::npos);
  auto table = render_ports(plan.matrix, &plan, PortsFormat::table, FlowsView::groups);
  EXPECT_NE(table.find("n5, n6, +"), std::string::npos); // the first names, then a count

  auto csv = render_ports(plan.matrix, &plan, PortsFormat::csv, FlowsView::groups);
  std::size_t lines = std::count(csv.begin(), csv.end(), '\n');
  EXPECT_EQ(lines, active + 1);
  EXPECT_EQ(csv.rfind("from,to,protocol,port_min,port_max,port_name,purpose,expect,flows\n", 0), 0u);
}

TEST(PortsReport, PairsTableCountsWhatItLists)
{
  auto plan = demo_plan();
  const auto pairs = plan.flows().size();
  for (auto format : {PortsFormat::table, PortsFormat::markdown}) {
    auto text = render_ports(plan.matrix, &plan, format);
    auto at = text.find(fmt::format("Flows ({})\n", pairs));
    ASSERT_NE(at, std::string::npos);
    // header (+ markdown rule) and one line per pair, to the end
    std::size_t lines = std::count(text.begin() + long(at), text.end(), '\n');
    EXPECT_EQ(lines, 1 + (format == PortsFormat::markdown ? 3 : 1) + pairs);
  }
  auto csv = render_ports(plan.matrix, &plan, PortsFormat::csv);
  EXPECT_EQ(std::size_t(std::count(csv.begin(), csv.end(), '\n')), pairs + 1);
}

} // namespace portmatrix
