#include "host/conntrack.hpp"

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

} // namespace portmatrix
