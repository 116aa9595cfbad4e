// The check's public side (check.hpp): verdict names, exit status, progress
// text, and run_check, which hands the plan to the coordinator
// (coordinator.hpp).

#include "check/check.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "check/coordinator.hpp"
#include "util/thousands.hpp"

namespace portmatrix {

std::string_view
to_string(Verdict verdict)
{
  switch (verdict) {
  case Verdict::pass: return "pass";
  case Verdict::fail: return "fail";
  case Verdict::skip: return "skip";
  }
  return "?";
}

bool
NodeEgress::ok() const
{
  return error.empty() &&
         std::all_of(results.begin(), results.end(), [](const EgressResult& r) { return r.verdict == EgressVerdict::ok; });
}

std::string
to_text(const CheckProgress& progress)
{
  std::string rate;
  if (progress.unit == "probes" && progress.round_elapsed.count() > 0) {
    rate = fmt::format(", {}/s", with_thousands(progress.done * 1000 / std::uint64_t(progress.round_elapsed.count())));
  }
  return fmt::format("{} round: {}/{} {}{}, {:.1f} s", progress.round, with_thousands(progress.done),
                     with_thousands(progress.total), progress.unit, rate, progress.elapsed.count() / 1000.0);
}

int
exit_status(const CheckReport& report)
{
  bool egress_ok = std::all_of(report.egress.begin(), report.egress.end(), [](const NodeEgress& n) { return n.ok(); });
  bool untested_ok = true; // and no warning (a pair above its round-trip bound)
  switch (report.untested_policy) {
  case UntestedPolicy::warn: break;
  case UntestedPolicy::fail: untested_ok = report.untested.empty() && report.warnings.empty(); break;
  }
  bool evaluation_ok = std::all_of(report.evaluation.begin(), report.evaluation.end(), [](const NodeEvaluation& n) {
    return n.complete() && n.reply.failed == 0 && n.reply.unknown == 0;
  });
  return report.failed == 0 && report.skipped == 0 && egress_ok && untested_ok && evaluation_ok ? 0 : 1;
}

Expected<CheckReport, std::string>
run_check(const Plan& plan, const Token& token, const CheckOptions& options)
{
  if (plan.inventory.nodes.empty()) return unexpected(std::string("the inventory has no nodes"));
  checking::Coordinator coordinator(plan, token, options);
  return coordinator.run();
}

} // namespace portmatrix
