// The `ssh` section. Its values end up as separate arguments of ssh and scp
// (never in a shell), but ssh itself would still read a host or user that
// starts with '-' as an option, and a newline in an -o value as another
// line of configuration: such values are refused here, where they are written.
#include "model/inventory_ssh.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

namespace portmatrix {

namespace {

bool
has_control_or_space(std::string_view text)
{
  return std::any_of(text.begin(), text.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

// A value ssh takes as one word: not empty, no white space or control
// characters, not starting with '-' (ssh would read an option).
std::optional<std::string>
read_word(YamlReader& reader, const YAML::Node& node, std::string_view what)
{
  auto text = reader.string(node, what);
  if (!text) return std::nullopt;
  if (text->empty() || has_control_or_space(*text) || text->front() == '-') {
    reader.error(node, fmt::format("ssh {} '{}' must be one word: not empty, no white space or control characters, "
                                   "not starting with '-'",
                                   what, printable(*text)));
    return std::nullopt;
  }
  return text;
}

// The options portmatrix sets itself for its connection per node.
constexpr std::array k_reserved_options{"controlmaster", "controlpath", "controlpersist"};

void
read_options(YamlReader& reader, const YAML::Node& node, std::vector<std::string>& out)
{
  if (!reader.expect_sequence(node, "ssh options")) return;
  for (const auto& item : node) {
    auto text = reader.string(item, "an ssh option");
    if (!text) continue;
    bool control = std::any_of(text->begin(), text->end(), [](unsigned char c) { return c < ' ' || c == 0x7f; });
    auto key_end = text->find_first_of("= \t");
    std::string key = text->substr(0, key_end);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    if (control || key.empty() || key_end == std::string::npos || !std::all_of(key.begin(), key.end(), [](unsigned char c) { return std::isalnum(c) != 0; })) {
      reader.error(item, fmt::format("ssh option '{}' must read Key=Value (as ssh -o takes it; no control characters)",
                                     printable(*text)));
    } else if (std::find(k_reserved_options.begin(), k_reserved_options.end(), key) != k_reserved_options.end()) {
      reader.error(item, fmt::format("ssh option '{}' is portmatrix's own: it keeps one connection per node in a "
                                     "private directory for the run",
                                     printable(*text)));
    } else {
      out.push_back(*text);
    }
  }
}

} // namespace

void
read_ssh_section(YamlReader& reader, const YAML::Node& section, SshScope scope, SshSettings& out)
{
  bool node = scope == SshScope::node;
  bool ok = node ? reader.check_map(section, "a node's ssh",
                                    {"host", "user", "port", "identity_file", "proxy_jump", "sudo", "options"})
                 : reader.check_map(section, "ssh", {"user", "port", "identity_file", "proxy_jump", "sudo", "options"});
  if (!ok) return;
  if (auto host = section["host"]) out.host = read_word(reader, host, "host");
  if (auto user = section["user"]) out.user = read_word(reader, user, "user");
  if (auto port = section["port"]) {
    auto range = reader.port_range(port, "ssh port");
    if (range && !range->single()) reader.error(port, "ssh port must be a single port");
    else if (range) out.port = range->min;
  }
  if (auto identity = section["identity_file"]) {
    auto text = reader.string(identity, "identity_file");
    bool control = text && std::any_of(text->begin(), text->end(), [](unsigned char c) { return c < ' ' || c == 0x7f; });
    if (text && (text->empty() || control)) {
      reader.error(identity, fmt::format("ssh identity_file '{}' must be a path (no control characters)", printable(*text)));
    } else if (text) {
      out.identity_file = *text;
    }
  }
  if (auto jump = section["proxy_jump"]) out.proxy_jump = read_word(reader, jump, "proxy_jump");
  if (auto sudo = section["sudo"]) out.sudo = reader.boolean(sudo, "ssh sudo");
  if (auto options = section["options"]) read_options(reader, options, out.options);
}

} // namespace portmatrix
