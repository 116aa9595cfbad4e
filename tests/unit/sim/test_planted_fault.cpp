// The demo's verdict: a report is "the planted fault" only when exactly the
// flows crossing it fail, at its port, with its diagnosis; and haproxy's
// `show stat` read for "every server up".
#include <gtest/gtest.h>

#include "sim/haproxy_state.hpp"
#include "sim/planted_fault.hpp"

namespace portmatrix {
namespace {

const PlantedFault k_fault{"master2", Protocol::udp, 8472, "dropped-by-destination-firewall"};

FlowResult
result(std::string from, std::string to, Protocol protocol, PortRange range, Verdict verdict,
       std::vector<FlowFailure> failures = {}, Expect expect = Expect::allow)
{
  FlowResult r;
  r.from = std::move(from);
  r.to = std::move(to);
  r.flow.protocol = protocol;
  r.flow.range = range;
  r.flow.expect = expect;
  r.verdict = verdict;
  r.failures = std::move(failures);
  r.diagnosis = r.failures.empty() ? "ok" : r.failures.front().diagnosis;
  return r;
}

FlowResult
dropped(std::string from)
{
  return result(std::move(from), "master2", Protocol::udp, {8472, 8472}, Verdict::fail,
                {{{8472, 8472}, "filtered", "dropped-by-destination-firewall", "reached master2's interface"}});
}

CheckReport
report_of(std::vector<FlowResult> results)
{
  CheckReport report;
  report.results = std::move(results);
  return report;
}

TEST(PlantedFault, ExactlyTheFaultsFlowsFailingIsTheFault)
{
  auto report = report_of({dropped("worker1"), dropped("master1"),
                           result("worker1", "master2", Protocol::tcp, {6443, 6443}, Verdict::pass),
                           result("worker1", "master1", Protocol::udp, {8472, 8472}, Verdict::pass),
                           // A denied flow over the same port is not broken by a drop.
                           result("client1", "master2", Protocol::udp, {8472, 8472}, Verdict::pass, {}, Expect::deny)});
  EXPECT_TRUE(differences(report, k_fault).empty());
  EXPECT_TRUE(crosses(report.results[0], k_fault));
  EXPECT_FALSE(crosses(report.results[2], k_fault));
  EXPECT_FALSE(crosses(report.results[4], k_fault));
}

TEST(PlantedFault, AnotherFailureIsADifference)
{
  auto report = report_of({dropped("worker1"),
                           result("worker1", "master3", Protocol::tcp, {10250, 10250}, Verdict::fail,
                                  {{{10250, 10250}, "filtered", "dropped-by-destination-firewall", ""}})});
  auto found = differences(report, k_fault);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0], "worker1 -> master3 10250/tcp does not cross the planted fault, yet fail: 10250 filtered: "
                      "dropped-by-destination-firewall");
}

TEST(PlantedFault, ASkipIsADifference)
{
  auto skipped = result("worker1", "master1", Protocol::tcp, {6443, 6443}, Verdict::skip);
  skipped.diagnosis = "agent-unreachable";
  auto found = differences(report_of({dropped("worker1"), skipped}), k_fault);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0], "worker1 -> master1 6443/tcp does not cross the planted fault, yet skip (agent-unreachable)");
}

TEST(PlantedFault, TheFaultsFlowsMustFailWithItsDiagnosisAtItsPort)
{
  auto passed = result("worker1", "master2", Protocol::udp, {8472, 8472}, Verdict::pass);
  auto other_word = dropped("worker2");
  other_word.failures[0].diagnosis = "lost-in-network";
  auto wider = result("worker3", "master2", Protocol::udp, {8400, 8500}, Verdict::fail,
                      {{{8400, 8500}, "filtered", "dropped-by-destination-firewall", ""}});
  auto found = differences(report_of({passed, other_word, wider}), k_fault);
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0], "worker1 -> master2 8472/udp crosses the planted fault but is not '8472: "
                      "dropped-by-destination-firewall' (pass (ok))");
  EXPECT_EQ(found[1], "worker2 -> master2 8472/udp crosses the planted fault but is not '8472: "
                      "dropped-by-destination-firewall' (fail: 8472 filtered: lost-in-network)");
  EXPECT_NE(found[2].find("8400-8500 filtered"), std::string::npos) << found[2];
}

TEST(PlantedFault, AReportNoFlowOfWhichCrossesTheFaultIsNotTheFault)
{
  auto found = differences(report_of({result("worker1", "master1", Protocol::tcp, {6443, 6443}, Verdict::pass)}), k_fault);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0], "no flow of the report crosses the planted fault (master2 8472/udp)");
}

TEST(HaproxyState, EveryServerUpWithAPassedCheck)
{
  const std::string header = "# pxname,svname,qcur,status,weight,check_status\n";
  std::string state;
  EXPECT_TRUE(all_servers_up(header + "api,FRONTEND,,OPEN,,\napi,master1,0,UP,1,L4OK\napi,master2,0,UP,1,L7OK\n"
                                      "api,BACKEND,0,UP,2,\n",
                             state));
  EXPECT_EQ(state, "2 of 2 servers up");
  EXPECT_FALSE(all_servers_up(header + "api,master1,0,UP,1,L4OK\napi,master2,0,DOWN,1,L4CON\n", state));
  EXPECT_EQ(state, "1 of 2 servers up: api/master1 UP L4OK; api/master2 DOWN L4CON");
  // UP from the start, before its first check passed: not yet.
  EXPECT_FALSE(all_servers_up(header + "api,master1,0,UP,1,INI\n", state));
  EXPECT_FALSE(all_servers_up(header, state)) << "no server at all";
  EXPECT_FALSE(all_servers_up("Unknown command\n", state));
  EXPECT_EQ(state, "haproxy's `show stat` has no pxname column");
}

} // namespace
} // namespace portmatrix
