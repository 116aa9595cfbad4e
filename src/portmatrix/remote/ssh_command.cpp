// Argument vectors for OpenSSH's ssh. Options the inventory gives come first:
// ssh uses the first value it obtains for a keyword, so the user's choice
// beats our defaults (StrictHostKeyChecking=yes, BatchMode=yes). What runs
// on the node is sent as one string that its login shell parses, so every
// word is quoted here, once, by shell_quote.
#include "remote/ssh_command.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

namespace portmatrix {

SshTarget
ssh_target(const Inventory& inventory, const Node& node)
{
  const auto& top = inventory.ssh;
  const auto& own = node.ssh;
  SshTarget target;
  target.node = node.name;
  target.host = own.host.value_or(node.address);
  target.user = own.user ? own.user : top.user;
  target.port = own.port ? own.port : top.port;
  target.identity_file = own.identity_file ? own.identity_file : top.identity_file;
  target.proxy_jump = own.proxy_jump ? own.proxy_jump : top.proxy_jump;
  target.sudo = own.sudo.value_or(top.sudo.value_or(false));
  target.options = top.options;
  target.options.insert(target.options.end(), own.options.begin(), own.options.end());
  return target;
}

std::string
shell_quote(std::string_view text)
{
  bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':' || c == '=' || c == '@' ||
           c == ',' || c == '+';
  });
  if (plain) return std::string(text);
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string
shell_join(const std::vector<std::string>& argv)
{
  std::string out;
  for (const auto& word : argv) out += (out.empty() ? "" : " ") + shell_quote(word);
  return out;
}

SshCommands::SshCommands(SshTarget target, std::string control_path)
  : m_target(std::move(target)), m_control_path(std::move(control_path))
{
}

namespace {

bool
sets(const std::vector<std::string>& options, std::string_view keyword)
{
  return std::any_of(options.begin(), options.end(), [&](const std::string& option) {
    if (option.size() <= keyword.size()) return false;
    char next = option[keyword.size()];
    if (next != '=' && next != ' ' && next != '\t') return false;
    return std::equal(keyword.begin(), keyword.end(), option.begin(), [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    });
  });
}

} // namespace

std::vector<std::string>
SshCommands::common() const
{
  std::vector<std::string> argv{"ssh"};
  for (const auto& option : m_target.options) argv.insert(argv.end(), {"-o", option});
  if (!sets(m_target.options, "StrictHostKeyChecking")) argv.insert(argv.end(), {"-o", "StrictHostKeyChecking=yes"});
  // Never a prompt: standard input carries the token, and nobody answers.
  if (!sets(m_target.options, "BatchMode")) argv.insert(argv.end(), {"-o", "BatchMode=yes"});
  argv.insert(argv.end(), {"-o", "ControlPath=" + m_control_path});
  if (m_target.user) argv.insert(argv.end(), {"-o", "User=" + *m_target.user});
  if (m_target.port) argv.insert(argv.end(), {"-p", std::to_string(*m_target.port)});
  if (m_target.identity_file) argv.insert(argv.end(), {"-i", *m_target.identity_file});
  if (m_target.proxy_jump) {
    if (auto command = jump_command(*m_target.proxy_jump)) argv.insert(argv.end(), {"-o", "ProxyCommand=" + *command});
    else argv.insert(argv.end(), {"-J", *m_target.proxy_jump});
  }
  return argv;
}

std::vector<std::string>
SshCommands::run_new_connection(const std::vector<std::string>& remote) const
{
  auto argv = common();
  std::replace(argv.begin(), argv.end(), "ControlPath=" + m_control_path, std::string("ControlPath=none"));
  if (!sets(m_target.options, "ConnectTimeout")) argv.insert(argv.begin() + 1, {"-o", "ConnectTimeout=10"});
  argv.insert(argv.end(), {"-o", "ControlMaster=no", "-T", "--", m_target.host, shell_join(remote)});
  return argv;
}

