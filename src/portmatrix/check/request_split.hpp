// A probe request larger than an agent accepts (k_max_request_bytes: a
// master of 1,000 nodes has ~10,000 targets, ~1.2 MB) is sent in parts, each
// within the bound; the parts' replies, joined in order, are the request's.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "agent/messages.hpp"

namespace portmatrix {

// `request` cut into consecutive runs of its targets, each part's message
// (as `encoded_size` measures it) at most `max_bytes`; every part keeps the
// request's other fields. One part when it fits; a target whose part cannot
// fit alone goes alone (the agent refuses it, as it would have refused the
// whole).
std::vector<ProbeRequest> split_probe_request(const ProbeRequest& request, std::size_t max_bytes,
                                              const std::function<std::size_t(const ProbeRequest&)>& encoded_size);

// Appends `part`'s targets (and what it held back) to `whole`.
void join_probe_reply(ProbeReply& whole, ProbeReply part);

} // namespace portmatrix
