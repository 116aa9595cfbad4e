// The demo. As root it is the product end to end on one machine: the
// guide's topology in network namespaces (sim/), each node behind its
// generated nftables firewall, haproxy on the load balancer with the
// generated haproxy.cfg, an agent per node, and one fault planted on purpose
// (UDP 8472 dropped by master2's firewall); then the check runs from the client
// node (in its namespace) and its report is compared with the planted fault:
// exit 0 only when exactly the fault's flows fail, with its diagnosis. Without
// root it checks the same flows on loopback addresses (no firewalls, no VIP)
// and says what it skipped. Everything it creates is removed on every exit
// path, Ctrl-C included.
#include "cli/demo.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "check/check.hpp"
#include "cli/output.hpp"
#include "crypto/hmac.hpp"
#include "firewall/firewall.hpp"
#include "lb/lb.hpp"
#include "profiles/builtin.hpp"
#include "report/check_report.hpp"
#include "sim/haproxy_state.hpp"
#include "sim/netns_cluster.hpp"
#include "sim/planted_fault.hpp"
#include "util/process.hpp"

namespace portmatrix {

namespace {

volatile sig_atomic_t g_interrupted = 0;

void
on_signal(int)
{
  g_interrupted = 1;
}

std::string
self_path()
{
  std::error_code error;
  auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string("portmatrix") : path.string();
}

// A private working directory, removed with everything in it.
class WorkDir
{
public:
  WorkDir()
  {
    std::string pattern = (std::filesystem::temp_directory_path() / "portmatrix-demo-XXXXXX").string();
    if (::mkdtemp(pattern.data())) m_path = pattern;
  }
  // PORTMATRIX_DEMO_KEEP=1 keeps the directory (logs, inventory, token) for a look afterwards.
  ~WorkDir()
  {
    std::error_code error;
    if (m_path.empty()) return;
    if (std::getenv("PORTMATRIX_DEMO_KEEP")) {
      std::cerr << "portmatrix demo: kept " << m_path << "\n";
      return;
    }
    std::filesystem::remove_all(m_path, error);
  }
  bool ok() const { return !m_path.empty(); }
  std::string file(const std::string& name) const { return (std::filesystem::path(m_path) / name).string(); }

private:
  std::string m_path;
};

bool
write_private(const std::string& path, const std::string& text)
{
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  return out.good() && ::chmod(path.c_str(), 0600) == 0;
}

void
step(const std::string& message)
{
  std::cout << "==> " << message << std::endl;
}

// Waits until every agent log says it serves its control channel.
bool
wait_for_agents(const WorkDir& work, const Plan& plan, std::chrono::seconds limit)
{
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline && !g_interrupted) {
    std::size_t ready = 0;
    for (const auto& node : plan.inventory.nodes) {
      std::ifstream log(work.file(node.name + ".agent.log"));
      std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      ready += text.find("control on") != std::string::npos;
    }
    if (ready == plan.inventory.nodes.size()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

Plan
demo_plan(std::string_view text, const std::string& name)
{
  auto inventory = parse_inventory(text, name);
  auto profile = load_profile(inventory->profile);
  return make_plan(std::move(*profile), std::move(*inventory));
}

// The fault the demo plants: master2's firewall drops Flannel's VXLAN.
const PlantedFault k_fault{"master2", Protocol::udp, 8472, "dropped-by-destination-firewall"};

Colour
terminal_colour()
{
  return ::isatty(STDOUT_FILENO) == 1 && !std::getenv("NO_COLOR") ? Colour::on : Colour::off;
}

// check's options for the demo: its live progress line on a terminal, as check prints it.
CheckOptions
check_options()
{
  CheckOptions options;
  if (::isatty(STDERR_FILENO) == 1) {
    options.on_progress = [](const CheckProgress& p) { std::cerr << "\r\033[Kcheck: " << to_text(p) << std::flush; };
  }
  return options;
}

// Clears the progress line, if there was one.
void
end_progress()
{
  if (::isatty(STDERR_FILENO) == 1) std::cerr << "\r\033[K" << std::flush;
}

// Plants k_fault and proves it is in place: the rule is in master2's ruleset.
bool
plant_fault(NetnsCluster& cluster)
{
  auto port = std::to_string(k_fault.port);
  auto protocol = std::string(to_string(k_fault.protocol));
  std::string output;
  if (!cluster.run_in(k_fault.node, {"nft", "insert", "rule", "inet", "portmatrix", "input", protocol, "dport", port, "drop"},
                      output)) {
    std::cerr << fmt::format("portmatrix demo: planting the fault on {} failed: {}\n", k_fault.node, output);
    return false;
  }
  auto rule = fmt::format("{} dport {} drop", protocol, port);
  if (!cluster.run_in(k_fault.node, {"nft", "list", "chain", "inet", "portmatrix", "input"}, output) ||
      output.find(rule) == std::string::npos) {
    std::cerr << fmt::format("portmatrix demo: the planted rule '{}' is not in {}'s ruleset:\n{}", rule, k_fault.node,
                             output);
    return false;
  }
  return true;
}

// Waits until haproxy's last health check of every master passed, so the VIP
// flows meet every backend (a master checked before its agent was up needs
// two more checks, seconds apart).
bool
wait_for_backends(const std::string& socket_path, std::chrono::seconds limit)
{
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string state;
  while (!g_interrupted) {
    if (haproxy_servers_up(socket_path, state)) {
      step("haproxy: " + state);
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!g_interrupted) std::cerr << fmt::format("portmatrix demo: haproxy's servers not all up after {} s: {}\n", limit.count(), state);
  return false;
}

// Prints the verdict on the report: exactly the planted fault (0), or what differs (1).
int
judge(const CheckReport& report)
{
  auto found = differences(report, k_fault);
  if (found.empty()) {
    std::size_t crossing = 0;
    for (const auto& result : report.results) crossing += crosses(result, k_fault);
    step(fmt::format("the check found exactly the planted fault: the {} flows to {} {}/{} fail with {}, every other "
                     "flow ({}) passes",
                     crossing, k_fault.node, k_fault.port, to_string(k_fault.protocol), k_fault.diagnosis,
                     report.results.size() - crossing));
    return 0;
  }
  step(fmt::format("the check's report differs from the planted fault ({} {}/{} dropped by its firewall) in {} way{}:",
                   k_fault.node, k_fault.port, to_string(k_fault.protocol), found.size(), found.size() == 1 ? "" : "s"));
  constexpr std::size_t shown = 20;
  for (std::size_t i = 0; i < found.size() && i < shown; ++i) std::cout << "    " << found[i] << "\n";
  if (found.size() > shown) std::cout << fmt::format("    ... and {} more\n", found.size() - shown);
  return 1;
}

using Files = std::vector<std::pair<std::string, std::string>>;

// What the demo generates from `plan` (its inventory's text is `inventory`):
// the inventory, each node's nftables rules, haproxy.cfg and keepalived.conf
// per load-balancer node (the last two when the inventory has a VIP).
Files
demo_artefacts(const Plan& plan, std::string_view inventory)
{
  Files files{{"inventory.yaml", std::string(inventory)}};
  auto nft = make_firewall_generator(FirewallFormat::nftables, plan);
  for (const auto& node : plan.inventory.nodes) files.emplace_back(nft->file_name(node), nft->render(node));
  if (auto haproxy = generate_haproxy(plan)) files.emplace_back("haproxy.cfg", *haproxy);
  for (const auto& node : plan.inventory.nodes) {
    if (!node.has(Role::loadbalancer)) continue;
    if (auto keepalived = generate_keepalived(plan, node)) files.emplace_back(node.name + ".keepalived.conf", *keepalived);
  }
  return files;
}

// demo --out: the artefacts and the check's report (JSON and HTML) into
// `out_dir`; the demo's verdict, or write_outputs' status when writing failed.
int
write_demo_outputs(const std::string& out_dir, const Plan& plan, std::string_view inventory, const CheckReport& report,
                   int verdict)
{
  if (out_dir.empty()) return verdict;
  auto files = demo_artefacts(plan, inventory);
  files.emplace_back("report.json", render_check(report, CheckFormat::json));
  files.emplace_back("report.html", render_check(report, CheckFormat::html));
  if (int status = write_outputs(files, out_dir); status != 0) return status;
  step(fmt::format("wrote {} files to {}: the inventory, rules, load-balancer configuration and the report "
                   "(report.json, report.html)", files.size(), out_dir));
  return verdict;
}

int
live_demo(const WorkDir& work, const std::string& out_dir)
{
  auto inventory_path = work.file("inventory.yaml");
  write_private(inventory_path, std::string(k_demo_inventory));
  auto plan = demo_plan(k_demo_inventory, inventory_path);
  auto prefix = fmt::format("pmd{}", ::getpid() % 100000);
  NetnsCluster cluster(plan, prefix);
  std::string error;
  std::string output;

  step(fmt::format("building the guide's topology: {} nodes in network namespaces {}-*", plan.inventory.nodes.size(),
                   prefix));
  if (!cluster.create(error)) {
    std::cerr << "portmatrix demo: " << error << "\n";
    return 1;
  }
  step("applying each node's generated nftables firewall (portmatrix firewall --format nftables)");
  auto nft = make_firewall_generator(FirewallFormat::nftables, plan);
  for (const auto& node : plan.inventory.nodes) {
    if (!cluster.run_in(node.name, {"nft", "-f", "-"}, output, nft->render(node))) {
      std::cerr << fmt::format("portmatrix demo: nft on {} failed: {}\n", node.name, output);
      return 1;
    }
  }
  step("planting a fault: master2's firewall drops UDP 8472 (Flannel VXLAN)");
  if (!plant_fault(cluster)) return 1;

  auto token_path = work.file("token");
  write_private(token_path, random_hex(32) + "\n");
  auto haproxy = have_program("haproxy");
  auto stats_socket = work.file("haproxy.sock");
  if (haproxy) {
    step("starting haproxy on lb1 with the generated haproxy.cfg (portmatrix lb --format haproxy)");
    write_private(work.file("haproxy.cfg"), *generate_haproxy(plan));
    // A second file for the demo's own use: the stats socket it watches the health checks on.
    write_private(work.file("haproxy-stats.cfg"), fmt::format("global\n    stats socket {} mode 600 level user\n", stats_socket));
    cluster.spawn_in("lb1", {"haproxy", "-db", "-f", work.file("haproxy.cfg"), "-f", work.file("haproxy-stats.cfg")},
                     work.file("haproxy.log"));
  } else {
    step("haproxy is not installed: the VIP flows will fail (apt-get install haproxy)");
  }
  step("starting an agent on every node (portmatrix agent)");
  auto self = self_path();
  for (const auto& node : plan.inventory.nodes) {
    cluster.spawn_in(node.name,
                     {self, "agent", "--inventory", inventory_path, "--node", node.name, "--token-file", token_path},
                     work.file(node.name + ".agent.log"));
  }
  if (!wait_for_agents(work, plan, std::chrono::seconds(15))) {
    if (g_interrupted) return 130;
    std::cerr << "portmatrix demo: not every agent came up; see their logs\n";
    return 1;
  }
  if (haproxy && !wait_for_backends(stats_socket, std::chrono::seconds(30))) return g_interrupted ? 130 : 1;

  step("running the check from client1 (portmatrix check, in client1's network namespace)");
  auto token = Token::load(token_path, error);
  if (!token) {
    std::cerr << "portmatrix demo: " << error << "\n";
    return 1;
  }
  std::optional<Expected<CheckReport, std::string>> report;
  bool ran = cluster.run_inside("client1", [&] { report = run_check(plan, *token, check_options()); }, error);
  end_progress();
  if (!ran) {
    std::cerr << "portmatrix demo: " << error << "\n";
    return 1;
  }
  if (!*report) {
    std::cerr << "portmatrix demo: check: " << report->error() << "\n";
    return 1;
  }
  std::cout << render_check(**report, CheckFormat::table, terminal_colour());
  step(fmt::format("check took {:.2f} s: {} passed, {} failed, {} skipped", (*report)->duration.count() / 1000.0,
                   (*report)->passed, (*report)->failed, (*report)->skipped));
  auto verdict = write_demo_outputs(out_dir, plan, k_demo_inventory, **report, judge(**report));
  step("removing the namespaces, agents and haproxy");
  return g_interrupted ? 130 : verdict;
}

// On loopback there are no firewalls: every flow the matrix allows must pass,
// and the flows it denies are open (said, not counted against the demo).
int
judge_loopback(const CheckReport& report)
{
  std::size_t denied_open = 0;
  std::vector<std::string> found;
  for (const auto& result : report.results) {
    if (result.flow.expect == Expect::deny) {
      denied_open += result.verdict == Verdict::fail;
      continue;
    }
    if (result.verdict != Verdict::pass) {
      found.push_back(fmt::format("{} -> {} {}/{}: {} ({})", result.from, result.to, to_string(result.flow.range),
                                  to_string(result.flow.protocol), to_string(result.verdict), result.diagnosis));
    }
  }
  if (denied_open > 0) {
    std::cout << fmt::format("{} flows the matrix denies are open here: loopback has no firewalls to drop them.\n",
                             denied_open);
  }
  if (found.empty()) {
    std::cout << "Every flow the matrix allows passes on loopback.\n";
    return 0;
  }
  std::cout << fmt::format("{} flows the matrix allows do not pass on loopback:\n", found.size());
  for (const auto& line : found) std::cout << "    " << line << "\n";
  return 1;
}

int
loopback_demo(const WorkDir& work, const std::string& out_dir)
{
  std::cout << "portmatrix demo: not root, so no network namespaces, firewalls, haproxy or packet capture.\n"
               "Run it as root (or with CAP_NET_ADMIN and CAP_NET_RAW) for the full demo. Checking the same\n"
               "flows between agents on loopback addresses instead (127.0.1.x, no VIP).\n\n";
  std::string text(k_demo_inventory);
  for (auto [from, to] : {std::pair{"10.213.0.", "127.0.1."}}) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at)) text.replace(at, 9, to);
  }
  auto vip = text.find("loadbalancer: {");
  text.erase(vip, text.find('\n', vip) - vip + 1);
  text.replace(text.find("control_port: 7946"), 18, fmt::format("control_port: {}", 20000 + ::getpid() % 9000));
  auto inventory_path = work.file("inventory.yaml");
  write_private(inventory_path, text);
  auto plan = demo_plan(text, inventory_path);
  auto token_path = work.file("token");
  write_private(token_path, random_hex(32) + "\n");
  std::string error;
  auto token = Token::load(token_path, error);

  std::vector<pid_t> agents;
  auto stop_all = [&] {
    for (auto pid : agents) stop_process(pid);
  };
  auto self = self_path();
  for (const auto& node : plan.inventory.nodes) {
    agents.push_back(spawn_process(
      {self, "agent", "--inventory", inventory_path, "--node", node.name, "--token-file", token_path},
      work.file(node.name + ".agent.log")));
  }
  if (!wait_for_agents(work, plan, std::chrono::seconds(15))) {
    stop_all();
    std::cerr << "portmatrix demo: not every agent came up\n";
    return g_interrupted ? 130 : 1;
  }
  auto report = run_check(plan, *token, check_options());
  end_progress();
  stop_all();
  if (!report) {
    std::cerr << "portmatrix demo: " << report.error() << "\n";
    return 1;
  }
  std::cout << render_check(*report, CheckFormat::table, terminal_colour());
  auto verdict = write_demo_outputs(out_dir, plan, text, *report, judge_loopback(*report));
  return g_interrupted ? 130 : verdict;
}

} // namespace

int
run_demo(const std::string& out_dir, DemoRun run)
{
  if (run == DemoRun::files_only) {
    auto plan = demo_plan(k_demo_inventory, "<builtin>/inventories/demo.yaml");
    return write_outputs(demo_artefacts(plan, k_demo_inventory), out_dir);
  }
  WorkDir work;
  if (!work.ok()) {
    std::cerr << "portmatrix demo: cannot create a temporary directory\n";
    return 1;
  }
  struct sigaction action{};
  action.sa_handler = on_signal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  bool root = ::geteuid() == 0 && have_program("ip") && have_program("nft");
  return root ? live_demo(work, out_dir) : loopback_demo(work, out_dir);
}

} // namespace portmatrix
