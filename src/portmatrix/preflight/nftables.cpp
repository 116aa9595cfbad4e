// nftables evaluation. The JSON is read once into chains (rules keep their
// expression arrays) and sets; a packet then walks the input-hook filter
// chains in priority order. Each match is three-valued: yes, no, or unknown
// (an expression or key we do not model). A rule with a "no" match does not
// apply; otherwise an unknown match makes the whole decision unknown, naming
// the rule. An accept ends one base chain (the next still sees the packet);
// drop and reject end all. The packet is always the first one of a
// connection: ct state is "new", ct status has no bit set (not NATed).
#include "preflight/nftables.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace portmatrix {
namespace {

using json = nlohmann::json;

enum class Match { yes, no, unknown };

// An nft JSON object has one key: the kind of expression or statement.
struct Head
{
  std::string key;
  const json& body;
};

Head
head(const json& object)
{
  auto it = object.begin();
  return {it.key(), it.value()};
}

std::string
key_of(std::string_view family, std::string_view table, std::string_view name)
{
  return fmt::format("{} {} {}", family, table, name);
}

// --- rendering a rule as nft prints it, roughly ---------------------------------

std::string render(const json& value);

std::string
render_list(const json& items, std::string_view separator)
{
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : std::string(separator)) + render(item);
  return out;
}

std::string
render(const json& value)
{
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number()) return value.dump();
  if (value.is_array()) return render_list(value, ",");
  if (!value.is_object() || value.empty()) return value.dump();
  auto [key, body] = head(value);
  if (key == "payload") return fmt::format("{} {}", body.value("protocol", "?"), body.value("field", "?"));
  if (key == "meta") {
    auto name = body.value("key", "?");
    return name == "iifname" || name == "iif" || name == "oif" || name == "oifname" ? name : "meta " + name;
  }
  if (key == "ct") return "ct " + body.value("key", "?");
  if (key == "concat") return render_list(body, " . ");
  if (key == "set") return "{ " + render_list(body, ", ") + " }";
  if (key == "range" && body.is_array() && body.size() == 2) return render(body[0]) + "-" + render(body[1]);
  if (key == "prefix") return fmt::format("{}/{}", render(body.value("addr", json())), body.value("len", 0));
  if (key == "elem") return render(body.value("val", json()));
  if (key == "match") {
    auto op = body.value("op", "==");
    return fmt::format("{}{} {}", render(body.value("left", json())), op == "==" || op == "in" ? "" : " " + op,
                       render(body.value("right", json())));
  }
  if (key == "jump" || key == "goto") return fmt::format("{} {}", key, body.value("target", "?"));
  if (key == "accept" || key == "drop" || key == "return" || key == "continue" || key == "reject" || key == "log"
      || key == "counter") {
    return key;
  }
  if (key == "vmap") {
    std::string entries;
    for (const auto& entry : body.value("data", json()).value("set", json::array())) {
      if (entry.is_array() && entry.size() == 2) entries += (entries.empty() ? "" : ", ") + render(entry[0]) + " : " + render(entry[1]);
    }
    return fmt::format("{} vmap {{ {} }}", render(body.value("key", json())), entries);
  }
  auto text = value.dump();
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

std::string
render_rule(const json& expr)
{
  std::string out;
  for (const auto& statement : expr) {
    if (statement.contains("counter")) continue;
    out += (out.empty() ? "" : " ") + render(statement);
  }
  return out;
}

// Every port-sized number in `value`: rules and set elements may compare
// ports with it, so the decision can change there.
void
collect_breakpoints(const json& value, std::vector<std::uint32_t>& out)
{
  if (value.is_number_unsigned() || value.is_number_integer()) {
    auto n = value.get<long long>();
    if (n >= 0 && n <= 65535) {
      out.push_back(std::uint32_t(n));
      out.push_back(std::uint32_t(n) + 1);
    }
  } else if (value.is_array() || value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      if (key != "counter") collect_breakpoints(item, out);
    }
  }
}

} // namespace

// The walk of one packet through the ruleset.
struct NftEvaluation
{
  const NftRuleset& ruleset;
  const Packet& packet;
  std::string unknown_reason;

