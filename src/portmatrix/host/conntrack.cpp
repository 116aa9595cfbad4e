#include "host/conntrack.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <string>

namespace portmatrix {
namespace {

std::optional<std::uint64_t>
read_count(const std::filesystem::path& path)
{
  std::ifstream file(path);
  std::string text;
  if (!std::getline(file, text)) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end == text.data() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

} // namespace

std::optional<ConntrackTable>
read_conntrack_table(const std::filesystem::path& proc)
{
  auto folder = proc / "sys/net/netfilter";
  auto count = read_count(folder / "nf_conntrack_count");
  auto max = read_count(folder / "nf_conntrack_max");
  if (!count || !max) return std::nullopt;
  return ConntrackTable{*count, *max};
}

std::optional<std::uint64_t>
count_live_conntrack_entries(const std::filesystem::path& proc)
{
  std::ifstream file(proc / "net/nf_conntrack", std::ios::binary);
  if (!file) return std::nullopt;
  std::array<char, 65536> buffer;
  std::uint64_t lines = 0;
  while (file.read(buffer.data(), buffer.size()) || file.gcount() > 0) {
    lines += std::uint64_t(std::count(buffer.data(), buffer.data() + file.gcount(), '\n'));
  }
  if (file.bad()) return std::nullopt;
  return lines;
}

ConntrackGauge::ConntrackGauge(double ceiling, std::filesystem::path proc) : m_ceiling(ceiling), m_proc(std::move(proc))
{
}

std::optional<ConntrackTable>
ConntrackGauge::read()
{
  auto table = read_conntrack_table(m_proc);
  if (!table || double(table->count) < m_ceiling * double(table->max)) return table;
  auto started = std::chrono::steady_clock::now();
  if (started < m_next_walk) return table;
  auto live = count_live_conntrack_entries(m_proc);
  auto finished = std::chrono::steady_clock::now();
  m_next_walk = finished + std::max<std::chrono::steady_clock::duration>(k_min_walk_interval, 10 * (finished - started));
  if (!live) return table;
  ++m_walks;
  table->count = *live;
  return table;
}

} // namespace portmatrix
