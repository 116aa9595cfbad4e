// Which protocols the live check proves: its prober (probe/) has a probe for
// them. Here, in model/, so that what reads only a plan (plan/, report/) can
// say what check cannot prove without depending on the prober.
#pragma once

#include "model/types.hpp"

namespace portmatrix {

// tcp, udp and ipip (IP-in-IP: IPv4 only, on raw sockets, so the agents need
// CAP_NET_RAW). vrrp and esp have no probe: check cannot prove them.
bool has_probe(Protocol protocol);

} // namespace portmatrix