  // A key of the packet: what a match's left side evaluates to.
  struct Value
  {
    enum class Kind { none, port, address, text, absent } kind = Kind::none;
    std::uint32_t port = 0;
    std::string text; // l4proto, nfproto, interface, ct state
  };

  std::string_view l4() const { return packet.protocol == Protocol::tcp ? "tcp" : "udp"; }

  Value key_value(const json& left, std::string& why) const
  {
    using Kind = Value::Kind;
    if (!left.is_object() || left.empty()) {
      why = "expression " + left.dump();
      return {};
    }
    auto [key, body] = head(left);
    if (key == "payload") {
      auto protocol = body.value("protocol", "");
      auto field = body.value("field", "");
      if (protocol == "ip" || protocol == "ip6") {
        if ((protocol == "ip6") != packet.source.v6) return {Kind::absent, 0, {}};
        if (field == "saddr") return {Kind::address, 0, "saddr"};
        if (field == "daddr") return {Kind::address, 0, "daddr"};
        if (field == "protocol" || field == "nexthdr") return {Kind::text, 0, std::string(l4())};
      } else if (protocol == "tcp" || protocol == "udp" || protocol == "th") {
        if (protocol != "th" && protocol != l4()) return {Kind::absent, 0, {}};
        if (field == "dport") return {Kind::port, packet.port, {}};
      } else if (protocol == "icmp" || protocol == "icmpv6" || protocol == "sctp" || protocol == "dccp"
                 || protocol == "udplite" || protocol == "esp" || protocol == "ah") {
        return {Kind::absent, 0, {}}; // a header our TCP/UDP packet does not have
      }
      why = fmt::format("{} {}", protocol, field);
      return {};
    }
    if (key == "meta") {
      auto name = body.value("key", "");
      if (name == "l4proto") return {Kind::text, 0, std::string(l4())};
      if (name == "nfproto") return {Kind::text, 0, packet.source.v6 ? "ipv6" : "ipv4"};
      if (name == "protocol") return {Kind::text, 0, packet.source.v6 ? "ip6" : "ip"};
      if (name == "iifname" || name == "iif") return {Kind::text, 0, packet.interface.empty() ? "?" : packet.interface};
      why = "meta " + name;
      return {};
    }
    if (key == "ct" && body.value("key", "") == "state" && !body.contains("dir")) return {Kind::text, 0, "new"};
    // That first packet, sent to the node's own address, was not NATed: no
    // status bit (dnat, snat...) is set (firewalld: `ct status dnat accept`).
    if (key == "ct" && body.value("key", "") == "status" && !body.contains("dir")) return {Kind::text, 0, "none"};
    why = render(left);
    return {};
  }

  // Does `value` equal the element `element` (a literal, range, prefix, or
  // "@set" when `depth` allows)?
  Match element_match(const Value& value, const json& element) const
  {
    using Kind = Value::Kind;
    if (element.is_object() && element.contains("elem")) return element_match(value, element["elem"].value("val", json()));
    if (value.kind == Kind::port) {
      if (element.is_number_integer()) return element.get<long long>() == value.port ? Match::yes : Match::no;
      if (element.is_object() && element.contains("range")) {
        const auto& r = element["range"];
        if (r.size() == 2 && r[0].is_number_integer() && r[1].is_number_integer()) {
          return r[0].get<long long>() <= value.port && value.port <= r[1].get<long long>() ? Match::yes : Match::no;
        }
      }
      return Match::unknown;
    }
    if (value.kind == Kind::address) {
      const auto& address = value.text == "saddr" ? packet.source : packet.destination;
      std::optional<bool> hit;
      if (element.is_string()) {
        hit = address_matches(address, element.get<std::string>());
      } else if (element.is_object() && element.contains("prefix")) {
        const auto& p = element["prefix"];
        hit = address_matches(address, fmt::format("{}/{}", p.value("addr", ""), p.value("len", -1)));
      } else if (element.is_object() && element.contains("range") && element["range"].size() == 2
                 && element["range"][0].is_string() && element["range"][1].is_string()) {
        hit = address_matches(address, element["range"][0].get<std::string>() + "-" + element["range"][1].get<std::string>());
      }
      if (!hit) return Match::unknown;
      return *hit ? Match::yes : Match::no;
    }
    if (value.kind == Kind::text) {
      if (value.text == "?") return element == "lo" ? Match::no : Match::unknown; // a remote packet never arrives on lo
      if (element.is_number_integer()) {
        auto number = element.get<long long>();
        if (value.text == "tcp") return number == 6 ? Match::yes : Match::no;
        if (value.text == "udp") return number == 17 ? Match::yes : Match::no;
        return Match::unknown;
      }
      if (!element.is_string()) return Match::unknown;
      auto text = element.get<std::string>();
      if (text.ends_with('*')) return value.text.starts_with(text.substr(0, text.size() - 1)) ? Match::yes : Match::no;
      return text == value.text ? Match::yes : Match::no;
    }
    return Match::unknown;
  }

