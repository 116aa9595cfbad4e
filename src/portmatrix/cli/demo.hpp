// `portmatrix demo`: the guide's topology on a simulated cluster.
#pragma once

#include <string>

namespace portmatrix {

// As root: builds the topology in network namespaces, applies the generated
// firewalls, runs haproxy and the agents, breaks one thing on purpose, runs
// the check and prints its report, says whether it is exactly the planted
// fault (0) or what differs (1), then removes everything (also on Ctrl-C).
// Without root: says what it needs and checks the same flows on loopback.
// `out_dir`, when set, receives every artefact: the inventory, each node's
// rules, haproxy.cfg, keepalived.conf per load-balancer node, and the check's
// report as report.json and report.html. DemoRun::files_only writes the
// artefacts of the guide's topology there without running anything.
enum class DemoRun { live, files_only };
int run_demo(const std::string& out_dir, DemoRun run = DemoRun::live);

} // namespace portmatrix