std::optional<std::string>
SshCommands::jump_command(const std::string& jump) const
{
  // ssh -J passes none of our -o options nor -i to the bastion's ssh: its
  // host key would be checked against ~/.ssh/known_hosts alone, with the
  // default key. One hop ([user@]host[:port]) is spelled out instead as a
  // ProxyCommand with the same options; several hops stay -J.
  if (jump.find(',') != std::string::npos) return std::nullopt;
  std::string rest = jump;
  std::optional<std::string> user;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    user = rest.substr(0, at);
    rest = rest.substr(at + 1);
  }
  std::string host = rest;
  std::optional<std::string> port;
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = rest.substr(1, close - 1);
    if (rest.size() > close + 1) {
      if (rest[close + 1] != ':') return std::nullopt;
      port = rest.substr(close + 2);
    }
  } else if (std::count(rest.begin(), rest.end(), ':') == 1) {
    host = rest.substr(0, rest.find(':'));
    port = rest.substr(rest.find(':') + 1);
  }
  if (host.empty() || (port && (port->empty() || !std::all_of(port->begin(), port->end(), [](unsigned char c) { return std::isdigit(c) != 0; })))) {
    return std::nullopt;
  }
  std::vector<std::string> argv{"ssh"};
  for (const auto& option : m_target.options) argv.insert(argv.end(), {"-o", option});
  if (!sets(m_target.options, "StrictHostKeyChecking")) argv.insert(argv.end(), {"-o", "StrictHostKeyChecking=yes"});
  if (!sets(m_target.options, "BatchMode")) argv.insert(argv.end(), {"-o", "BatchMode=yes"});
  if (user) argv.insert(argv.end(), {"-o", "User=" + *user});
  if (port) argv.insert(argv.end(), {"-p", *port});
  if (m_target.identity_file) argv.insert(argv.end(), {"-i", *m_target.identity_file});
  argv.insert(argv.end(), {"-W", "[%h]:%p", "--", host});
  // ssh expands %-tokens in a ProxyCommand: the words' own '%' are doubled.
  std::string command;
  for (const auto& word : argv) {
    auto quoted = shell_quote(word);
    if (word != "[%h]:%p") {
      std::string escaped;
      for (char c : quoted) escaped += c == '%' ? std::string("%%") : std::string(1, c);
      quoted = escaped;
    }
    command += (command.empty() ? "" : " ") + quoted;
  }
  return command;
}

std::vector<std::string>
SshCommands::open_master(std::chrono::seconds persist) const
{
  auto argv = common();
  argv.insert(argv.end(), {"-o", "ControlMaster=yes", "-o", fmt::format("ControlPersist={}", persist.count()), "-N",
                           "-f", "--", m_target.host});
  return argv;
}

std::vector<std::string>
SshCommands::run(const std::vector<std::string>& remote) const
{
  auto argv = common();
  argv.insert(argv.end(), {"-o", "ControlMaster=no", "-T", "--", m_target.host, shell_join(remote)});
  return argv;
}

std::vector<std::string>
SshCommands::run_privileged(const std::vector<std::string>& remote) const
{
  if (!m_target.sudo) return run(remote);
  std::vector<std::string> command{"sudo", "-n", "--"};
  command.insert(command.end(), remote.begin(), remote.end());
  return run(command);
}

std::vector<std::string>
SshCommands::close_master() const
{
  auto argv = common();
  argv.insert(argv.end(), {"-O", "exit", "--", m_target.host});
  return argv;
}

std::string_view
classify_failure(std::string_view output)
{
  auto says = [&](std::string_view text) { return output.find(text) != std::string_view::npos; };
  if (says("Host key verification failed") || says("REMOTE HOST IDENTIFICATION HAS CHANGED") ||
      says("host key is known") || says("No matching host key")) {
    return "host key";
  }
  if (says("Permission denied (") || says("Too many authentication failures")) return "auth";
  if (says("sudo: a password is required") || says("sudo: a terminal is required") || says("not in the sudoers") ||
      says("may not run sudo") || says("sudo: not found") || says("sudo: command not found")) {
    return "sudo password";
  }
  if (says("No space left on device") || says("Disk quota exceeded")) return "disk full";
  if (says("Exec format error") || says("cannot execute") || says("error while loading shared libraries") ||
      says("GLIBC_") || says("Permission denied") || says(": not found")) {
    return "binary will not run";
  }
  if (says("Connection refused") || says("Connection timed out") || says("No route to host") ||
      says("Network is unreachable") || says("Could not resolve hostname") || says("Connection closed by") ||
      says("Connection reset") || says("kex_exchange_identification") || says("connect to host")) {
    return "unreachable";
  }
  return "failed";
}

std::string
failure_reason(std::string_view step, std::string_view output, int status)
{
  std::string words;
  std::size_t start = 0;
  while (start < output.size()) {
    auto end = output.find('\n', start);
    auto line = output.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? output.size() : end + 1;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.remove_suffix(1);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
    // ssh's banners ("@@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@@") say what the last lines say.
    if (line.empty() || line.starts_with("Warning: Permanently added") || line.front() == '@') continue;
    words += (words.empty() ? "" : "; ") + std::string(line);
  }
  // Long output ends with the conclusion ("Host key verification failed."): keep the end.
  if (words.size() > 300) words = "..." + words.substr(words.size() - 297);
  if (words.empty()) words = status < 0 ? "could not be started" : fmt::format("exit status {}", status);
  return fmt::format("{}: {}: {}", step, classify_failure(output), words);
}

} // namespace portmatrix
