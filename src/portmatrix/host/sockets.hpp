// This host's sockets and the processes that hold them, read from /proc
// (/proc/net/{tcp,udp}{,6} and /proc/PID/fd). Every function takes the /proc
// directory to read, so tests can point it at fixture files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "model/types.hpp"

namespace portmatrix {

// One row of a /proc/net socket table.
struct SocketEntry
{
  Protocol protocol = Protocol::tcp;
  std::string local_address; // "10.0.0.1", "::", ...
  std::uint16_t port = 0;
  bool listening = false; // TCP in LISTEN; UDP sockets are always "listening"
  std::uint64_t inode = 0;
};

// Parses the text of one /proc/net/{tcp,udp}{,6} table (header line first).
// Malformed lines are skipped; sockets with inode 0 (time-wait) too.
std::vector<SocketEntry> parse_socket_table(std::string_view text, Protocol protocol);

// Every TCP and UDP socket of the current network namespace, IPv4 and IPv6,
// from `proc` (normally "/proc"). Missing tables read as empty.
std::vector<SocketEntry> read_sockets(const std::filesystem::path& proc = "/proc");

// The pid holding each of `inodes`, from the "socket:[INODE]" links in
// `proc`/*/fd; one pass, stops when all are found. Processes we may not look
// into are skipped, so an inode can stay without owner.
std::unordered_map<std::uint64_t, int> find_inode_owners(const std::unordered_set<std::uint64_t>& inodes,
                                                         const std::filesystem::path& proc = "/proc");

struct ProcessInfo
{
  int pid = 0;
  std::string name;    // `proc`/PID/comm
  std::string command; // `proc`/PID/cmdline, arguments joined by spaces (may be empty)
};
ProcessInfo process_info(int pid, const std::filesystem::path& proc = "/proc");

// The process holding each of `ports` (TCP: the listener, else any socket
// bound to it; UDP: any socket), in one pass over the socket tables and one
// over `proc`/*/fd. nullopt where the port is free or its owner not visible.
using PortKey = std::pair<Protocol, std::uint16_t>;
std::vector<std::optional<ProcessInfo>> find_port_owners(const std::vector<PortKey>& ports,
                                                         const std::filesystem::path& proc = "/proc");

} // namespace portmatrix
