// The ports table follows the guide's layout: one section per direction
// (worker -> master, ...), in the order the profile first names it, then the
// flows that must stay closed, the egress hosts, and the concrete flows.
#include "report/ports_report.hpp"

#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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

namespace {

std::string
direction(const Requirement& requirement)
{
  return fmt::format("{} → {}", to_string(requirement.from), to_string(requirement.to));
}

std::string
requirement_status(const Requirement& requirement, const Matrix& matrix, bool with_inventory)
{
  std::string text = requirement.optional ? "optional" : "required";
  if (requirement.when) text += fmt::format(" when {}={}", requirement.when->option, requirement.when->value);
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
  return protocol == Protocol::vrrp ? "-" : to_string(range);
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

std::string
md_cell(std::string text)
{
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
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
  if (requirement.when) json["when"] = {{requirement.when->option, requirement.when->value}};
  return json;
}

std::string
render_json(const Matrix& matrix, const Plan* plan)
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
    if (host.when) item["when"] = {{host.when->option, host.when->value}};
    out["egress"].push_back(std::move(item));
  }
  if (plan) {
    out["flows"] = nlohmann::json::array();
    for (const auto& flow : plan->flows()) {
      out["flows"].push_back({{"from", plan->inventory.nodes[flow.from].name},
                              {"from_address", plan->inventory.nodes[flow.from].address},
                              {"to", plan->flow_target(flow)},
                              {"to_address", plan->flow_address(flow)},
                              {"protocol", to_string(flow.protocol)},
                              {"port_min", flow.range.min},
                              {"port_max", flow.range.max},
                              {"port_name", flow.port},
                              {"purpose", flow.purpose},
                              {"expect", to_string(flow.expect)}});
    }
  }
  return out.dump(2) + "\n";
}

std::string
render_csv(const Matrix& matrix, const Plan* plan)
{
  std::string out;
  if (plan) {
    out = "from,to,to_address,protocol,port_min,port_max,port_name,purpose,expect\n";
    for (const auto& flow : plan->flows()) {
      out += fmt::format("{},{},{},{},{},{},{},{},{}\n",
                         plan->inventory.nodes[flow.from].name,
                         plan->flow_target(flow),
                         plan->flow_address(flow),
                         to_string(flow.protocol),
                         flow.range.min,
                         flow.range.max,
                         flow.port,
                         csv_field(flow.purpose),
                         to_string(flow.expect));
    }
    return out;
  }
  out = "from_role,to_role,protocol,port_min,port_max,port_name,purpose,optional,when,expect,reason\n";
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
                       r.when ? r.when->option + "=" + r.when->value : "",
                       to_string(r.expect),
                       csv_field(r.reason));
  }
  return out;
}

std::string
render_text(const Matrix& matrix, const Plan* plan, bool markdown)
{
  std::string out;
  auto heading = [&](const std::string& title) {
    out += markdown ? fmt::format("\n## {}\n\n", title) : fmt::format("\n{}\n", title);
  };
  auto table = [&](std::vector<std::string> header, const std::vector<std::vector<std::string>>& rows) {
    if (markdown) {
      std::string line = "|";
      std::string rule = "|";
      for (auto& cell : header) {
        line += " " + md_cell(cell) + " |";
        rule += "---|";
      }
      out += line + "\n" + rule + "\n";
      for (const auto& row : rows) {
        line = "|";
        for (const auto& cell : row) line += " " + md_cell(cell) + " |";
        out += line + "\n";
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
      if (host.when) served += fmt::format("{}when {}: {}", served.empty() ? "" : "; ", host.when->option, host.when->value);
      rows.push_back({host.host, ports, host.purpose, host.origin, served});
    }
    table({"Host", "TCP", "Purpose", "From profile", "Checked as"}, rows);
  }
  if (plan) {
    auto flows = plan->flows();
    heading(fmt::format("Flows ({})", flows.size()));
    std::vector<std::vector<std::string>> rows;
    for (const auto& flow : flows) {
      rows.push_back({plan->inventory.nodes[flow.from].name,
                      plan->flow_target(flow),
                      plan->flow_address(flow),
                      std::string(to_string(flow.protocol)),
                      port_label(flow.range, flow.protocol),
                      flow.purpose,
                      std::string(to_string(flow.expect))});
    }
    table({"From", "To", "Address", "Protocol", "Port", "Purpose", "Expect"}, rows);
  }
  return out;
}

} // namespace

std::string
render_ports(const Matrix& matrix, const Plan* plan, PortsFormat format)
{
  switch (format) {
  case PortsFormat::json: return render_json(matrix, plan);
  case PortsFormat::csv: return render_csv(matrix, plan);
  case PortsFormat::markdown: return render_text(matrix, plan, true);
  case PortsFormat::table: return render_text(matrix, plan, false);
  }
  return {};
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
    if (r.when) text += fmt::format(" when {}={}", r.when->option, r.when->value);
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
    if (!r.reason.empty()) out += fmt::format("{}         why: {}\n", markdown ? "  " : "  ", r.reason);
  }
  for (const auto& change : diff.ports) {
    const auto& port = change.change == Change::removed ? change.before : change.after;
    bool portless = port.protocols.size() == 1 && port.protocols[0] == Protocol::vrrp;
    out += fmt::format("\n{}{:<8} port {} {}\n", bullet, to_string(change.change), port.name,
                       portless ? std::string("(no port: vrrp)") : to_string(port.range));
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
