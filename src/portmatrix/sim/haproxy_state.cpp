#include "sim/haproxy_state.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "net/fd.hpp"

namespace portmatrix {

namespace {

std::vector<std::string>
split_csv(const std::string& line)
{
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string field; std::getline(in, field, ',');) fields.push_back(field);
  return fields;
}

} // namespace

bool
all_servers_up(const std::string& show_stat, std::string& state)
{
  std::stringstream in(show_stat);
  std::string line;
  std::getline(in, line);
  auto head = split_csv(line.substr(std::min(line.find_first_not_of("# "), line.size())));
  std::map<std::string, std::size_t> column;
  for (std::size_t i = 0; i < head.size(); ++i) column[head[i]] = i;
  for (const auto* name : {"pxname", "svname", "status", "check_status"}) {
    if (!column.count(name)) {
      state = fmt::format("haproxy's `show stat` has no {} column", name);
      return false;
    }
  }
  std::size_t servers = 0, up = 0;
  std::string seen;
  while (std::getline(in, line)) {
    auto row = split_csv(line);
    if (row.size() < head.size()) continue;
    auto field = [&](const char* name) { return row[column[name]]; };
    if (field("svname") == "FRONTEND" || field("svname") == "BACKEND") continue;
    ++servers;
    auto check = field("check_status");
    up += field("status") == "UP" && (check == "L4OK" || check == "L6OK" || check == "L7OK");
    seen += fmt::format("{}{}/{} {} {}", seen.empty() ? "" : "; ", field("pxname"), field("svname"), field("status"),
                        check);
  }
  state = fmt::format("{} of {} servers up", up, servers) + (up == servers ? "" : ": " + seen);
  return servers > 0 && up == servers;
}

bool
haproxy_servers_up(const std::string& socket_path, std::string& state)
{
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(address.sun_path)) {
    state = "the stats socket's path is too long: " + socket_path;
    return false;
  }
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    state = fmt::format("cannot reach haproxy's stats socket {}: {}", socket_path, std::strerror(errno));
    return false;
  }
  timeval timeout{2, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const std::string request = "show stat\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    state = fmt::format("cannot ask haproxy's stats socket: {}", std::strerror(errno));
    return false;
  }
  std::string answer;
  char buffer[16384];
  for (ssize_t n; (n = ::recv(fd.get(), buffer, sizeof(buffer), 0)) > 0;) answer.append(buffer, n);
  return all_servers_up(answer, state);
}

} // namespace portmatrix
