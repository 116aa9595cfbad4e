// The preflight checks. Ports: the socket tables are read once and matched
// against the node's merged ranges, and owners of all taken ports are found
// in one pass over /proc, so the 5,536-port NodePort range costs nothing
// extra. Firewall: each flow is evaluated per run of ports with one
// decision (decide_by_interval), per source node. The live inputs (nft,
// iptables-save, ipset, firewall-cmd, ufw) are gathered here through
// util/process; the evaluators themselves never touch the system.
#include "preflight/preflight.hpp"

#include <algorithm>
#include <future>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "host/interfaces.hpp"
#include "identify/identify.hpp"
#include "preflight/iptables.hpp"
#include "preflight/nftables.hpp"
#include "util/process.hpp"

namespace portmatrix {
namespace {

std::string
join(const std::vector<std::string>& items, std::string_view separator = ", ")
{
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : std::string(separator)) + item;
  return out;
}

// The node's required ports by protocol, merged, with the names of the
// ports its inbound flows use in each range.
std::vector<PortsCheck>
required_ports(const Plan& plan, const Node& node)
{
  std::map<Protocol, std::vector<PortRange>> ranges;
  for (const auto& rule : plan.ingress(node)) {
    if (rule.protocol != Protocol::tcp && rule.protocol != Protocol::udp) continue;
    ranges[rule.protocol].insert(ranges[rule.protocol].end(), rule.ports.begin(), rule.ports.end());
  }
  std::vector<Flow> inbound;
  plan.for_each_flow([&](const Flow& flow) {
    bool to_node = flow.to ? &plan.inventory.nodes[*flow.to] == &node : node.has(Role::loadbalancer);
    if (to_node) inbound.push_back(flow);
  });
  std::vector<PortsCheck> checks;
  for (auto& [protocol, plain] : ranges) {
    for (const auto& merged : merge_ranges(plain)) {
      std::vector<std::string> names;
      for (const auto& flow : inbound) {
        if (flow.protocol == protocol && flow.range.overlaps(merged) && !flow.port.empty()
            && std::find(names.begin(), names.end(), flow.port) == names.end()) {
          names.push_back(flow.port);
        }
      }
      checks.push_back({protocol, merged, join(names), {}, CheckStatus::pass});
    }
  }
  return checks;
}

std::string
first_line(const std::string& text)
{
  return text.substr(0, text.find('\n'));
}

// Where iptables-save shows the kernel's legacy tables (iptables-nft rules
// are already in nft's ruleset): iptables-legacy-save, or iptables-save when
// it is the legacy variant.
std::string
legacy_save(const std::string& family)
{
  auto legacy = family + "-legacy-save";
  if (have_program(legacy)) return run_process({legacy}).output;
  auto save = family + "-save";
  if (have_program(save) && run_process({save, "-V"}).output.find("legacy") != std::string::npos) {
    return run_process({save}).output;
  }
  return {};
}

std::vector<FirewallManager>
find_managers()
{
  std::vector<FirewallManager> managers;
  if (have_program("firewall-cmd") && first_line(run_process({"firewall-cmd", "--state"}).output) == "running") {
    std::istringstream lines(run_process({"firewall-cmd", "--list-all"}).output);
    std::vector<std::string> kept;
    for (std::string line; std::getline(lines, line);) {
      auto text = line.substr(std::min(line.find_first_not_of(' '), line.size()));
      for (const char* key : {"services:", "ports:", "sources:", "rich rules:", "target:"}) {
        if (text.starts_with(key) && text.size() > std::string_view(key).size()) kept.push_back(text);
      }
    }
    managers.push_back({"firewalld", "active; " + join(kept, "; ")});
  }
  if (have_program("ufw")) {
    auto status = run_process({"ufw", "status", "verbose"}).output;
    if (status.find("Status: active") != std::string::npos) {
      std::istringstream lines(status);
      std::vector<std::string> kept;
      for (std::string line; std::getline(lines, line);) {
        if (line.find("ALLOW") != std::string::npos || line.starts_with("Default:")) kept.push_back(line);
      }
      managers.push_back({"ufw", "active; " + join(kept, "; ")});
    }
  }
  return managers;
}

} // namespace

