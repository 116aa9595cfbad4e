// yaml-cpp reports positions 0-based; diagnostics are 1-based like compilers'.
#include "model/yaml_reader.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>

#include "util/edit_distance.hpp"

namespace portmatrix {

namespace {

// Counts the first document's values as yaml-cpp's parser reports them and
// stops past k_max_values, before YAML::Load would build a tree of them all.
class ValueCounter : public YAML::EventHandler
{
public:
  struct TooMany
  {
    YAML::Mark at;
  };

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { count(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { count(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override { count(mark); }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
  {
    count(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
  {
    count(mark);
  }
  void OnMapEnd() override {}

private:
  void count(const YAML::Mark& mark)
  {
    if (++m_values > k_max_values) throw TooMany{mark};
  }

  std::size_t m_values = 0;
};

// Ends the parse at the start of a document: used after the first one, to
// find where a second begins (yaml-cpp's Load would silently drop it).
class DocumentStart : public YAML::EventHandler
{
public:
  struct Found
  {
    YAML::Mark at;
  };

  void OnDocumentStart(const YAML::Mark& mark) override { throw Found{mark}; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// yaml-cpp's scanner holds every token of a flow list until its closing
// bracket, so counting events comes too late for `[x, x, ...]`: line breaks
// and commas (at least one per entry after the first) are counted first.
std::optional<YAML::Mark>
too_many_entries(std::string_view text)
{
  std::size_t entries = 0;
  YAML::Mark at;
  at.line = 0;
  at.column = 0;
  for (char c : text) {
    if ((c == ',' || c == '\n') && ++entries > k_max_values) return at;
    if (c == '\n') {
      ++at.line;
      at.column = 0;
    } else {
      ++at.column;
    }
  }
  return std::nullopt;
}

// A flow list or mapping, or a quoted scalar, that was opened and not closed.
struct Opening
{
  char what; // '[', '{', '"' or '\''
  YAML::Mark at;
};

// Where the construct still open at `until` (where yaml-cpp found an end
// missing) began: the innermost bracket or quote opened before it and not
// closed, or one closed by the wrong bracket. A rough scanner of YAML's
// surface, used only to explain an error yaml-cpp has found: comments are
// skipped, a bracket or quote opens only where a value may start (so the
// apostrophe of "the guide's table" does not), inside quotes nothing counts.
std::optional<Opening>
open_construct(std::string_view text, const YAML::Mark& until)
{
  std::vector<Opening> brackets;
  std::optional<Opening> quote;
  YAML::Mark at;
  at.line = 0;
  at.column = 0;
  char previous = '\n'; // the last character that was not a blank; '\n' at a line's start
  auto value_may_start = [&] { return std::string_view("\n:-,[{?").find(previous) != std::string_view::npos; };
  auto advance = [&](char c) {
    if (c == '\n') {
      ++at.line;
      at.column = 0;
      previous = '\n';
      return;
    }
    ++at.column;
    if (c != ' ' && c != '\t' && c != '\r') previous = c;
  };
  for (std::size_t i = 0; i < text.size(); advance(text[i++])) {
    if (at.line > until.line || (at.line == until.line && at.column >= until.column)) break;
    char c = text[i];
    bool escaped_pair = quote && i + 1 < text.size() &&
                        ((quote->what == '"' && c == '\\') || (quote->what == '\'' && c == '\'' && text[i + 1] == '\''));
    if (escaped_pair) {
      advance(text[i++]); // \" in a double-quoted string, '' in a single-quoted one
    } else if (quote) {
      if (c == quote->what) quote.reset();
    } else if (c == '#' && (previous == '\n' || text[i - 1] == ' ' || text[i - 1] == '\t')) {
      while (i + 1 < text.size() && text[i + 1] != '\n') advance(text[i++]);
    } else if ((c == '"' || c == '\'') && value_may_start()) {
      quote = Opening{c, at};
    } else if ((c == '[' || c == '{') && (!brackets.empty() || value_may_start())) {
      brackets.push_back({c, at});
    } else if ((c == ']' || c == '}') && !brackets.empty()) {
      if (brackets.back().what != (c == ']' ? '[' : '{')) return brackets.back();
      brackets.pop_back();
    }
  }
  if (quote) return quote;
  if (!brackets.empty()) return brackets.back();
  return std::nullopt;
}

// yaml-cpp's "end ... not found" is detected where the text ends or the next
// construct begins, often lines after the slip, and "illegal flow end" at a
// bracket that closes the wrong one: the message names where the unclosed
// list, mapping or quote began.
std::pair<YAML::Mark, std::string>
explained(std::string_view text, const YAML::Exception& e)
{
  bool unclosed = e.msg == YAML::ErrorMsg::END_OF_SEQ_FLOW || e.msg == YAML::ErrorMsg::END_OF_MAP_FLOW ||
                  e.msg == YAML::ErrorMsg::EOF_IN_SCALAR || e.msg == YAML::ErrorMsg::FLOW_END;
  if (!unclosed || e.mark.is_null()) return {e.mark, e.msg};
  auto opening = open_construct(text, e.mark);
  if (!opening) return {e.mark, e.msg};
  auto shown = [](char c) { return c == '\'' ? std::string("\"'\"") : fmt::format("'{}'", c); };
  char closer = opening->what == '[' ? ']' : opening->what == '{' ? '}' : opening->what;
  std::string_view kind = opening->what == '[' ? "flow list" : opening->what == '{' ? "flow mapping" : "quoted string";
  return {opening->at, fmt::format("the {} opened here by {} is never closed with {} (detected at {}:{}: {})", kind,
                                   shown(opening->what), shown(closer), e.mark.line + 1, e.mark.column + 1, e.msg)};
}

} // namespace

std::optional<YAML::Node>
YamlReader::parse(std::string_view text)
{
  if (auto at = too_many_entries(text)) {
    error(*at, fmt::format("more than {} lines and commas; this is not an input portmatrix reads", k_max_values));
    return std::nullopt;
  }
  YAML::Node root;
  try {
    // yaml-cpp holds every value of a tree in memory (a 14 MB list of 7
    // million names took 3 GB): a file with more values than any real
    // inventory or profile is refused before the tree is built.
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    ValueCounter counter;
    parser.HandleNextDocument(counter);
    DocumentStart second;
    parser.HandleNextDocument(second);
    root = YAML::Load(in.str());
  } catch (const DocumentStart::Found& e) {
    error(e.at, "a second YAML document starts here; a file holds one inventory or profile (its later documents "
                "would be ignored)");
    return std::nullopt;
  } catch (const ValueCounter::TooMany& e) {
    error(e.at, fmt::format("more than {} values (keys, scalars, lists, mappings); this is not an input portmatrix "
                            "reads", k_max_values));
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    auto [at, message] = explained(text, e);
    error(at, std::move(message));
    return std::nullopt;
  } catch (const std::exception& e) {
    error(YAML::Mark::null_mark(), e.what());
    return std::nullopt;
  }
  report_duplicate_keys(root);
  return root;
}

// Walks every mapping once, then reports in file order. Collections are
// remembered by position because an alias shares its anchor's node: without
// that, a few lines of nested aliases would make the walk exponential.
void
YamlReader::report_duplicate_keys(const YAML::Node& root)
{
  std::vector<std::pair<YAML::Mark, std::string>> found;
  std::vector<std::pair<YAML::Node, std::string>> pending{{root, "the top level"}};
  std::set<std::pair<int, int>> visited;
  // One more than the limit is enough for error() to end the reading.
  while (!pending.empty() && found.size() <= k_max_errors) {
    auto [node, where] = std::move(pending.back());
    pending.pop_back();
    if (!visited.insert({node.Mark().line, node.Mark().column}).second) continue;
    auto collection = [](const YAML::Node& value) { return value.IsMap() || value.IsSequence(); };
    if (node.IsSequence()) {
      std::size_t index = 0;
      for (const auto& item : node) {
        if (collection(item)) pending.emplace_back(item, fmt::format("{}[{}]", where, index));
        ++index;
      }
    } else if (node.IsMap()) {
      std::map<std::string, int> first_line;
      for (const auto& entry : node) {
        if (!entry.first.IsScalar()) continue;
        const auto& key = entry.first.Scalar();
        auto [it, fresh] = first_line.emplace(key, entry.first.Mark().line + 1);
        if (!fresh) {
          found.emplace_back(entry.first.Mark(),
                             fmt::format("duplicate key '{}' in {} (first at line {})", printable(key), where, it->second));
        }
        if (collection(entry.second)) {
          pending.emplace_back(entry.second, where == "the top level" ? printable(key) : where + "." + printable(key));
        }
      }
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::pair(a.first.line, a.first.column) < std::pair(b.first.line, b.first.column);
  });
  for (auto& [mark, message] : found) error(mark, std::move(message));
}

void
YamlReader::error(const YAML::Mark& at, std::string message)
{
  bool known = !at.is_null() && at.line >= 0;
  m_errors.add({file(), known ? at.line + 1 : 0, known ? at.column + 1 : 0, std::move(message)});
}

void
YamlReader::error(const YAML::Node& at, std::string message)
{
  error(at.Mark(), std::move(message));
}

bool
YamlReader::check_map(const YAML::Node& map, std::string_view what, std::initializer_list<std::string_view> allowed)
{
  if (!map.IsMap()) {
    error(map, fmt::format("{} must be a mapping", what));
    return false;
  }
  for (const auto& entry : map) {
    if (!entry.first.IsScalar()) {
      error(entry.first, fmt::format("{} has a key that is not a plain name", what));
      continue;
    }
    const auto& key = entry.first.Scalar();
    bool known = false;
    for (auto name : allowed) known = known || name == key;
    if (!known) {
      std::string list;
      std::vector<std::string> names;
      for (auto name : allowed) {
        list += fmt::format("{}{}", list.empty() ? "" : ", ", name);
        names.emplace_back(name);
      }
      error(entry.first, fmt::format("unknown key '{}' in {}{} (known: {})", printable(key), what,
                                     did_you_mean(key, names), list));
    }
  }
  return true;
}

bool
YamlReader::expect_sequence(const YAML::Node& node, std::string_view what)
{
  if (node.IsSequence()) return true;
  error(node, fmt::format("{} must be a list", what));
  return false;
}

std::optional<std::string>
YamlReader::string(const YAML::Node& node, std::string_view what)
{
  if (!node.IsScalar()) {
    error(node, fmt::format("{} must be a single value", what));
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<bool>
YamlReader::boolean(const YAML::Node& node, std::string_view what)
{
  if (node.IsScalar()) {
    const auto& text = node.Scalar();
    if (text == "true" || text == "yes") return true;
    if (text == "false" || text == "no") return false;
  }
  error(node, fmt::format("{} must be true or false", what));
  return std::nullopt;
}

std::optional<PortRange>
YamlReader::port_range(const YAML::Node& node, std::string_view what)
{
  auto text = string(node, what);
  if (!text) return std::nullopt;
  auto parsed = parse_port_range(*text);
  if (!parsed.range) error(node, fmt::format("{}: {}", what, parsed.error));
  return parsed.range;
}

std::optional<Role>
YamlReader::role(const YAML::Node& node, std::string_view what)
{
  auto text = string(node, what);
  if (!text) return std::nullopt;
  auto parsed = parse_role(*text);
  if (!parsed) {
    error(node,
          fmt::format("unknown role '{}' in {}{} (known: master, control-plane, worker, mongodb, elasticsearch, "
                      "loadbalancer, client)",
                      printable(*text),
                      what,
                      did_you_mean(*text, {"master", "control-plane", "worker", "mongodb", "elasticsearch",
                                           "loadbalancer", "client"})));
  }
  return parsed;
}

YAML::Mark
YamlReader::key_mark(const YAML::Node& map, std::string_view key) const
{
  if (map.IsMap()) {
    for (const auto& entry : map) {
      if (entry.first.IsScalar() && entry.first.Scalar() == key) return entry.first.Mark();
    }
  }
  return map.Mark();
}

} // namespace portmatrix
