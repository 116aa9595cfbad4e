// Sockets and their owners from /proc. A port's owner takes two lookups: the
// socket tables map (protocol, port) to a socket inode, and the "socket:[N]"
// links under /proc/PID/fd map inodes to pids. Both are done once for any
// number of ports, so a 5,536-port range costs the same as a single port.
#include "host/sockets.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace portmatrix {
namespace {

namespace fs = std::filesystem;

constexpr unsigned k_tcp_listen = 0x0A;

struct PortKeyHash
{
  std::size_t operator()(const PortKey& key) const { return (std::size_t(key.first) << 16) | key.second; }
};

std::vector<std::string_view>
split_fields(std::string_view line)
{
  std::vector<std::string_view> fields;
  std::size_t position = 0;
  while (position < line.size()) {
    auto start = line.find_first_not_of(' ', position);
    if (start == std::string_view::npos) break;
    auto end = line.find(' ', start);
    if (end == std::string_view::npos) end = line.size();
    fields.push_back(line.substr(start, end - start));
    position = end;
  }
  return fields;
}

template <typename Number>
std::optional<Number>
parse_number(std::string_view text, int base)
{
  Number value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The kernel prints an address as 32-bit words in host byte order:
// "0100007F" is 127.0.0.1 on a little-endian machine.
std::optional<std::string>
decode_address(std::string_view hex)
{
  if (hex.size() != 8 && hex.size() != 32) return std::nullopt;
  unsigned char bytes[16];
  for (std::size_t word = 0; word < hex.size() / 8; ++word) {
    auto value = parse_number<std::uint32_t>(hex.substr(word * 8, 8), 16);
    if (!value) return std::nullopt;
    std::memcpy(bytes + word * 4, &*value, 4);
  }
  char text[INET6_ADDRSTRLEN];
  int family = hex.size() == 8 ? AF_INET : AF_INET6;
  if (!::inet_ntop(family, bytes, text, sizeof(text))) return std::nullopt;
  return std::string(text);
}

std::string
read_text(const fs::path& path)
{
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::optional<std::uint64_t>
socket_inode_of_link(const fs::path& link)
{
  char target[64];
  auto length = ::readlink(link.c_str(), target, sizeof(target) - 1);
  if (length <= 0) return std::nullopt;
  std::string_view text(target, std::size_t(length));
  constexpr std::string_view k_prefix = "socket:[";
  if (!text.starts_with(k_prefix) || !text.ends_with(']')) return std::nullopt;
  text.remove_prefix(k_prefix.size());
  text.remove_suffix(1);
  return parse_number<std::uint64_t>(text, 10);
}

std::string
trimmed(std::string text)
{
  auto end = text.find_last_not_of(" \t\r\n");
  text.erase(end == std::string::npos ? 0 : end + 1);
  return text;
}

} // namespace

// Lines look like
//   "0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 12345 ..."
// (local address:port in hex, remote, state, queues, timer, retransmits, uid,
// timeout, inode).
std::vector<SocketEntry>
parse_socket_table(std::string_view text, Protocol protocol)
{
  std::vector<SocketEntry> entries;
  bool header = true;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (std::exchange(header, false)) continue;
    auto fields = split_fields(line);
    if (fields.size() < 10) continue;
    auto colon = fields[1].rfind(':');
    if (colon == std::string_view::npos) continue;
    auto address = decode_address(fields[1].substr(0, colon));
    auto port = parse_number<std::uint16_t>(fields[1].substr(colon + 1), 16);
    auto state = parse_number<unsigned>(fields[3], 16);
    auto inode = parse_number<std::uint64_t>(fields[9], 10);
    if (!address || !port || !state || !inode || *inode == 0) continue;
    entries.push_back({protocol, std::move(*address), *port, protocol != Protocol::tcp || *state == k_tcp_listen, *inode});
  }
  return entries;
}

std::vector<SocketEntry>
read_sockets(const fs::path& proc)
{
  std::vector<SocketEntry> all;
  for (auto [name, protocol] : {std::pair{"tcp", Protocol::tcp}, std::pair{"tcp6", Protocol::tcp},
                                std::pair{"udp", Protocol::udp}, std::pair{"udp6", Protocol::udp}}) {
    auto entries = parse_socket_table(read_text(proc / "net" / name), protocol);
    all.insert(all.end(), std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end()));
  }
  return all;
}

std::unordered_map<std::uint64_t, int>
find_inode_owners(const std::unordered_set<std::uint64_t>& inodes, const fs::path& proc)
{
  std::unordered_map<std::uint64_t, int> owners;
  if (inodes.empty()) return owners;
  std::error_code error;
  for (fs::directory_iterator entry(proc, error), end; !error && entry != end; entry.increment(error)) {
    auto pid = parse_number<int>(entry->path().filename().native(), 10);
    if (!pid) continue;
    std::error_code fd_error;
    for (fs::directory_iterator fds(entry->path() / "fd", fd_error); !fd_error && fds != end; fds.increment(fd_error)) {
      auto inode = socket_inode_of_link(fds->path());
      if (inode && inodes.contains(*inode) && owners.try_emplace(*inode, *pid).second
          && owners.size() == inodes.size()) {
        return owners;
      }
    }
  }
  return owners;
}

ProcessInfo
process_info(int pid, const fs::path& proc)
{
  auto directory = proc / std::to_string(pid);
  ProcessInfo info{pid, trimmed(read_text(directory / "comm")), read_text(directory / "cmdline")};
  for (auto& c : info.command) {
    if (c == '\0') c = ' ';
  }
  info.command = trimmed(std::move(info.command));
  return info;
}

std::vector<std::optional<ProcessInfo>>
find_port_owners(const std::vector<PortKey>& ports, const fs::path& proc)
{
  std::unordered_set<PortKey, PortKeyHash> wanted(ports.begin(), ports.end());
  // (protocol, port) -> (inode, listening); a TCP listener wins over a socket merely bound.
  std::unordered_map<PortKey, std::pair<std::uint64_t, bool>, PortKeyHash> port_inodes;
  for (const auto& entry : read_sockets(proc)) {
    PortKey key{entry.protocol, entry.port};
    if (!wanted.contains(key)) continue;
    auto [it, inserted] = port_inodes.try_emplace(key, entry.inode, entry.listening);
    if (!inserted && entry.listening && !it->second.second) it->second = {entry.inode, true};
  }
  std::unordered_set<std::uint64_t> inodes;
  for (const auto& [key, inode] : port_inodes) inodes.insert(inode.first);
  auto pids = find_inode_owners(inodes, proc);

  std::vector<std::optional<ProcessInfo>> owners;
  owners.reserve(ports.size());
  for (const auto& key : ports) {
    auto inode = port_inodes.find(key);
    auto pid = inode == port_inodes.end() ? pids.end() : pids.find(inode->second.first);
    if (pid == pids.end()) {
      owners.emplace_back();
    } else {
      owners.emplace_back(process_info(pid->second, proc));
    }
  }
  return owners;
}

} // namespace portmatrix
