// The check report as one self-contained HTML page, to keep as a CI artefact
// or mail to whoever owns the firewall: no script, nothing fetched. A header
// says what was checked with what and when; a picture of the cluster (node x
// node, foldable to role x role; a cell per pair coloured by its worst
// verdict, linking to its flows; <details> folds, so no script is needed);
// the failures by cause and place, the untested flows, the agents, egress
// when checked, then every flow in a table per direction. It prints well.
#include "report/check_report_parts.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

namespace portmatrix::check_report {

namespace {

// Past this many nodes the page opens on role x role (node x node stays, folded).
constexpr std::size_t k_open_node_matrix = 24;
// Past this many, node x node is left out (its cells would outweigh the page:
// 40,000 at 200 nodes); role x role remains.
constexpr std::size_t k_max_node_matrix = 200;

constexpr const char* k_style = R"(
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr.fail td.verdict, td.cell.fail, .status.fail { background: #f8d0d0; font-weight: bold; }
tr.skip td.verdict, td.cell.skip, .status.incomplete { background: #f8eec0; }
tr.pass td.verdict, td.cell.pass, .status.pass { background: #d4f0d4; }
td.cell.none { background: #fafafa; }
td.cell { text-align: center; min-width: 1.6em; padding: 0.1em 0.3em; }
td.cell a { color: inherit; text-decoration: none; display: block; }
table.matrix th { font-weight: normal; white-space: nowrap; }
.status { display: inline-block; padding: 0.2em 0.6em; }
table.about th { text-align: right; }
code { font-size: 0.9em; }
ul { margin: 0; padding-left: 1.2em; }
details > summary { cursor: pointer; margin: 0.5em 0; }
.legend span { padding: 0 0.5em; margin-right: 0.5em; }
@media print {
  body { margin: 0; font-size: 9pt; }
  details > summary { list-style: none; }
  a { color: inherit; text-decoration: none; }
  table, tr, li { page-break-inside: avoid; }
  h2 { page-break-after: avoid; }
  tr.fail td.verdict, td.cell, .status { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
)";

int
worst_rank(Verdict verdict)
{
  switch (verdict) {
  case Verdict::fail: return 3;
  case Verdict::skip: return 2;
  case Verdict::pass: return 1;
  }
  return 0;
}

// The flows of one cell: counted by verdict, the worst first seen linked.
struct Cell
{
  std::size_t passed = 0;
  std::size_t failed = 0;
  std::size_t skipped = 0;
  const FlowResult* worst = nullptr;

  void add(const FlowResult& r)
  {
    switch (r.verdict) {
    case Verdict::pass: ++passed; break;
    case Verdict::fail: ++failed; break;
    case Verdict::skip: ++skipped; break;
    }
    if (!worst || worst_rank(r.verdict) > worst_rank(worst->verdict)) worst = &r;
  }
};

std::string
row_id(const CheckReport& report, const FlowResult& r)
{
  return fmt::format("r{}", &r - report.results.data());
}

// What the probes measured between two nodes (CheckReport::pairs), for a
// cell's title: "; round trip 0.4 ms (p99 0.9 ms); path MTU 1400"; empty
// when nothing was (and for the role matrix's cells).
std::string
pair_text(const CheckReport& report, const std::string& from, const std::string& to)
{
  auto pair = std::find_if(report.pairs.begin(), report.pairs.end(),
                           [&](const PairMeasure& p) { return p.from == from && p.to == to; });
  if (pair == report.pairs.end()) return {};
  std::string text;
  if (pair->rtt_samples > 0) {
    text += fmt::format("; round trip {:.1f} ms (p99 {:.1f} ms)", pair->rtt_median.count() / 1000.0,
                        pair->rtt_p99.count() / 1000.0);
    if (pair->rtt_bound.count() > 0 && pair->rtt_median > pair->rtt_bound) {
      text += fmt::format(", above its {} ms bound", pair->rtt_bound.count());
    }
  }
  if (pair->path_mtu > 0) text += fmt::format("; path MTU {}", pair->path_mtu);
  return text;
}

// One <td>: class cell and the worst verdict (none: no flow), the pair in
// data-from / data-to, a title with the counts (and what the probes measured
// between the pair: pair_text), the text linking to the pair's first flow of
// its worst verdict (the others of that verdict follow it).
std::string
cell_html(const CheckReport& report, const std::string& from, const std::string& to, const Cell* cell,
          const std::string& anchor)
{
  auto attrs = fmt::format("data-from=\"{}\" data-to=\"{}\"", xml_escape(from), xml_escape(to));
  if (!cell) return fmt::format("<td class=\"cell none\" {} title=\"{} → {}: no flow\"></td>", attrs, xml_escape(from), xml_escape(to));
  auto verdict = to_string(cell->worst->verdict);
  auto title = fmt::format("{} → {}: {} passed, {} failed, {} skipped{}", from, to, cell->passed, cell->failed,
                           cell->skipped, pair_text(report, from, to));
  std::string text = cell->failed ? std::to_string(cell->failed) : cell->skipped ? "?" : "✓";
  auto href = anchor.empty() ? row_id(report, *cell->worst) : anchor;
  return fmt::format("<td class=\"cell {}\" {} title=\"{}\"><a href=\"#{}\">{}</a></td>", verdict, attrs,
                     xml_escape(title), xml_escape(href), text);
}

// Within a verdict, the flows of one node pair next to each other (pairs in
// order of first appearance), so that a cell's link, to the pair's first
// flow of its worst verdict, lands on all of the pair's flows of that verdict.
void
by_pair(const CheckReport& report, std::vector<const FlowResult*>& results)
{
  std::map<std::pair<std::string_view, std::string_view>, std::size_t> first;
  for (const auto& r : report.results) first.try_emplace({r.from, r.to}, first.size());
  std::stable_sort(results.begin(), results.end(), [&](const FlowResult* a, const FlowResult* b) {
    auto rank_a = -worst_rank(a->verdict), rank_b = -worst_rank(b->verdict);
    return std::tie(rank_a, first.at({a->from, a->to})) < std::tie(rank_b, first.at({b->from, b->to}));
  });
}

std::string
direction_id(Role from, Role to)
{
  return fmt::format("d-{}-{}", to_string(from), to_string(to));
}

std::string
node_matrix(const CheckReport& report)
{
  std::vector<std::string> nodes;
  std::set<std::string> known;
  auto note = [&](const std::string& name) {
    if (name != "vip" && known.insert(name).second) nodes.push_back(name);
  };
  for (const auto& a : report.agents) note(a.node);
  bool vip = false;
  std::map<std::pair<std::string, std::string>, Cell> cells;
  for (const auto& r : report.results) {
    note(r.from);
    note(r.to);
    vip = vip || r.to == "vip";
    cells[{r.from, r.to}].add(r);
  }
  if (nodes.size() > k_max_node_matrix) {
    return fmt::format("<p id=\"node-matrix-left-out\">Node × node is left out for {} nodes (more than {}); "
                       "role × role follows.</p>\n",
                       nodes.size(), k_max_node_matrix);
  }
  auto open = nodes.size() <= k_open_node_matrix ? " open" : "";
  std::string out = fmt::format("<details id=\"node-matrix\"{}><summary>Node × node ({} nodes; a row per source, a column "
                                "per destination)</summary>\n<table class=\"matrix\">\n<tr><th>from \\ to</th>",
                                open, nodes.size());
  for (const auto& to : nodes) out += "<th>" + xml_escape(to) + "</th>";
  if (vip) out += "<th>vip</th>";
  out += "</tr>\n";
  for (const auto& from : nodes) {
    out += "<tr><th>" + xml_escape(from) + "</th>";
    for (const auto& to : nodes) {
      auto it = cells.find({from, to});
      out += cell_html(report, from, to, it == cells.end() ? nullptr : &it->second, {});
    }
    if (vip) {
      auto it = cells.find({from, "vip"});
      out += cell_html(report, from, "vip", it == cells.end() ? nullptr : &it->second, {});
    }
    out += "</tr>\n";
  }
  out += "</table>\n</details>\n";
  return out;
}

std::string
role_matrix(const CheckReport& report, std::size_t nodes)
{
  std::set<Role> from_roles, to_roles;
  std::map<std::pair<Role, Role>, Cell> cells;
  for (const auto& r : report.results) {
    from_roles.insert(r.flow.from_role);
    to_roles.insert(r.flow.to_role);
    cells[{r.flow.from_role, r.flow.to_role}].add(r);
  }
  auto open = nodes > k_open_node_matrix ? " open" : "";
  std::string out = fmt::format("<details id=\"role-matrix\"{}><summary>Role × role (the flows of each direction)</summary>\n"
                                "<table class=\"matrix\">\n<tr><th>from \\ to</th>",
                                open);
  for (auto to : to_roles) out += "<th>" + xml_escape(to_string(to)) + "</th>";
  out += "</tr>\n";
  for (auto from : from_roles) {
    out += "<tr><th>" + xml_escape(to_string(from)) + "</th>";
    for (auto to : to_roles) {
      auto it = cells.find({from, to});
      out += cell_html(report, std::string(to_string(from)), std::string(to_string(to)),
                       it == cells.end() ? nullptr : &it->second, direction_id(from, to));
    }
    out += "</tr>\n";
  }
  out += "</table>\n</details>\n";
  return out;
}

std::string
about(const CheckReport& report)
{
  auto row = [](std::string_view name, const std::string& value) {
    return fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", name, value.empty() ? "unknown" : xml_escape(value));
  };
  std::string profile = report.profile + (report.profile_version.empty() ? "" : " " + report.profile_version);
  auto started = utc_text(report.started);
  return "<table class=\"about\">\n" + row("Cluster", report.cluster) + row("Profile", profile) +
         row("portmatrix", report.portmatrix) +
         fmt::format("<tr><th>Inventory SHA-256</th><td><code>{}</code></td></tr>\n",
                     report.inventory_sha256.empty() ? "unknown" : xml_escape(report.inventory_sha256)) +
         row("Started", started.empty() ? "" : started.replace(10, 1, " ").replace(started.size() - 1, 1, " UTC")) +
         row("Duration", fmt::format("{:.2f} s", report.duration.count() / 1000.0)) + "</table>\n";
}

// The failures, a line per cause and place, each linking to its first flow.
std::string
causes(const CheckReport& report, Verdict verdict, std::string_view id, std::string_view title)
{
  auto groups = cause_groups(report, verdict);
  if (groups.empty()) return {};
  std::string out = fmt::format("<h2 id=\"{}\">{}</h2>\n<ul>\n", id, title);
  for (const auto& group : groups) {
    out += fmt::format("<li><a href=\"#{}\">{}</a>", row_id(report, *group.flows.front()), xml_escape(cause_text(group)));
    if (!group.detail.empty()) out += " — " + xml_escape(group.detail);
    out += "</li>\n";
  }
  return out + "</ul>\n";
}

std::string
egress(const CheckReport& report)
{
  if (report.egress.empty()) return {};
  std::string out = "<h2 id=\"egress\">Egress (from every node)</h2>\n<table>\n"
                    "<tr><th>Node</th><th>Verdict</th><th>Host</th><th>Port</th><th>Via</th><th>Detail</th></tr>\n";
  std::size_t ok = 0;
  for (const auto& node : report.egress) {
    if (!node.error.empty()) {
      out += fmt::format("<tr><td>{}</td><td class=\"cell fail\">error</td><td></td><td></td><td></td><td>{}</td></tr>\n",
                         xml_escape(node.node), xml_escape(node.error));
    }
    for (const auto& r : node.results) {
      if (r.verdict == EgressVerdict::ok) {
        ++ok;
        continue;
      }
      out += fmt::format("<tr><td>{}</td><td class=\"cell fail\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                         xml_escape(node.node), xml_escape(to_string(r.verdict)), xml_escape(r.target.host),
                         r.target.port.port, xml_escape(r.proxy.empty() ? "direct" : r.proxy), xml_escape(r.detail));
    }
  }
  out += "</table>\n";
  return out + fmt::format("<p>{} host check(s) ok on {} node(s)</p>\n", ok, report.egress.size());
}

// Each node's preflight: counts, and what failed.
std::string
preflight(const CheckReport& report)
{
  if (report.preflight.empty()) return {};
  std::string out = "<h2 id=\"preflight\">Preflight (each node, before its agent)</h2>\n<table>\n"
                    "<tr><th>Node</th><th>Passed</th><th>Failed</th><th>Warnings</th><th>What failed</th></tr>\n";
  for (const auto& node : report.preflight) {
    if (!node.error.empty()) {
      out += fmt::format("<tr><td>{}</td><td></td><td class=\"cell fail\">not run</td><td></td><td>{}</td></tr>\n",
                         xml_escape(node.node), xml_escape(node.error));
      continue;
    }
    std::string failures;
    for (const auto& failure : node.failures) failures += "<li>" + xml_escape(failure) + "</li>";
    out += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"cell {}\">{}</td><td>{}</td><td>{}</td></tr>\n",
                       xml_escape(node.node), node.passed, node.failed ? "fail" : "pass", node.failed, node.warnings,
                       failures.empty() ? "" : "<ul>" + failures + "</ul>");
  }
  return out + "</table>\n";
}

} // namespace

std::string
render_html(const CheckReport& report)
{
  auto status = run_status(report);
  std::string out = fmt::format(R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>portmatrix check: {0}</title>
<style>{1}</style>
</head>
<body>
<h1>portmatrix check: {0}</h1>
<p class="summary"><span class="status {2}">{3}</span> {4}</p>
)",
                                xml_escape(report.cluster), k_style, status, status == "pass" ? "PASS" : status == "fail" ? "FAIL" : "INCOMPLETE",
                                xml_escape(summary_text(report)));
  out += about(report);
  std::set<std::string> nodes;
  for (const auto& a : report.agents) nodes.insert(a.node);
  for (const auto& r : report.results) nodes.insert(r.from);
  out += "<h2 id=\"matrix\">The cluster</h2>\n<p class=\"legend\"><span class=\"status pass\">✓ passed</span>"
         "<span class=\"status fail\">N failed</span><span class=\"status incomplete\">? untested</span>"
         "(a cell shows its worst verdict and links to its flows of that verdict)</p>\n";
  out += node_matrix(report) + role_matrix(report, nodes.size());
  out += causes(report, Verdict::fail, "failures", "Failures by cause");
  if (auto places = untested_places(report); !places.empty()) {
    out += "<h2 id=\"untested\">Untested</h2>\n<ul>\n";
    for (const auto& place : places) {
      out += fmt::format("<li><a href=\"#{}\">{}</a></li>\n", row_id(report, *place.first), xml_escape(untested_text(place)));
    }
    out += "</ul>\n";
  }
  auto notes = agent_notes(report);
  if (!notes.empty()) {
    out += "<h2>Agents</h2>\n<ul>\n";
    for (const auto& note : notes) out += "<li>" + xml_escape(note) + "</li>\n";
    out += "</ul>\n";
  }
  out += egress(report);
  out += preflight(report);
  out += "<h2 id=\"flows\">Every flow</h2>\n";
  for (auto& [direction, results] : by_direction(report)) {
    by_pair(report, results);
    const auto& first = *results.front();
    out += fmt::format("<h2 id=\"{}\">{}</h2>\n<table>\n<tr><th>Verdict</th><th>From</th><th>To</th><th>Ports</th>"
                       "<th>Purpose</th><th>Diagnosis</th><th>Detail</th></tr>\n",
                       direction_id(first.flow.from_role, first.flow.to_role), xml_escape(direction));
    for (const auto* r : results) {
      std::string detail;
      for (const auto& f : r->failures) {
        detail += fmt::format("<li>{}{}: {}</li>", xml_escape(failure_ports(f.ports, r->flow.protocol)), xml_escape(f.state),
                              xml_escape(f.detail));
      }
      if (r->to == "vip") detail += "<li>" + xml_escape(backends_text(*r)) + "</li>";
      if (!r->answered_by.empty()) detail += "<li>answered by " + xml_escape(r->answered_by) + "</li>";
      if (!detail.empty()) detail = "<ul>" + detail + "</ul>";
      auto verdict = std::string(to_string(r->verdict));
      out += fmt::format("<tr class=\"{0}\"><td class=\"verdict\" id=\"{7}\">{0}</td><td>{1}</td><td>{2}</td><td>{3}</td>"
                         "<td>{4}</td><td>{5}</td><td>{6}</td></tr>\n",
                         verdict, xml_escape(r->from), xml_escape(r->to),
                         xml_escape(ports_text(r->flow.range, r->flow.protocol)), xml_escape(r->flow.purpose),
                         xml_escape(r->diagnosis), detail, row_id(report, *r));
    }
    out += "</table>\n";
  }
  out += "</body>\n</html>\n";
  return out;
}

} // namespace portmatrix::check_report
