// How full this network namespace's connection-tracking table is: the agent
// keeps a check from filling it on a running node (ProbeOptions::conntrack).
#pragma once

#include <chrono>
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

// This namespace's live entries: the lines of `proc`/net/nf_conntrack, read
// to the end. The walk also takes out of nf_conntrack_count the expired
// entries the kernel's garbage collector has not reached yet (it scans every
// 1-60 s, by the entries' average timeout): the kernel drops each expired
// entry it walks past. nullopt when the file cannot be read (no procfs
// support for conntrack).
std::optional<std::uint64_t> count_live_conntrack_entries(const std::filesystem::path& proc = "/proc");

// The table as a prober holding at `ceiling` (a share of the maximum) must
// see it (ProbeOptions::conntrack). nf_conntrack_count counts an expired
// entry until the garbage collector reaches it, so a prober that trusts it
// holds up to a minute after its own entries expired. At the ceiling the
// gauge counts the live entries instead (count_live_conntrack_entries,
// which takes the expired ones out), at most once in ten times the last
// walk's duration and never twice within k_min_walk_interval: a walk of
// 200,000 live entries costs about 0.35 s of CPU, so walking costs the
// node at most a tenth of a core while its prober is held, and nothing
// while it is not.
class ConntrackGauge
{
public:
  static constexpr std::chrono::milliseconds k_min_walk_interval{1000};

  explicit ConntrackGauge(double ceiling, std::filesystem::path proc = "/proc");
  std::optional<ConntrackTable> read();
  std::uint64_t walks() const { return m_walks; }

private:
  double m_ceiling;
  std::filesystem::path m_proc;
  std::chrono::steady_clock::time_point m_next_walk{};
  std::uint64_t m_walks = 0;
};

} // namespace portmatrix