std::vector<PortsCheck>
check_ports(const Plan& plan, const Node& node, const std::vector<SocketEntry>& sockets, PreflightMode mode,
            const std::filesystem::path& proc)
{
  auto checks = required_ports(plan, node);
  std::unordered_set<std::uint64_t> inodes;
  std::vector<std::vector<std::uint64_t>> held_inodes(checks.size()); // parallel to each check's `held`
  for (std::size_t i = 0; i < checks.size(); ++i) {
    auto& check = checks[i];
    std::map<std::uint16_t, const SocketEntry*> taken; // a TCP listener; any UDP socket
    for (const auto& socket : sockets) {
      if (socket.protocol == check.protocol && socket.listening && check.range.min <= socket.port
          && socket.port <= check.range.max) {
        taken.try_emplace(socket.port, &socket);
      }
    }
    for (const auto& [port, socket] : taken) {
      check.held.push_back({port, socket->local_address, std::nullopt, {}});
      held_inodes[i].push_back(socket->inode);
      inodes.insert(socket->inode);
    }
  }
  auto pids = find_inode_owners(inodes, proc);
  for (std::size_t i = 0; i < checks.size(); ++i) {
    auto& check = checks[i];
    for (std::size_t j = 0; j < check.held.size(); ++j) {
      auto pid = pids.find(held_inodes[i][j]);
      if (pid != pids.end()) check.held[j].owner = process_info(pid->second, proc);
    }
    if (!check.held.empty()) check.status = mode == PreflightMode::install ? CheckStatus::fail : CheckStatus::info;
  }
  return checks;
}

void
identify_holders(const Profile& profile, const std::string& address, std::vector<PortsCheck>& ports,
                 std::chrono::milliseconds timeout)
{
  std::vector<std::pair<PortHolder*, std::future<Identification>>> asked;
  for (auto& check : ports) {
    if (check.protocol != Protocol::tcp) continue;
    for (auto& held : check.held) {
      if (asked.size() == k_identify_holders) break;
      bool wildcard = held.address.empty() || held.address == "0.0.0.0" || held.address == "::";
      auto host = wildcard ? address : held.address;
      auto hint = port_hint(profile, Protocol::tcp, held.port);
      asked.emplace_back(&held, std::async(std::launch::async, [host, port = held.port, hint, timeout] {
                           return identify(host, port, Protocol::tcp, hint, timeout);
                         }));
    }
  }
  for (auto& [held, answer] : asked) held->answered_by = answer.get().summary;
}

std::vector<FirewallResult>
check_firewall(const Plan& plan, const Node& node, const std::vector<const RuleEvaluator*>& firewalls,
               const std::string& interface)
{
  std::vector<std::uint32_t> breakpoints;
  for (const auto* firewall : firewalls) {
    auto more = firewall->breakpoints();
    breakpoints.insert(breakpoints.end(), more.begin(), more.end());
  }
  std::sort(breakpoints.begin(), breakpoints.end());
  breakpoints.erase(std::unique(breakpoints.begin(), breakpoints.end()), breakpoints.end());

  const auto& nodes = plan.inventory.nodes;
  std::vector<FirewallResult> results;
  plan.for_each_flow([&](const Flow& flow) {
    bool to_node = flow.to && &nodes[*flow.to] == &node;
    bool to_vip = !flow.to && node.has(Role::loadbalancer);
    if (!to_node && !to_vip) return;
    if (flow.protocol != Protocol::tcp && flow.protocol != Protocol::udp) return;
    const auto& source = nodes[flow.from];
    FirewallResult base{source.name, source.address, plan.flow_address(flow), flow.protocol, flow.range, flow.purpose, flow.expect, Decision::unknown, {}, CheckStatus::pass};
    auto from = IpAddress::parse(source.address);
    auto to = IpAddress::parse(base.to_address);
    if (!from || !to || from->v6 != to->v6) {
      base.decision = Decision::unknown;
      base.rule = "source and destination address families differ";
      base.status = CheckStatus::skip;
      results.push_back(std::move(base));
      return;
    }
    Packet packet{*from, *to, flow.protocol, 0, interface};
    auto runs = decide_by_interval(flow.range, breakpoints, [&](std::uint16_t port) {
      packet.port = port;
      std::vector<PortDecision> decisions;
      for (const auto* firewall : firewalls) decisions.push_back(firewall->decide(packet));
      return combine(decisions);
    });
    for (auto& run : runs) {
      auto result = base;
      result.ports = run.ports;
      result.decision = run.decision;
      result.rule = std::move(run.rule);
      bool admitted = run.decision == Decision::accept;
      if (run.decision == Decision::unknown) result.status = CheckStatus::warn;
      else result.status = admitted == (flow.expect == Expect::allow) ? CheckStatus::pass : CheckStatus::fail;
      results.push_back(std::move(result));
    }
  });
  return results;
}