  std::optional<json> set_elements(const json& right, std::string_view family, std::string_view table) const
  {
    if (right.is_string() && right.get<std::string>().starts_with('@')) {
      auto found = ruleset.m_sets.find(key_of(family, table, right.get<std::string>().substr(1)));
      if (found == ruleset.m_sets.end()) return std::nullopt;
      return found->second;
    }
    if (right.is_object() && right.contains("set")) return right["set"].is_array() ? right["set"] : json::array({right["set"]});
    if (right.is_array()) return right; // flags: ct state { established, related }
    return json::array({right});
  }

  // One value against every element: yes when one is, unknown when none is
  // and one could not be told.
  Match any_element(const std::vector<Value>& values, const json& elements) const
  {
    Match result = Match::no;
    for (const auto& element : elements) {
      Match m = Match::no;
      if (values.size() == 1) {
        m = element_match(values[0], element);
      } else {
        const json* parts = element.is_object() && element.contains("elem") ? &element["elem"]["val"] : &element;
        if (!parts->is_object() || !parts->contains("concat") || (*parts)["concat"].size() != values.size()) {
          m = Match::unknown;
        } else {
          m = Match::yes;
          for (std::size_t i = 0; i < values.size() && m != Match::no; ++i) {
            auto part = element_match(values[i], (*parts)["concat"][i]);
            if (part != Match::yes) m = part;
          }
        }
      }
      if (m == Match::yes) return Match::yes;
      if (m == Match::unknown) result = Match::unknown;
    }
    return result;
  }

  Match match(const json& body, const NftRuleset::Chain& chain, std::string& why) const
  {
    auto op = body.value("op", "==");
    const auto& left = body.value("left", json());
    std::vector<Value> values;
    if (left.is_object() && left.contains("concat")) {
      for (const auto& part : left["concat"]) values.push_back(key_value(part, why));
    } else {
      values.push_back(key_value(left, why));
    }
    bool absent = false;
    for (const auto& v : values) {
      if (v.kind == Value::Kind::none) return Match::unknown;
      absent = absent || v.kind == Value::Kind::absent;
    }
    // A header the packet lacks: nft's implicit dependency fails, whatever the op.
    if (absent) return Match::no;
    auto elements = set_elements(body.value("right", json()), chain.family, chain.table);
    if (!elements) {
      why = "set " + render(body.value("right", json()));
      return Match::unknown;
    }
    if (op == "==" || op == "in" || op == "!=") {
      auto m = any_element(values, *elements);
      if (m == Match::unknown) why = render(body);
      if (op != "!=" || m == Match::unknown) return m;
      return m == Match::yes ? Match::no : Match::yes;
    }
    if (values.size() == 1 && values[0].kind == Value::Kind::port && elements->size() == 1 && (*elements)[0].is_number_integer()) {
      auto bound = (*elements)[0].get<long long>();
      auto port = static_cast<long long>(values[0].port);
      bool hit = op == "<" ? port < bound : op == "<=" ? port <= bound : op == ">" ? port > bound : op == ">=" ? port >= bound : false;
      if (op == "<" || op == "<=" || op == ">" || op == ">=") return hit ? Match::yes : Match::no;
    }
    why = render(body);
    return Match::unknown;
  }

