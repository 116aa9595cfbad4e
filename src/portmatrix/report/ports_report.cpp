// The ports table follows the guide's layout: one section per direction
// (worker -> master, ...), in the order the profile first names it, then the
// flows that must stay closed, the egress hosts, and the concrete flows.
//
// The node pairs are O(nodes^2) (20 million at 5,000 nodes, 80 % of them
// workers: 6 GB of JSON), so they are never held: each format writes them as Plan::for_each_flow visits them,
// through a buffer written out in large pieces, with what is the same for a
// whole requirement (and each node's name and address) formatted once. The
// JSON document is nlohmann's dump of everything else, the "flows" array
// spliced in where an empty placeholder was dumped; the text table measures
// its column widths in a first visit and prints in a second.
#include "report/ports_report.hpp"

#include <array>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "report/untested_report.hpp"
#include "util/text_table.hpp"

namespace portmatrix {

std::optional<PortsFormat>
parse_ports_format(std::string_view text)
{
  if (text == "table") return PortsFormat::table;
  if (text == "markdown" || text == "md") return PortsFormat::markdown;
  if (text == "json") return PortsFormat::json;
  if (text == "csv") return PortsFormat::csv;
  return std::nullopt;
}

std::optional<FlowsView>
parse_flows_view(std::string_view text)
{
  if (text == "pairs") return FlowsView::pairs;
  if (text == "groups") return FlowsView::groups;
  return std::nullopt;
}

namespace {

// Text for a stream, written in pieces of about 64 KiB rather than per flow.
class Writer
{
public:
  explicit Writer(std::ostream& out) : m_out(out) { m_buffer.reserve(k_chunk * 2); }
  ~Writer() { flush(); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Append to the buffer, then call done().
  std::string& buffer() { return m_buffer; }
  void done()
  {
    if (m_buffer.size() >= k_chunk) flush();
  }
  Writer& operator<<(std::string_view text)
  {
    m_buffer += text;
    done();
    return *this;
  }
  void flush()
  {
    m_out.write(m_buffer.data(), std::streamsize(m_buffer.size()));
    m_buffer.clear();
  }

private:
  static constexpr std::size_t k_chunk = 64 * 1024;
  std::ostream& m_out;
  std::string m_buffer;
};

// True when `flow` comes from another requirement than the flow seen before:
// the visitor hands out the flows of one requirement in a row.
class RequirementChange
{
public:
  bool operator()(const Flow& flow)
  {
    if (m_seen && flow.protocol == m_last.protocol && flow.range == m_last.range && flow.expect == m_last.expect &&
        flow.port == m_last.port && flow.purpose == m_last.purpose) {
      return false;
    }
    m_seen = true;
    m_last = flow;
    return true;
  }

private:
  bool m_seen = false;
  Flow m_last;
};

std::string
quoted(const std::string& text)
{
  return nlohmann::json(text).dump();
}

std::string
direction(const Requirement& requirement)
{
  return fmt::format("{} → {}", to_string(requirement.from), to_string(requirement.to));
}

std::string
requirement_status(const Requirement& requirement, const Matrix& matrix, bool with_inventory)
{
  std::string text = requirement.optional ? "optional" : "required";
  if (!requirement.when.empty()) text += " when " + to_string(requirement.when);
  if (with_inventory && !matrix.active(requirement)) text += " (off)";
  return text;
}

std::string
protocol_label(const Requirement& requirement)
{
  return std::string(to_string(requirement.protocol));
}

std::string
port_label(const PortRange& range, Protocol protocol)
{
  return has_ports(protocol) ? to_string(range) : "-";
}

// Requirements grouped by direction, deny ones last, in first-seen order.
std::vector<std::pair<std::string, std::vector<const Requirement*>>>
sections(const Matrix& matrix)
{
  std::vector<std::pair<std::string, std::vector<const Requirement*>>> out;
  std::map<std::string, std::size_t> index;
  for (auto expect : {Expect::allow, Expect::deny}) {
    for (const auto& requirement : matrix.profile.requirements) {
      if (requirement.expect != expect) continue;
      auto title = direction(requirement) + (expect == Expect::deny ? " (must be denied)" : "");
      auto [it, fresh] = index.emplace(title, out.size());
      if (fresh) out.push_back({title, {}});
      out[it->second].second.push_back(&requirement);
    }
  }
  return out;
}

std::string
csv_field(const std::string& text)
{
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Appends " cell |" with `|` escaped: one markdown table cell.
void
append_md_cell(std::string& out, std::string_view text)
{
  out += ' ';
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  out += " |";
}

std::string
header_text(const Matrix& matrix)
{
  const auto& profile = matrix.profile;
  std::string versions;
  for (const auto& [component, version] : profile.validated_with) {
    versions += fmt::format("{}{} {}", versions.empty() ? "" : ", ", component, version);
  }
  std::string text = "profile " + profile.name + (profile.version.empty() ? "" : " " + profile.version);
  if (!profile.includes.empty()) {
    text += " (includes";
    for (const auto& include : profile.includes) text += " " + include;
    text += ")";
  }
  if (!profile.description.empty()) text += ": " + profile.description;
  if (!versions.empty()) text += fmt::format("\nvalidated with {}", versions);
  return text;
}

nlohmann::json
requirement_json(const Requirement& requirement)
{
  nlohmann::json json{{"from_role", to_string(requirement.from)},
                      {"to_role", to_string(requirement.to)},
                      {"protocol", to_string(requirement.protocol)},
                      {"port_min", requirement.range.min},
                      {"port_max", requirement.range.max},
                      {"port_name", requirement.port},
                      {"purpose", requirement.purpose},
                      {"optional", requirement.optional},
                      {"expect", to_string(requirement.expect)},
                      {"reason", requirement.reason},
                      {"origin", requirement.origin}};
  if (!requirement.when.empty()) {
    auto& when = json["when"] = nlohmann::json::object();
    for (const auto& condition : requirement.when) when[condition.option] = condition.value;
  }
  return json;
}

// Node lists of a flow group: the names, or the first `shown` and "+N more"
// (when that is shorter than naming one more).
std::string
node_list(const Plan& plan, const std::vector<std::size_t>& nodes, std::string_view separator, std::size_t shown)
{
  if (nodes.size() <= shown + 1) shown = nodes.size();
  std::string text;
  for (std::size_t i = 0; i < nodes.size() && i < shown; ++i) {
    if (i) text += separator;
    text += plan.inventory.nodes[nodes[i]].name;
  }
  if (nodes.size() > shown) text += fmt::format("{}+{} more", separator, nodes.size() - shown);
  return text;
}

std::size_t
total_flows(const std::vector<FlowGroup>& groups)
{
  std::size_t total = 0;
  for (const auto& group : groups) total += group.flows;
  return total;
}

nlohmann::json
groups_json(const Plan& plan)
{
  auto names = [&](const std::vector<std::size_t>& nodes) {
    auto list = nlohmann::json::array();
    for (auto node : nodes) list.push_back(plan.inventory.nodes[node].name);
    return list;
  };
  auto groups = nlohmann::json::array();
  for (const auto& group : plan.flow_groups()) {
    const auto& r = *group.requirement;
    groups.push_back({{"from", names(group.from)},
                      {"to", group.vip ? nlohmann::json("vip") : names(group.to)},
                      {"protocol", to_string(r.protocol)},
                      {"port_min", group.range.min},
                      {"port_max", group.range.max},
                      {"port_name", r.port},
                      {"purpose", r.purpose},
                      {"expect", to_string(r.expect)},
                      {"flows", group.flows}});
  }
  return groups;
}

// The "flows" array, as nlohmann would indent it at depth 1, keys sorted.
void
write_json_flows(Writer& out, const Plan& plan)
{
  std::vector<std::string> names;
  std::vector<std::string> addresses;
  for (const auto& node : plan.inventory.nodes) {
    names.push_back(quoted(node.name));
    addresses.push_back(quoted(node.address));
  }
  const std::string vip = quoted("vip");
  const std::string vip_address = quoted(plan.inventory.loadbalancer ? plan.inventory.loadbalancer->vip : "");
  RequirementChange changed;
  std::string expect;  // up to the source's name
  std::string ports;   // from port_max to the destination's name
  bool first = true;
  out << "[";
  plan.for_each_flow([&](const Flow& flow) {
    if (changed(flow)) {
      expect = fmt::format("    {{\n      \"expect\": {},\n      \"from\": ", quoted(std::string(to_string(flow.expect))));
      ports = fmt::format(",\n      \"port_max\": {},\n      \"port_min\": {},\n      \"port_name\": {},\n"
                          "      \"protocol\": {},\n      \"purpose\": {},\n      \"to\": ",
                          flow.range.max,
                          flow.range.min,
                          quoted(flow.port),
                          quoted(std::string(to_string(flow.protocol))),
                          quoted(flow.purpose));
    }
    auto& text = out.buffer();
    text += first ? "\n" : ",\n";
    first = false;
    text += expect;
    text += names[flow.from];
    text += ",\n      \"from_address\": ";
    text += addresses[flow.from];
    text += ports;
    text += flow.to ? names[*flow.to] : vip;
    text += ",\n      \"to_address\": ";
    text += flow.to ? addresses[*flow.to] : vip_address;
    text += "\n    }";
    out.done();
  });
  out << (first ? "]" : "\n  ]");
}

void
write_json(Writer& writer, const Matrix& matrix, const Plan* plan, FlowsView view)
{
  nlohmann::json out;
  const auto& profile = matrix.profile;
  out["profile"] = {{"name", profile.name},
                    {"version", profile.version},
                    {"description", profile.description},
                    {"includes", profile.includes},
                    {"validated_with", profile.validated_with}};
  out["options"] = matrix.options;
  out["ports"] = nlohmann::json::array();
  for (const auto& port : profile.ports) {
    std::vector<std::string> protocols;
    for (auto protocol : port.protocols) protocols.emplace_back(to_string(protocol));
    out["ports"].push_back({{"name", port.name},
                            {"port_min", port.range.min},
                            {"port_max", port.range.max},
                            {"protocols", protocols},
                            {"purpose", port.purpose}});
  }
  out["requirements"] = nlohmann::json::array();
  for (const auto& requirement : profile.requirements) {
    auto json = requirement_json(requirement);
    if (plan) json["active"] = matrix.active(requirement);
    out["requirements"].push_back(std::move(json));
  }
  out["egress"] = nlohmann::json::array();
  for (const auto& host : profile.egress) {
    nlohmann::json ports = nlohmann::json::array();
    for (const auto& port : host.ports) ports.push_back(port.port);
    nlohmann::json item{{"host", host.host}, {"ports", std::move(ports)}, {"purpose", host.purpose}, {"reason", host.reason}};
    if (!host.serves.empty()) item["serves"] = host.serves;
    if (!host.when.empty()) {
      auto& when = item["when"] = nlohmann::json::object();
      for (const auto& condition : host.when) when[condition.option] = condition.value;
    }
    out["egress"].push_back(std::move(item));
  }
  if (plan) out["untested"] = untested_json(untested_requirements(*plan));
  if (plan && view == FlowsView::groups) out["flow_groups"] = groups_json(*plan);
  if (!plan || view == FlowsView::groups) {
    writer << out.dump(2) << "\n";
    return;
  }
  out["flows"] = nlohmann::json::array(); // the placeholder: top-level keys are indented by two
  const std::string placeholder = "\n  \"flows\": []";
  auto text = out.dump(2);
  auto at = text.find(placeholder);
  writer << std::string_view(text).substr(0, at + placeholder.size() - 2);
  write_json_flows(writer, *plan);
  writer << std::string_view(text).substr(at + placeholder.size()) << "\n";
}

void
write_csv_flows(Writer& out, const Plan& plan)
{
  out << "from,to,to_address,protocol,port_min,port_max,port_name,purpose,expect\n";
  const std::string vip_address = plan.inventory.loadbalancer ? plan.inventory.loadbalancer->vip : "";
  RequirementChange changed;
  std::string tail; // from the protocol to the end of the line
  plan.for_each_flow([&](const Flow& flow) {
    if (changed(flow)) {
      tail = fmt::format(",{},{},{},{},{},{}\n",
                         to_string(flow.protocol),
                         flow.range.min,
                         flow.range.max,
                         flow.port,
                         csv_field(flow.purpose),
                         to_string(flow.expect));
    }
    auto& text = out.buffer();
    text += plan.inventory.nodes[flow.from].name;
    text += ',';
    text += flow.to ? plan.inventory.nodes[*flow.to].name : "vip";
    text += ',';
    text += flow.to ? plan.inventory.nodes[*flow.to].address : vip_address;
    text += tail;
    out.done();
  });
}

void
write_csv_groups(Writer& out, const Plan& plan)
{
  out << "from,to,protocol,port_min,port_max,port_name,purpose,expect,flows\n";
  for (const auto& group : plan.flow_groups()) {
    const auto& r = *group.requirement;
    auto list = [&](const std::vector<std::size_t>& nodes) {
      return "\"" + node_list(plan, nodes, " ", nodes.size()) + "\"";
    };
    out << fmt::format("{},{},{},{},{},{},{},{},{}\n",
                       list(group.from),
                       group.vip ? std::string("vip") : list(group.to),
                       to_string(r.protocol),
                       group.range.min,
                       group.range.max,
                       r.port,
                       csv_field(r.purpose),
                       to_string(r.expect),
                       group.flows);
  }
}

void
write_csv(Writer& writer, const Matrix& matrix, const Plan* plan, FlowsView view)
{
  if (plan) {
    if (view == FlowsView::groups) {
      write_csv_groups(writer, *plan);
    } else {
      write_csv_flows(writer, *plan);
    }
    return;
  }
  std::string out = "from_role,to_role,protocol,port_min,port_max,port_name,purpose,optional,when,expect,reason\n";
  for (const auto& r : matrix.profile.requirements) {
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{}\n",
                       to_string(r.from),
                       to_string(r.to),
                       to_string(r.protocol),
                       r.range.min,
                       r.range.max,
                       r.port,
                       csv_field(r.purpose),
                       r.optional ? "true" : "false",
                       csv_field(to_string(r.when)),
                       to_string(r.expect),
                       csv_field(r.reason));
  }
  writer << out;
}

// The flows table, one line per pair. Markdown needs no widths; the text
// table takes a first visit for them (and the count), then prints.
void
write_text_flows(Writer& out, const Plan& plan, bool markdown)
{
  const std::string vip_address = plan.inventory.loadbalancer ? plan.inventory.loadbalancer->vip : "";
  const std::array<std::string_view, 7> header{"From", "To", "Address", "Protocol", "Port", "Purpose", "Expect"};
  RequirementChange changed;
  std::string port;
  auto row = [&](const Flow& flow) {
    if (changed(flow)) port = port_label(flow.range, flow.protocol);
    return std::array<std::string_view, 7>{plan.inventory.nodes[flow.from].name,
                                           flow.to ? std::string_view(plan.inventory.nodes[*flow.to].name) : "vip",
                                           flow.to ? std::string_view(plan.inventory.nodes[*flow.to].address) : vip_address,
                                           to_string(flow.protocol),
                                           port,
                                           flow.purpose,
                                           to_string(flow.expect)};
  };
  if (markdown) {
    auto groups = plan.flow_groups();
    out << fmt::format("\n## Flows ({})\n\n", total_flows(groups));
    auto& text = out.buffer();
    text += '|';
    for (auto cell : header) append_md_cell(text, cell);
    text += "\n|---|---|---|---|---|---|---|\n";
    plan.for_each_flow([&](const Flow& flow) {
      out.buffer() += '|';
      for (auto cell : row(flow)) append_md_cell(out.buffer(), cell);
      out.buffer() += '\n';
      out.done();
    });
    return;
  }
  TableLayout layout(header.size());
  layout.measure(header);
  std::size_t count = 0;
  plan.for_each_flow([&](const Flow& flow) {
    layout.measure(row(flow));
    ++count;
  });
  out << fmt::format("\nFlows ({})\n  ", count);
  layout.append_line(out.buffer(), header);
  plan.for_each_flow([&](const Flow& flow) {
    out.buffer() += "  ";
    layout.append_line(out.buffer(), row(flow));
    out.done();
  });
}

void
write_text(Writer& writer, const Matrix& matrix, const Plan* plan, bool markdown, FlowsView view)
{
  std::string out;
  auto heading = [&](const std::string& title) {
    out += markdown ? fmt::format("\n## {}\n\n", title) : fmt::format("\n{}\n", title);
  };
  auto table = [&](std::vector<std::string> header, const std::vector<std::vector<std::string>>& rows) {
    if (markdown) {
      out += "|";
      for (auto& cell : header) append_md_cell(out, cell);
      out += "\n|";
      for (std::size_t i = 0; i < header.size(); ++i) out += "---|";
      out += "\n";
      for (const auto& row : rows) {
        out += "|";
        for (const auto& cell : row) append_md_cell(out, cell);
        out += "\n";
      }
    } else {
      TextTable text(std::move(header));
      for (const auto& row : rows) text.add(row);
      std::string rendered = text.render();
      std::string indented;
      std::size_t start = 0;
      while (start < rendered.size()) {
        auto end = rendered.find('\n', start);
        indented += "  " + rendered.substr(start, end - start + 1);
        start = end + 1;
      }
      out += indented;
    }
  };

  out += markdown ? "# " + header_text(matrix) + "\n" : header_text(matrix) + "\n";
  if (plan) {
    std::string options;
    for (const auto& [name, value] : matrix.options) options += fmt::format("{}{}={}", options.empty() ? "" : ", ", name, value);
    out += fmt::format("{}inventory {} (cluster {}), {} nodes{}\n",
                       markdown ? "\n" : "",
                       plan->inventory.file,
                       plan->inventory.cluster,
                       plan->inventory.nodes.size(),
                       options.empty() ? "" : "; options: " + options);
  }
  for (const auto& [title, requirements] : sections(matrix)) {
    heading(title);
    std::vector<std::vector<std::string>> rows;
    for (const auto* r : requirements) {
      std::vector<std::string> row{port_label(r->range, r->protocol),
                                   protocol_label(*r),
                                   r->purpose,
                                   requirement_status(*r, matrix, plan != nullptr),
                                   r->origin};
      if (markdown) row.push_back(r->reason);
      rows.push_back(std::move(row));
    }
    std::vector<std::string> header{"Port", "Protocol", "Purpose", "Required", "From profile"};
    if (markdown) header.emplace_back("Why");
    table(std::move(header), rows);
  }
  if (!matrix.profile.egress.empty()) {
    heading("Internet access (egress during installation)");
    std::vector<std::vector<std::string>> rows;
    for (const auto& host : matrix.profile.egress) {
      std::string ports;
      for (auto port : host.ports) {
        ports += fmt::format("{}{}{}", ports.empty() ? "" : ",", port.port, port.scheme == EgressScheme::http ? "/http" : "");
      }
      std::string served; // the first few concrete hosts: the JSON has them all
      for (std::size_t i = 0; i < host.serves.size() && i < 3; ++i) served += (i ? ", " : "") + host.serves[i];
      if (host.serves.size() > 3) served += fmt::format(" +{} more", host.serves.size() - 3);
      for (std::size_t i = 0; i < host.when.size(); ++i) {
        served += fmt::format("{}{}: {}", i ? ", " : served.empty() ? "when " : "; when ", host.when[i].option,
                              host.when[i].value);
      }
      rows.push_back({host.host, ports, host.purpose, host.origin, served});
    }
    table({"Host", "TCP", "Purpose", "From profile", "Checked as"}, rows);
  }
  if (plan && view == FlowsView::groups) {
    auto groups = plan->flow_groups();
    heading(fmt::format("Flow groups ({} requirements, {} flows)", groups.size(), total_flows(groups)));
    std::vector<std::vector<std::string>> rows;
    for (const auto& group : groups) {
      const auto& r = *group.requirement;
      rows.push_back({group.from.empty() ? "-" : node_list(*plan, group.from, ", ", 2),
                      group.vip ? "vip" : group.to.empty() ? "-" : node_list(*plan, group.to, ", ", 2),
                      std::string(to_string(r.protocol)),
                      port_label(group.range, r.protocol),
                      r.purpose,
                      std::string(to_string(r.expect)),
                      fmt::format("{}", group.flows)});
    }
    table({"From", "To", "Protocol", "Port", "Purpose", "Expect", "Flows"}, rows);
  }
  if (plan) {
    // What the inventory gives the check no flow for: said before the flows,
    // where a reader of a long table still sees it.
    if (auto lines = untested_lines(untested_requirements(*plan)); !lines.empty()) {
      heading("Untested requirements");
      for (const auto& line : lines) out += (markdown ? "    " : "  ") + line + "\n";
    }
  }
  writer << out;
  if (plan && view == FlowsView::pairs) write_text_flows(writer, *plan, markdown);
}} // namespace

void
write_ports(std::ostream& out, const Matrix& matrix, const Plan* plan, PortsFormat format, FlowsView view)
{
  Writer writer(out);
  switch (format) {
  case PortsFormat::json: write_json(writer, matrix, plan, view); break;
  case PortsFormat::csv: write_csv(writer, matrix, plan, view); break;
  case PortsFormat::markdown: write_text(writer, matrix, plan, true, view); break;
  case PortsFormat::table: write_text(writer, matrix, plan, false, view); break;
  }
}

std::string
render_ports(const Matrix& matrix, const Plan* plan, PortsFormat format, FlowsView view)
{
  std::ostringstream out;
  write_ports(out, matrix, plan, format, view);
  return out.str();
}

std::string
render_diff(const ProfileDiff& diff, PortsFormat format)
{
  if (format == PortsFormat::json) {
    nlohmann::json out{{"from", diff.from}, {"to", diff.to}};
    out["requirements"] = nlohmann::json::array();
    for (const auto& change : diff.requirements) {
      nlohmann::json item{{"change", to_string(change.change)}};
      if (change.change != Change::added) item["before"] = requirement_json(change.before);
      if (change.change != Change::removed) item["after"] = requirement_json(change.after);
      if (!change.fields.empty()) item["fields"] = change.fields;
      if (!change.reason.empty()) item["reason"] = change.reason;
      out["requirements"].push_back(std::move(item));
    }
    out["ports"] = nlohmann::json::array();
    for (const auto& change : diff.ports) {
      const auto& port = change.change == Change::removed ? change.before : change.after;
      nlohmann::json item{{"change", to_string(change.change)},
                          {"name", port.name},
                          {"port_min", port.range.min},
                          {"port_max", port.range.max}};
      out["ports"].push_back(std::move(item));
    }
    out["egress"] = nlohmann::json::array();
    for (const auto& change : diff.egress) {
      nlohmann::json item{{"change", to_string(change.change)}, {"host", change.host.host}, {"reason", change.host.reason}};
      if (change.change == Change::changed) item["fields"] = change.fields;
      if (!change.host.serves.empty()) item["serves"] = change.host.serves;
      out["egress"].push_back(std::move(item));
    }
    return out.dump(2) + "\n";
  }
  bool markdown = format == PortsFormat::markdown;
  std::string out = fmt::format("{}{} → {}: {} requirement(s), {} port(s), {} egress host(s) differ\n",
                                markdown ? "# " : "",
                                diff.from,
                                diff.to,
                                diff.requirements.size(),
                                diff.ports.size(),
                                diff.egress.size());
  auto describe = [](const Requirement& r) {
    std::string text = fmt::format("{} {}/{} ({})", direction(r), port_label(r.range, r.protocol), to_string(r.protocol), r.port);
    if (r.expect == Expect::deny) text += " must be denied";
    if (r.optional) text += " optional";
    if (!r.when.empty()) text += " when " + to_string(r.when);
    return text;
  };
  auto bullet = markdown ? "- " : "  ";
  for (const auto& change : diff.requirements) {
    const auto& r = change.change == Change::removed ? change.before : change.after;
    out += fmt::format("\n{}{:<8} {}\n", bullet, to_string(change.change), describe(r));
    if (change.change == Change::changed) {
      std::string fields;
      for (const auto& field : change.fields) fields += (fields.empty() ? "" : ", ") + field;
      out += fmt::format("{}         was {} ({} differ)\n", markdown ? "  " : "  ", describe(change.before), fields);
    }
    if (!change.reason.empty()) out += fmt::format("{}         why: {}\n", markdown ? "  " : "  ", change.reason);
  }
  for (const auto& change : diff.ports) {
    const auto& port = change.change == Change::removed ? change.before : change.after;
    bool portless = port.protocols.size() == 1 && !has_ports(port.protocols[0]);
    out += fmt::format("\n{}{:<8} port {} {}\n", bullet, to_string(change.change), port.name,
                       portless ? fmt::format("(no port: {})", to_string(port.protocols[0])) : to_string(port.range));
  }
  for (const auto& change : diff.egress) {
    std::string what;
    for (const auto& field : change.fields) what += (what.empty() ? " (" : ", ") + field;
    if (!what.empty()) what += ")";
    out += fmt::format("\n{}{:<8} egress {}{}\n", bullet, to_string(change.change), change.host.host, what);
    if (!change.host.serves.empty()) {
      std::string served;
      for (const auto& name : change.host.serves) served += (served.empty() ? "" : ", ") + name;
      out += fmt::format("{}         checked as: {}\n", markdown ? "  " : "  ", served);
    }
    if (!change.host.reason.empty()) out += fmt::format("{}         why: {}\n", markdown ? "  " : "  ", change.host.reason);
  }
  return out;
}

} // namespace portmatrix
