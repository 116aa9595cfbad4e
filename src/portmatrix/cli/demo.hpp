// `portmatrix demo`: the guide's topology on a simulated cluster.
#pragma once

#include <string>

namespace portmatrix {

// As root: builds the topology in network namespaces, applies the generated
// firewalls, runs haproxy and the agents, breaks one thing on purpose, runs
// the check and prints its report, says whether it is exactly the planted
// fault (0) or what differs (1), then removes everything (also on Ctrl-C).
// Without root: says what it needs and checks the same flows on loopback.
// `out_dir`, when set, receives the inventory and generated files.
int run_demo(const std::string& out_dir);

} // namespace portmatrix
