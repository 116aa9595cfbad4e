// The untested requirements of a plan (plan/untested.hpp) as every report
// shows them: JSON's "untested" array (ports --inventory and check) and one
// warning line per cause for tables, markdown and HTML.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan/untested.hpp"

namespace portmatrix {

// [{"code": "no-client-node", "message": "...", "requirements": ["client → master 2379-2380/tcp (etcd)", ...]}]
nlohmann::json untested_json(const std::vector<Untested>& untested);

// "warning: no client node: 7 expect-deny requirements untested; ..." plus
// the requirements, indented; empty when nothing is untested.
std::vector<std::string> untested_lines(const std::vector<Untested>& untested);

} // namespace portmatrix
