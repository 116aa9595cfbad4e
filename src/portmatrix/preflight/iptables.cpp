// iptables-save evaluation: the filter table is read into chains of rules
// (argument vectors, quotes removed); a packet walks INPUT. Every option of a
// rule is a match that is yes, no or unknown; see nftables.cpp for how the
// three combine.
#include "preflight/iptables.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace portmatrix {
namespace {

enum class Match { yes, no, unknown };

std::vector<std::string>
split_args(std::string_view line)
{
  std::vector<std::string> args;
  std::string current;
  bool quoted = false;
  bool any = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\\' && quoted && i + 1 < line.size()) {
      current += line[++i];
    } else if (c == '"') {
      quoted = !quoted;
      any = true;
    } else if (c == ' ' && !quoted) {
      if (any) args.push_back(std::move(current));
      current.clear();
      any = false;
    } else {
      current += c;
      any = true;
    }
  }
  if (any) args.push_back(std::move(current));
  return args;
}

std::optional<std::uint32_t>
number(std::string_view text)
{
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "22", "30000:32767", "22,80,30000:32767" -> yes/no; nullopt when not ports.
std::optional<bool>
ports_match(std::string_view list, std::uint32_t port)
{
  bool hit = false;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    auto colon = item.find(':');
    auto first = number(item.substr(0, colon));
    auto last = colon == std::string_view::npos ? first : number(item.substr(colon + 1));
    if (!first || !last) return std::nullopt;
    hit = hit || (*first <= port && port <= *last);
  }
  return hit;
}

void
collect_port_breakpoints(std::string_view list, std::vector<std::uint32_t>& out)
{
  std::string text(list);
  std::replace(text.begin(), text.end(), ',', ' ');
  std::replace(text.begin(), text.end(), ':', ' ');
  for (const auto& item : split_args(text)) {
    if (auto n = number(item); n && *n <= 65535) {
      out.push_back(*n);
      out.push_back(*n + 1);
    }
  }
}

void
parse_save(std::string_view text, IptablesRuleset::Table& table, std::vector<std::uint32_t>& breakpoints)
{
  bool in_filter = false;
  while (!text.empty()) {
    auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.starts_with('*')) {
      in_filter = line == "*filter";
    } else if (!in_filter || line.starts_with('#') || line == "COMMIT") {
      continue;
    } else if (line.starts_with(':')) {
      auto args = split_args(line.substr(1));
      if (!args.empty()) table[args[0]].policy = args.size() > 1 ? args[1] : "-";
    } else if (line.starts_with("-A ")) {
      auto args = split_args(line.substr(3));
      if (args.empty()) continue;
      auto chain = args.front();
      args.erase(args.begin());
      for (std::size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == "--dport" || args[i] == "--dports" || args[i] == "--destination-port") {
          collect_port_breakpoints(args[i + 1], breakpoints);
        }
      }
      table[chain].rules.push_back({std::move(args), std::string(line)});
    }
  }
}

} // namespace

IptablesRuleset
IptablesRuleset::parse(std::string_view v4_save, std::string_view v6_save, std::string_view ipset_save)
{
  IptablesRuleset ruleset;
  parse_save(v4_save, ruleset.m_v4, ruleset.m_breakpoints);
  parse_save(v6_save, ruleset.m_v6, ruleset.m_breakpoints);
  std::map<std::string, bool> simple; // sets whose entries are addresses or networks
  while (!ipset_save.empty()) {
    auto end = ipset_save.find('\n');
    auto args = split_args(ipset_save.substr(0, end));
    ipset_save.remove_prefix(end == std::string_view::npos ? ipset_save.size() : end + 1);
    if (args.size() >= 3 && args[0] == "create") {
      simple[args[1]] = args[2] == "hash:ip" || args[2] == "hash:net";
      if (simple[args[1]]) ruleset.m_ipsets[args[1]];
    } else if (args.size() >= 3 && args[0] == "add" && simple[args[1]]) {
      ruleset.m_ipsets[args[1]].push_back(args[2]);
    }
  }
  std::sort(ruleset.m_breakpoints.begin(), ruleset.m_breakpoints.end());
  ruleset.m_breakpoints.erase(std::unique(ruleset.m_breakpoints.begin(), ruleset.m_breakpoints.end()),
                              ruleset.m_breakpoints.end());
  return ruleset;
}

