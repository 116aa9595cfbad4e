// Renders the egress check (table, JSON, JUnit, like the check report) and
// the allowlist a proxy needs (a squid ACL, or a plain domain list), which
// needs no network.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "egress/runner.hpp"
#include "model/profile.hpp"
#include "report/markup.hpp"

namespace portmatrix {

enum class EgressFormat { table, json, junit, squid, domains };
std::optional<EgressFormat> parse_egress_format(std::string_view text);
// squid and domains are allowlists: rendered from the list, nothing checked.
bool is_allowlist(EgressFormat format);

struct EgressReport
{
  std::string cluster;
  std::string proxy_source; // "--proxy", "HTTPS_PROXY", or empty: direct
  std::vector<EgressResult> results;
  std::vector<std::string> unchecked; // wildcard entries that name no concrete host
  std::chrono::milliseconds duration{0};

  std::size_t failed() const;
};

std::string render_egress(const EgressReport& report, EgressFormat format, Colour colour = Colour::off);

// The allowlist for `hosts` (resolved for the cluster): squid `acl ...
// dstdomain` lines with wildcards as ".domain", or one domain per line.
// `label` names what it is for in the squid comment ("cluster prod").
std::string render_allowlist(const std::vector<EgressHost>& hosts, EgressFormat format, std::string_view label);

} // namespace portmatrix
