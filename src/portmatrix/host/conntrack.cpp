#include "host/conntrack.hpp"

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <string>
#include <vector>

#include "net/fd.hpp"

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

bool
reap_expired_conntrack_entries()
{
  Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!fd) return false;
  timeval wait{2, 0};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait) != 0) return false;
  struct Attribute
  {
    nlattr header;
    std::uint32_t value; // network order
  };
  struct
  {
    nlmsghdr header;
    nfgenmsg family;
    Attribute mark;
    Attribute mask;
  } request{};
  constexpr std::uint32_t k_sequence = 1;
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = k_sequence;
  request.family = {AF_UNSPEC, NFNETLINK_V0, 0};
  // (mark & 0) != 1 for every entry: nothing matches, nothing is printed.
  request.mark = {{sizeof(Attribute), CTA_MARK}, htonl(1)};
  request.mask = {{sizeof(Attribute), CTA_MARK_MASK}, htonl(0)};
  if (::send(fd.get(), &request, sizeof request, 0) != ssize_t(sizeof request)) return false;
  std::vector<char> buffer(65536); // a dump's whole part (a kernel that ignores the filter sends entries)
  for (;;) {
    auto length = ::recv(fd.get(), buffer.data(), buffer.size(), 0);
    if (length <= 0) return false; // an error, or no answer in time
    auto left = int(length);
    for (auto* message = reinterpret_cast<nlmsghdr*>(buffer.data()); NLMSG_OK(message, left);
         message = NLMSG_NEXT(message, left)) {
      if (message->nlmsg_seq != k_sequence) continue;
      if (message->nlmsg_type == NLMSG_DONE) return true;
      if (message->nlmsg_type == NLMSG_ERROR && static_cast<nlmsgerr*>(NLMSG_DATA(message))->error != 0) return false;
    }
  }
}

ConntrackGauge::ConntrackGauge(double ceiling, std::filesystem::path proc, Reaper reap)
  : m_ceiling(ceiling), m_proc(std::move(proc)), m_reap(std::move(reap))
{
}

std::optional<ConntrackTable>
ConntrackGauge::read()
{
  auto table = read_conntrack_table(m_proc);
  if (!table || double(table->count) < m_ceiling * double(table->max)) return table;
  auto started = std::chrono::steady_clock::now();
  if (started < m_next_walk) return table;
  std::optional<std::uint64_t> live;
  if (m_reap && m_reap()) {
    if (auto reaped = read_conntrack_table(m_proc)) live = reaped->count;
  } else {
    live = count_live_conntrack_entries(m_proc);
  }
  auto finished = std::chrono::steady_clock::now();
  m_next_walk = finished + std::max<std::chrono::steady_clock::duration>(k_min_walk_interval, 10 * (finished - started));
  if (!live) return table;
  ++m_walks;
  table->count = *live;
  return table;
}

} // namespace portmatrix
