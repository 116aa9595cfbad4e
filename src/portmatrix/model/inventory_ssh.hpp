// The inventory's `ssh` section (top level and per node): read and validated
// by the inventory's reader.
#pragma once

#include <yaml-cpp/yaml.h>

#include "model/inventory.hpp"
#include "model/yaml_reader.hpp"

namespace portmatrix {

enum class SshScope { inventory, node };

// Reads `section` into `out`, reporting every bad key or value at its
// position. `host` is accepted only in a node's section.
void read_ssh_section(YamlReader& reader, const YAML::Node& section, SshScope scope, SshSettings& out);

} // namespace portmatrix