bool
IptablesRuleset::empty() const
{
  for (const auto* table : {&m_v4, &m_v6}) {
    auto input = table->find("INPUT");
    if (input != table->end() && (!input->second.rules.empty() || input->second.policy != "ACCEPT")) return false;
  }
  return true;
}

struct IptablesEvaluation
{
  const IptablesRuleset& ruleset;
  const IptablesRuleset::Table& table;
  const Packet& packet;

  std::string_view l4() const { return packet.protocol == Protocol::tcp ? "tcp" : "udp"; }

  Match address(const std::string& text, const IpAddress& address) const
  {
    auto hit = address_matches(address, text);
    if (!hit && text.find('/') == std::string::npos) return Match::unknown; // a host name
    if (!hit) return Match::unknown;
    return *hit ? Match::yes : Match::no;
  }

  Match ipset(const std::string& name, const std::string& direction) const
  {
    auto set = ruleset.m_ipsets.find(name);
    if (set == ruleset.m_ipsets.end() || (direction != "src" && direction != "dst")) return Match::unknown;
    const auto& address = direction == "src" ? packet.source : packet.destination;
    for (const auto& entry : set->second) {
      auto hit = address_matches(address, entry);
      if (!hit) return Match::unknown;
      if (*hit) return Match::yes;
    }
    return Match::no;
  }

  static Match state_list(std::string_view list)
  {
    std::string text(list);
    std::replace(text.begin(), text.end(), ',', ' ');
    for (const auto& state : split_args(text)) {
      if (state == "NEW") return Match::yes;
    }
    return Match::no;
  }

  // Evaluates one option starting at args[i]; advances i past its values.
  // `why` names an option that could not be evaluated.
  Match option(const std::vector<std::string>& args, std::size_t& i, std::string& why) const
  {
    const auto& flag = args[i];
    auto value = [&]() -> std::string { return i + 1 < args.size() ? args[++i] : std::string(); };
    if (flag == "-s" || flag == "--source") return address(value(), packet.source);
    if (flag == "-d" || flag == "--destination") return address(value(), packet.destination);
    if (flag == "-p" || flag == "--protocol") {
      auto p = value();
      if (p == "all" || p == "0") return Match::yes;
      return p == l4() || (p == "6" && l4() == "tcp") || (p == "17" && l4() == "udp") ? Match::yes : Match::no;
    }
    if (flag == "-i" || flag == "--in-interface") {
      auto name = value();
      if (packet.interface.empty()) {
        if (name == "lo") return Match::no;
        why = "-i " + name;
        return Match::unknown;
      }
      if (name.ends_with('+')) return packet.interface.starts_with(name.substr(0, name.size() - 1)) ? Match::yes : Match::no;
      return name == packet.interface ? Match::yes : Match::no;
    }
    if (flag == "-m" || flag == "--match") {
      auto module = value();
      static const char* const k_known[] = {"tcp", "udp", "multiport", "set", "conntrack", "state", "comment", "icmp", "icmp6"};
      if (std::find(std::begin(k_known), std::end(k_known), module) != std::end(k_known)) return Match::yes;
      why = "-m " + module;
      return Match::unknown;
    }
    if (flag == "--dport" || flag == "--dports" || flag == "--destination-port" || flag == "--destination-ports") {
      auto hit = ports_match(value(), packet.port);
      if (!hit) {
        why = flag + " " + args[i];
        return Match::unknown;
      }
      return *hit ? Match::yes : Match::no;
    }
    if (flag == "--ctstate" || flag == "--state") return state_list(value());
    if (flag == "--match-set") {
      auto name = value();
      auto direction = value();
      auto m = ipset(name, direction);
      if (m == Match::unknown) why = fmt::format("--match-set {} {}", name, direction);
      return m;
    }
    if (flag == "--comment") {
      value();
      return Match::yes;
    }
    if (flag == "--icmp-type" || flag == "--icmpv6-type") {
      value();
      return Match::no; // only with -p icmp, which a TCP/UDP packet already fails
    }
    if (flag == "--syn") return packet.protocol == Protocol::tcp ? Match::yes : Match::no;
    why = flag;
    return Match::unknown;
  }

