// How full this network namespace's connection-tracking table is: the agent
// keeps a check from filling it on a running node (ProbeOptions::conntrack).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

namespace portmatrix {

struct ConntrackTable
{
  std::uint64_t count = 0; // entries now (this namespace's)
  std::uint64_t max = 0;   // entries at most (the host's)
};

// From `proc`/sys/net/netfilter/nf_conntrack_{count,max} (tests pass fixture
// trees). nullopt when they cannot be read or do not hold a count (no
// conntrack module loaded: there is no table to fill).
std::optional<ConntrackTable> read_conntrack_table(const std::filesystem::path& proc = "/proc");

} // namespace portmatrix
