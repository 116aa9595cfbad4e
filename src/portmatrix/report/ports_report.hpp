// Renders the requirement matrix (and, with an inventory, its flows) and
// profile differences for people (table, markdown) and programs (json, csv).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "plan/diff.hpp"
#include "plan/plan.hpp"

namespace portmatrix {

enum class PortsFormat { table, markdown, json, csv };
std::optional<PortsFormat> parse_ports_format(std::string_view text);

// How the flows of an inventory are shown: every node pair (DESIGN.md's
// contract; O(nodes^2) lines), or one group per requirement (O(nodes)).
enum class FlowsView { pairs, groups };
std::optional<FlowsView> parse_flows_view(std::string_view text);

// `plan` adds the concrete flows (json: "flows", or "flow_groups"; table and
// markdown: a flows section; csv: the flows instead of the requirements). It
// may be null. The report is written to `out` as it is made: the pairs are
// visited one at a time (Plan::for_each_flow), never held, so memory stays
// O(nodes) however many pairs there are. Stream errors are `out`'s state.
void write_ports(std::ostream& out, const Matrix& matrix, const Plan* plan, PortsFormat format,
                 FlowsView view = FlowsView::pairs);
// The same report as one string (small inventories, tests).
std::string render_ports(const Matrix& matrix, const Plan* plan, PortsFormat format, FlowsView view = FlowsView::pairs);

// Table, markdown or json; csv is not offered for diffs.
std::string render_diff(const ProfileDiff& diff, PortsFormat format);

} // namespace portmatrix