FirewallText
read_firewall_text()
{
  FirewallText text;
  if (have_program("nft")) {
    text.nft_present = true;
    auto listed = run_process({"nft", "-j", "list", "ruleset"});
    text.nft_status = listed.status;
    text.nft = std::move(listed.output);
  }
  text.iptables = legacy_save("iptables");
  text.ip6tables = legacy_save("ip6tables");
  if (have_program("ipset")) text.ipset = run_process({"ipset", "save"}).output;
  return text;
}

Expected<LiveFirewalls, std::string>
parse_firewalls(const FirewallText& text)
{
  LiveFirewalls firewalls;
  std::vector<std::string> backends;
  if (text.nft_present) {
    if (text.nft_status != 0) return unexpected("nft -j list ruleset failed: " + first_line(text.nft));
    auto parsed = NftRuleset::parse(text.nft);
    if (!parsed) return unexpected("nft -j list ruleset: " + parsed.error());
    if (!parsed->empty()) {
      firewalls.nft = std::move(parsed.value());
      backends.emplace_back("nftables");
    }
  }
  auto legacy = IptablesRuleset::parse(text.iptables, text.ip6tables, text.ipset);
  if (!legacy.empty()) {
    firewalls.legacy = std::move(legacy);
    backends.emplace_back("iptables");
  }
  firewalls.backend = backends.empty() ? "none" : join(backends, "+");
  return firewalls;
}

std::vector<const RuleEvaluator*>
LiveFirewalls::evaluators() const
{
  std::vector<const RuleEvaluator*> list;
  if (nft) list.push_back(&*nft);
  if (legacy) list.push_back(&*legacy);
  return list;
}

void
count(PreflightReport& report)
{
  report.passed = report.failed = report.warnings = report.skipped = 0;
  auto add = [&](CheckStatus status) {
    switch (status) {
    case CheckStatus::pass:
    case CheckStatus::info: ++report.passed; break;
    case CheckStatus::fail: ++report.failed; break;
    case CheckStatus::warn: ++report.warnings; break;
    case CheckStatus::skip: ++report.skipped; break;
    }
  };
  for (const auto& c : report.ports) add(c.status);
  for (const auto& r : report.firewall) add(r.status);
  for (const auto& k : report.kernel) add(k.status);
  report.warnings += int(report.managers.size());
}

Expected<PreflightReport, std::string>
run_preflight(const Plan& plan, const Node& node, const PreflightOptions& options)
{
  auto interface = interface_with_address(node.address);
  if (!interface && options.address_check) {
    return unexpected(fmt::format("the address of node {} ({}) is on no interface of this host: run preflight on the node "
                                  "itself, or pass --no-address-check",
                                  node.name, node.address));
  }
  PreflightReport report;
  report.node = node.name;
  report.address = node.address;
  report.mode = options.mode;
  auto proc = options.root / "proc";
  report.ports = check_ports(plan, node, read_sockets(proc), options.mode, proc);
  if (options.identify) identify_holders(plan.matrix.profile, node.address, report.ports, options.identify_timeout);

  auto firewalls = parse_firewalls(read_firewall_text());
  if (!firewalls) return unexpected(firewalls.error());
  report.backend = firewalls->backend;
  report.firewall = check_firewall(plan, node, firewalls->evaluators(), interface.value_or(""));
  report.managers = find_managers();

  auto backend = plan.matrix.options.find("flannel_backend");
  KernelContext kernel{options.root, backend == plan.matrix.options.end() ? "vxlan" : backend->second, interface.value_or("")};
  report.kernel = check_kernel(kernel);
  count(report);
  return report;
}

int
exit_status(const PreflightReport& report)
{
  return report.failed == 0 ? 0 : 1;
}

} // namespace portmatrix