  // Result of running a chain: a final verdict, "fell off / returned", or unknown.
  enum class Flow { accept, drop, reject, back, unknown };
  struct Outcome
  {
    Flow flow = Flow::back;
    std::string rule;
  };

  static std::optional<Flow> terminal(std::string_view key)
  {
    if (key == "accept") return Flow::accept;
    if (key == "drop") return Flow::drop;
    if (key == "reject") return Flow::reject;
    if (key == "return") return Flow::back;
    return std::nullopt;
  }

  Outcome run(const NftRuleset::Chain& chain, int depth)
  {
    if (depth > 32) return {Flow::unknown, fmt::format("{} {} {}: jumps nest deeper than 32", chain.family, chain.table, chain.name)};
    for (const auto& rule : chain.rules) {
      std::string why;
      bool applies = true;
      bool unknown = false;
      for (const auto& statement : rule.expr) {
        if (!statement.is_object() || statement.empty()) continue;
        auto [key, body] = head(statement);
        if (key == "match") {
          auto m = match(body, chain, why);
          if (m == Match::no) {
            applies = false;
            break;
          }
          if (m == Match::unknown) unknown = true;
          continue;
        }
        if (key == "counter" || key == "log" || key == "mangle" || key == "continue") continue;
        // A statement that decides: every match before it must be known.
        if (unknown) return {Flow::unknown, fmt::format("{} (cannot evaluate {})", rule.text, why)};
        if (auto flow = terminal(key)) return {*flow, rule.text};
        if (key == "jump" || key == "goto") {
          auto target = ruleset.m_chains.find(key_of(chain.family, chain.table, body.value("target", "")));
          if (target == ruleset.m_chains.end()) return {Flow::unknown, rule.text + " (no such chain)"};
          auto outcome = run(target->second, depth + 1);
          if (outcome.flow != Flow::back) return outcome;
          if (key == "goto") return {Flow::back, {}};
          break; // jump returned: the next rule
        }
        if (key == "vmap") {
          auto value = key_value(body.value("key", json()), why);
          if (value.kind == Value::Kind::none) return {Flow::unknown, fmt::format("{} (cannot evaluate {})", rule.text, why)};
          bool decided = false;
          for (const auto& entry : body.value("data", json()).value("set", json::array())) {
            if (!entry.is_array() || entry.size() != 2) continue;
            auto m = value.kind == Value::Kind::absent ? Match::no : any_element({value}, json::array({entry[0]}));
            if (m == Match::unknown) return {Flow::unknown, rule.text + " (cannot evaluate its key)"};
            if (m == Match::no) continue;
            const auto& verdict = entry[1];
            if (!verdict.is_object() || verdict.empty()) return {Flow::unknown, rule.text};
            auto [vkey, vbody] = head(verdict);
            if (auto flow = terminal(vkey)) return {*flow, rule.text};
            if (vkey == "continue") {
              decided = true;
              break;
            }
            if (vkey == "jump" || vkey == "goto") {
              auto target = ruleset.m_chains.find(key_of(chain.family, chain.table, vbody.value("target", "")));
              if (target == ruleset.m_chains.end()) return {Flow::unknown, rule.text + " (no such chain)"};
              auto outcome = run(target->second, depth + 1);
              if (outcome.flow != Flow::back || vkey == "goto") return outcome;
              decided = true;
              break;
            }
            return {Flow::unknown, rule.text};
          }
          (void)decided;
          break;
        }
        return {Flow::unknown, fmt::format("{} (statement '{}' not modelled)", rule.text, key)};
      }
      (void)applies;
    }
    return {Flow::back, {}};
  }
};