  enum class Flow { accept, drop, reject, back, unknown };
  struct Outcome
  {
    Flow flow = Flow::back;
    std::string rule;
  };

  Outcome run(const std::string& chain_name, int depth) const
  {
    auto chain = table.find(chain_name);
    if (chain == table.end()) return {Flow::unknown, "no chain " + chain_name};
    if (depth > 32) return {Flow::unknown, chain_name + ": jumps nest deeper than 32"};
    for (const auto& rule : chain->second.rules) {
      const auto& args = rule.args;
      bool applies = true;
      bool unknown = false;
      std::string why;
      std::string target;
      bool go = false;
      for (std::size_t i = 0; i < args.size() && applies; ++i) {
        if (args[i] == "-j" || args[i] == "--jump" || args[i] == "-g" || args[i] == "--goto") {
          go = args[i] == "-g" || args[i] == "--goto";
          target = i + 1 < args.size() ? args[++i] : "";
          // Target options (--reject-with, --log-prefix ...) follow; they do not match.
          break;
        }
        bool negate = args[i] == "!";
        if (negate && ++i >= args.size()) break;
        auto m = option(args, i, why);
        if (negate && m != Match::unknown) m = m == Match::yes ? Match::no : Match::yes;
        if (m == Match::no) applies = false;
        if (m == Match::unknown) unknown = true;
      }
      if (!applies || target.empty()) continue;
      if (unknown) return {Flow::unknown, fmt::format("{} (cannot evaluate {})", rule.text, why)};
      if (target == "ACCEPT") return {Flow::accept, rule.text};
      if (target == "DROP") return {Flow::drop, rule.text};
      if (target == "REJECT") return {Flow::reject, rule.text};
      if (target == "RETURN") return {Flow::back, {}};
      if (target == "LOG" || target == "NFLOG" || target == "CONNMARK" || target == "MARK") continue;
      if (!table.contains(target)) return {Flow::unknown, fmt::format("{} (target {} not modelled)", rule.text, target)};
      auto outcome = run(target, depth + 1);
      if (outcome.flow != Flow::back || go) return outcome;
    }
    return {Flow::back, {}};
  }
};

PortDecision
IptablesRuleset::decide(const Packet& packet) const
{
  const auto& table = packet.source.v6 ? m_v6 : m_v4;
  auto input = table.find("INPUT");
  if (input == table.end()) return {Decision::accept, "no INPUT chain"};
  IptablesEvaluation evaluation{*this, table, packet};
  auto outcome = evaluation.run("INPUT", 0);
  using Flow = IptablesEvaluation::Flow;
  switch (outcome.flow) {
  case Flow::accept: return {Decision::accept, outcome.rule};
  case Flow::drop: return {Decision::drop, outcome.rule};
  case Flow::reject: return {Decision::reject, outcome.rule};
  case Flow::unknown: return {Decision::unknown, outcome.rule};
  case Flow::back: break;
  }
  auto family = packet.source.v6 ? "ip6tables" : "iptables";
  auto policy = input->second.policy;
  return {policy == "DROP" ? Decision::drop : policy == "ACCEPT" ? Decision::accept : Decision::unknown,
          fmt::format("{} INPUT policy {}", family, policy)};
}

} // namespace portmatrix
