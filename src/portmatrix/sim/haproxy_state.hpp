// Whether haproxy's servers are up, asked on its stats socket (`show stat`),
// so the demo waits for the real state instead of a fixed time.
#pragma once

#include <string>

namespace portmatrix {

// Parses `show stat` CSV: true when there is at least one server and every
// server is UP with its last health check passed (L4OK, L6OK or L7OK).
// `state` says what was seen ("3 of 3 servers up", or each server's state).
bool all_servers_up(const std::string& show_stat, std::string& state);

// Asks the stats socket at `socket_path` (a `stats socket` line of haproxy's
// global section); false, with `state` saying why, when it cannot.
bool haproxy_servers_up(const std::string& socket_path, std::string& state);

} // namespace portmatrix