Expected<NftRuleset, std::string>
NftRuleset::parse(std::string_view text)
try {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("nftables") || !doc["nftables"].is_array()) {
    return unexpected(std::string("not the JSON of `nft -j list ruleset`"));
  }
  NftRuleset ruleset;
  std::vector<std::pair<std::string, json>> rules;
  for (const auto& object : doc["nftables"]) {
    if (!object.is_object()) continue;
    if (object.contains("chain")) {
      const auto& c = object["chain"];
      Chain chain{c.value("family", ""), c.value("table", ""), c.value("name", ""), false, 0, "accept", {}};
      auto family = chain.family;
      chain.base = c.value("hook", "") == "input" && c.value("type", "filter") == "filter"
                   && (family == "ip" || family == "ip6" || family == "inet");
      chain.priority = c.contains("prio") && c["prio"].is_number_integer() ? c["prio"].get<long>() : 0;
      chain.policy = c.value("policy", "accept");
      auto key = key_of(chain.family, chain.table, chain.name);
      ruleset.m_chains.emplace(key, std::move(chain));
    } else if (object.contains("set")) {
      const auto& s = object["set"];
      ruleset.m_sets[key_of(s.value("family", ""), s.value("table", ""), s.value("name", ""))] = s.value("elem", json::array());
      collect_breakpoints(s.value("elem", json::array()), ruleset.m_breakpoints);
    } else if (object.contains("rule")) {
      const auto& r = object["rule"];
      rules.emplace_back(key_of(r.value("family", ""), r.value("table", ""), r.value("chain", "")), r);
    }
  }
  for (auto& [key, r] : rules) {
    auto chain = ruleset.m_chains.find(key);
    if (chain == ruleset.m_chains.end()) continue;
    Rule rule{r.value("handle", 0L), r.value("expr", json::array()), {}};
    rule.text = fmt::format("{} #{}: {}", key, rule.handle, render_rule(rule.expr));
    if (r.contains("comment") && r["comment"].is_string()) rule.text += fmt::format(" comment \"{}\"", r["comment"].get<std::string>());
    collect_breakpoints(rule.expr, ruleset.m_breakpoints);
    chain->second.rules.push_back(std::move(rule));
  }
  for (const auto& [key, chain] : ruleset.m_chains) {
    if (chain.base) ruleset.m_base_chains.push_back(key);
  }
  std::stable_sort(ruleset.m_base_chains.begin(), ruleset.m_base_chains.end(), [&](const auto& a, const auto& b) {
    return ruleset.m_chains.at(a).priority < ruleset.m_chains.at(b).priority;
  });
  std::sort(ruleset.m_breakpoints.begin(), ruleset.m_breakpoints.end());
  ruleset.m_breakpoints.erase(std::unique(ruleset.m_breakpoints.begin(), ruleset.m_breakpoints.end()),
                              ruleset.m_breakpoints.end());
  return ruleset;
} catch (const json::exception& error) {
  // A member of another type than nft writes (json::value throws on it).
  return unexpected(fmt::format("not the JSON of `nft -j list ruleset`: {}", error.what()));
}

PortDecision
NftRuleset::decide(const Packet& packet) const
try {
  using Flow = NftEvaluation::Flow;
  NftEvaluation evaluation{*this, packet, {}};
  std::string accepted_by;
  for (const auto& key : m_base_chains) {
    const auto& chain = m_chains.at(key);
    if ((chain.family == "ip" && packet.source.v6) || (chain.family == "ip6" && !packet.source.v6)) continue;
    auto outcome = evaluation.run(chain, 0);
    if (outcome.flow == Flow::back) {
      outcome.rule = fmt::format("{} policy {}", key, chain.policy);
      outcome.flow = chain.policy == "drop" ? Flow::drop : Flow::accept;
    }
    switch (outcome.flow) {
    case Flow::drop: return {Decision::drop, outcome.rule};
    case Flow::reject: return {Decision::reject, outcome.rule};
    case Flow::unknown: return {Decision::unknown, outcome.rule};
    case Flow::accept:
    case Flow::back: accepted_by += (accepted_by.empty() ? "" : "; ") + outcome.rule; break;
    }
  }
  if (accepted_by.empty()) return {Decision::accept, "no nftables input chain"};
  return {Decision::accept, accepted_by};
} catch (const json::exception& error) {
  return {Decision::unknown, fmt::format("a rule nftables would not write: {}", error.what())};
}

std::vector<const NftRuleset::Chain*>
NftRuleset::input_chains() const
{
  std::vector<const Chain*> out;
  for (const auto& key : m_base_chains) out.push_back(&m_chains.at(key));
  return out;
}

} // namespace portmatrix
