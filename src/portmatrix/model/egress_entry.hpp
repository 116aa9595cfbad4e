// Reading one egress entry (and a `when` condition) from YAML, shared by profiles (`egress:`) and
// inventories (`egress: {add: [...]}`), so both accept the same shape and
// report the same positioned errors.
#pragma once

#include <optional>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "model/profile.hpp"
#include "model/yaml_reader.hpp"

namespace portmatrix {

// Which keys an entry may have: a profile entry may also carry `when`,
// `reason` and `remove`; an inventory's added host only the host itself.
enum class EgressEntryKind { profile, inventory };

// Reads {host, serves, ports, purpose[, when, reason]}. Ports are numbers or
// "PORT/http" / "PORT/https"; a bare 80 is plain HTTP, any other bare port
// TLS; none given means 443 (an empty list is an error). Errors go to `reader`; nullopt when unusable.
std::optional<EgressHost> read_egress_host(YamlReader& reader, const YAML::Node& item, EgressEntryKind kind);

// Reads a requirement's or an egress host's `when: {option: value, ...}`:
// every option must have its value. Reports and returns none unless it names
// at least one.
std::vector<Condition> read_conditions(YamlReader& reader, const YAML::Node& when);

// True for a name a resolver can look up, or a wildcard "*.name" when
// `wildcard_allowed`: at most 253 characters of dot-separated labels, each
// 1-63 letters, digits and '-', not starting or ending with '-' (RFC 1123).
bool valid_egress_name(std::string_view name, bool wildcard_allowed);

// What valid_egress_name() asks, for messages: " (dot-separated labels ...)".
extern const std::string_view k_host_name_rule;

} // namespace portmatrix
