// One egress result as JSON, the same in `egress --format json`, in the
// agent's reply to check --egress and in check's report.
#pragma once

#include <nlohmann/json.hpp>

#include "egress/runner.hpp"

namespace portmatrix {

nlohmann::json result_json(const EgressResult& result);

} // namespace portmatrix
