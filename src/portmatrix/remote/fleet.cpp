// Fan-out over the nodes. The control sockets are named by the node's
// index, not its name, to stay short.
#include "remote/fleet.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>

#include "crypto/hmac.hpp"

namespace portmatrix {

ControlDirectory::ControlDirectory()
{
  char pattern[] = "/tmp/portmatrix-ssh-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) {
    m_error = fmt::format("cannot make a private directory for ssh's control sockets: {}", std::strerror(errno));
    return;
  }
  m_path = pattern;
}

ControlDirectory::~ControlDirectory()
{
  std::error_code ignored;
  if (!m_path.empty()) std::filesystem::remove_all(m_path, ignored);
}

Fleet::Fleet(Runner& runner, const Inventory& inventory, const RemoteRun& run, const std::string& control_directory,
             int parallel, Progress progress)
  : m_parallel(parallel), m_progress(std::move(progress))
{
  for (std::size_t i = 0; i < inventory.nodes.size(); ++i) {
    SshCommands commands(ssh_target(inventory, inventory.nodes[i]), fmt::format("{}/{}", control_directory, i));
    m_sessions.push_back(std::make_unique<NodeSession>(runner, std::move(commands), run));
  }
}

Fleet::~Fleet()
{
  teardown();
}

void
Fleet::progress(const std::string& message) const
{
  if (m_progress) m_progress(message);
}

namespace {

// A step's live line: "ssh: 5/14 nodes connected, 12.3 nodes/s" (the rate
// since the step began).
std::string
step_line(std::size_t done, std::size_t total, std::string_view step, std::chrono::steady_clock::time_point start)
{
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return fmt::format("ssh: {}/{} nodes {}, {:.1f} nodes/s", done, total, step, seconds > 0 ? done / seconds : 0.0);
}

} // namespace

void
Fleet::connect()
{
  std::atomic<std::size_t> connected{0};
  auto total = m_sessions.size();
  auto start = std::chrono::steady_clock::now();
  progress(fmt::format("ssh: connecting to {} nodes", total));
  for_each_bounded(total, m_parallel, [&](std::size_t i) {
    if (m_sessions[i]->connect()) progress(step_line(++connected, total, "connected", start));
  });
}

void
Fleet::install()
{
  std::atomic<std::size_t> installed{0};
  auto total = m_sessions.size();
  auto start = std::chrono::steady_clock::now();
  each([&](NodeSession& session) {
    if (session.install()) progress(step_line(++installed, total, "installed", start));
  });
}

void
Fleet::each(const std::function<void(NodeSession&)>& work)
{
  for_each_bounded(m_sessions.size(), m_parallel, [&](std::size_t i) {
    if (!m_sessions[i]->failed()) work(*m_sessions[i]);
  });
}

void
Fleet::teardown()
{
  for_each_bounded(m_sessions.size(), m_parallel, [&](std::size_t i) { m_sessions[i]->teardown(); });
}

std::map<std::string, std::string>
Fleet::failures() const
{
  std::map<std::string, std::string> out;
  for (const auto& session : m_sessions) {
    if (session->failed()) out[session->node()] = "ssh: " + session->failure();
  }
  return out;
}

std::string
new_run_id()
{
  return random_hex(4);
}

} // namespace portmatrix
