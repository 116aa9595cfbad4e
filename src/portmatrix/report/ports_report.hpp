// Renders the requirement matrix (and, with an inventory, its flows) and
// profile differences for people (table, markdown) and programs (json, csv).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "plan/diff.hpp"
#include "plan/plan.hpp"

namespace portmatrix {

enum class PortsFormat { table, markdown, json, csv };
std::optional<PortsFormat> parse_ports_format(std::string_view text);

// `plan` adds the concrete flows (json: "flows"; table and markdown: a flows
// section; csv: the flows instead of the requirements). It may be null.
std::string render_ports(const Matrix& matrix, const Plan* plan, PortsFormat format);

// Table, markdown or json; csv is not offered for diffs.
std::string render_diff(const ProfileDiff& diff, PortsFormat format);

} // namespace portmatrix
