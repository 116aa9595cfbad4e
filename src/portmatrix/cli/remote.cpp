// --ssh: the fan-out's command line. remote/ does the work per node; this
// file picks the binary and the token, forwards the options, turns SIGINT,
// SIGTERM and SIGHUP into a teardown of every node, and merges the nodes'
// reports for preflight and egress.
#include "cli/remote.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "build_info.hpp"
#include "cli/output.hpp"
#include "crypto/digest.hpp"
#include "model/profile.hpp"
#include "remote/fleet.hpp"
#include "report/markup.hpp"

namespace portmatrix {

void
add_ssh_options(CLI::App& command, SshArgs& args, SshCommand which)
{
  auto* ssh = command.add_flag("--ssh", args.enabled,
                               "Run on every node of the inventory through ssh (the inventory's ssh section)");
  command.add_option("--parallel", args.parallel, "--ssh: nodes worked on at once")
    ->capture_default_str()
    ->check(CLI::Range(1, 256))
    ->needs(ssh);
  command.add_flag("--dry-run", args.dry_run, "--ssh: print, node by node, the ssh commands; run none")->needs(ssh);
  command.add_option("--binary", args.binary, "--ssh: the portmatrix to upload (default: this one; give a static build "
                                              "for nodes with other libraries)")
    ->check(CLI::ExistingFile)
    ->needs(ssh);
  command.add_flag("--keep-binary", args.keep_binary,
                   "--ssh: keep the binary in ~/.cache/portmatrix/ on the nodes, so the next run skips the upload")
    ->needs(ssh);
  if (which == SshCommand::check) {
    command.add_option("--exit-after", args.exit_after_s,
                       "--ssh: the agents end by themselves after this many seconds (default: the deadlines plus 120)")
      ->check(CLI::Range(10, 24 * 3600))
      ->needs(ssh);
    command.add_option("--coordinator", args.coordinator,
                       "--ssh: run the check itself on this node (when this host does not reach the agents' "
                       "control port); the report comes back here")
      ->needs(ssh);
    command.add_flag("--preflight", args.preflight,
                     "--ssh: each node's preflight (--mode running) before its agent starts, in the report (not "
                     "with --coordinator)")
      ->needs(ssh)
      ->excludes("--coordinator");
  }
}

std::optional<Token>
read_token_from_stdin()
{
  std::string text;
  char buffer[1024];
  while (text.size() <= 4096 && std::cin.read(buffer, sizeof buffer).gcount() > 0) {
    text.append(buffer, std::size_t(std::cin.gcount()));
  }
  auto token = text.size() <= 4096 ? Token::from_text(text) : std::nullopt;
  if (!token) std::cerr << "portmatrix: the token on standard input must be 16 to 4096 characters\n";
  return token;
}

// The progress line, rewritten in place; nodes' threads report at once.
void
tty_progress(const std::string& message)
{
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::cerr << "\r\033[K" << message << std::flush;
}

std::vector<std::string>
node_arguments(const NodeSession& session, const SshArgs& args)
{
  std::vector<std::string> out{"--inventory", session.run_directory() + "/inventory.yaml", "--node", session.node()};
  if (!args.profile.empty()) out.insert(out.end(), {"--profile", args.profile});
  return out;
}

namespace {

// SIGINT, SIGTERM and SIGHUP are waited for by a thread of their own while
// the fan-out runs (blocked in every other thread, which inherit the mask):
// on one, every node is torn down and the process ends with 128 + signal.
class SignalTeardown
{
public:
  explicit SignalTeardown(std::function<void()> teardown) : m_teardown(std::move(teardown))
  {
    sigemptyset(&m_signals);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&m_signals, s);
    pthread_sigmask(SIG_BLOCK, &m_signals, &m_previous);
    m_thread = std::thread([this] {
      timespec tick{0, 200'000'000};
      while (!m_done) {
        int signal = sigtimedwait(&m_signals, nullptr, &tick);
        if (signal <= 0) continue;
        std::cerr << "\r\033[Kportmatrix: signal " << signal << ": stopping the agents and cleaning up the nodes\n";
        m_teardown();
        ::_exit(128 + signal);
      }
    });
  }
  ~SignalTeardown()
  {
    m_done = true;
    m_thread.join();
    pthread_sigmask(SIG_SETMASK, &m_previous, nullptr);
  }

private:
  std::function<void()> m_teardown;
  sigset_t m_signals{};
  sigset_t m_previous{};
  std::atomic<bool> m_done{false};
  std::thread m_thread;
};

// The profile, as given: the nodes get the inventory file only, so a
// profile they must load has to be built in.
bool
forwardable_profile(const std::string& spec, std::string& file)
{
  std::size_t start = 0;
  while (start <= spec.size()) {
    auto end = spec.find(',', start);
    auto name = spec.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!builtin_profile_text(name)) {
      file = name;
      return false;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return true;
}

// The fan-out's progress line: each step's message ("ssh: 3/10 nodes
// connected") with the time since the run began.
Fleet::Progress
timed_progress()
{
  auto start = std::chrono::steady_clock::now();
  return [start](const std::string& message) {
    auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    tty_progress(fmt::format("{}, {:.1f} s", message, elapsed));
  };
}

// The file's bytes (the inventory, the binary: sent on ssh's standard input).
std::optional<std::string>
read_whole(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) {
    std::cerr << fmt::format("portmatrix: --ssh: cannot read {}\n", path);
    return std::nullopt;
  }
  return std::move(bytes).str();
}

// What every --ssh command needs before the first node: the binary and its
// hash, the profile forwarded. Prints the problem and returns nullopt.
std::optional<RemoteRun>
plan_run(const Plan& plan, const SshArgs& args)
{
  RemoteRun run;
  run.id = new_run_id();
  run.inventory = args.inventory_path;
  auto inventory = read_whole(run.inventory);
  if (!inventory) return std::nullopt;
  run.inventory_text = std::move(*inventory);
  run.keep_binary = args.keep_binary;
  std::string file;
  const auto& profile = args.profile.empty() ? plan.inventory.profile : args.profile;
  if (!forwardable_profile(profile, file)) {
    std::cerr << fmt::format("portmatrix: --ssh copies the inventory to the nodes but not profile files: '{}' must be "
                             "a built-in profile\n",
                             printable(file));
    return std::nullopt;
  }
  if (args.binary.empty()) {
    std::error_code error;
    run.binary = std::filesystem::read_symlink("/proc/self/exe", error).string();
    if (error) {
      std::cerr << "portmatrix: --ssh: cannot find this program's file (give --binary PATH)\n";
      return std::nullopt;
    }
    if (!build_is_static()) {
      std::cerr << "portmatrix: --ssh: uploading this dynamically linked build: a node without its shared "
                   "libraries (yaml-cpp 0.7, fmt 9, glibc 2.34+) cannot run it; scripts/build-static.sh makes "
                   "one that runs anywhere (--binary build-static/portmatrix)\n";
    }
  } else {
    run.binary = args.binary;
  }
  auto binary = read_whole(run.binary);
  if (!binary) return std::nullopt;
  run.binary_content = std::move(*binary);
  run.binary_sha256 = sha256_hex(run.binary_content);
  return run;
}

// --dry-run: every node's commands in order, `middle` printed after the
// command that `marks` it (where the check or the node's run happens).
void
print_dry_run(Fleet& fleet, std::string_view marks, const std::string& middle)
{
  for (const auto& session : fleet.sessions()) {
    std::cout << fmt::format("# node {}\n", session->node());
    for (const auto& command : session->commands()) {
      std::cout << command << "\n";
      if (!middle.empty() && command.find(marks) != std::string::npos) std::cout << middle << "\n";
    }
  }
}

// Everything one --ssh command holds while it runs, torn down in reverse:
// the signal thread first, then every node, then the control directory.
struct SshRun
{
  RemoteRun run;
  ControlDirectory control;
  std::unique_ptr<Runner> runner;
  bool tty;
  Inventory inventory; // the plan's, with only args.nodes when given
  Fleet fleet;
  SignalTeardown on_signal;

  static Inventory selected(const Inventory& all, const std::vector<std::string>& nodes)
  {
    if (nodes.empty()) return all;
    Inventory out = all;
    std::erase_if(out.nodes, [&](const Node& node) { return std::find(nodes.begin(), nodes.end(), node.name) == nodes.end(); });
    return out;
  }

  SshRun(RemoteRun settings, const Plan& plan, const SshArgs& args)
    : run(std::move(settings)),
      runner(args.dry_run ? make_dry_runner("~\nabsent\n") : make_system_runner()),
      tty(!args.dry_run && ::isatty(STDERR_FILENO) == 1),
      inventory(selected(plan.inventory, args.nodes)),
      fleet(*runner, inventory, run, control.path(), args.parallel, tty ? timed_progress() : Fleet::Progress()),
      on_signal([this] {
        fleet.teardown();
        std::error_code ignored;
        std::filesystem::remove_all(control.path(), ignored); // _exit follows: no destructor will
      })
  {
  }

  // Prints the problem and returns nullptr when the run cannot start.
  static std::unique_ptr<SshRun> start(const Plan& plan, const SshArgs& args)
  {
    auto settings = plan_run(plan, args);
    if (!settings) return nullptr;
    auto ssh = std::make_unique<SshRun>(std::move(*settings), plan, args);
    if (ssh->control.path().empty()) {
      std::cerr << "portmatrix: " << ssh->control.error() << "\n";
      return nullptr;
    }
    return ssh;
  }
};

// How long each step of the run took, printed on stderr at the end:
// "portmatrix: ssh: 14 nodes: connect 0.41 s, install 0.52 s, ...".
class StepTimes
{
public:
  void mark(std::string step)
  {
    auto now = std::chrono::steady_clock::now();
    m_steps.emplace_back(std::move(step), std::chrono::duration<double>(now - m_last).count());
    m_last = now;
  }
  std::string text(std::size_t nodes) const
  {
    std::string out = fmt::format("portmatrix: ssh: {} nodes:", nodes);
    for (const auto& [step, seconds] : m_steps) out += fmt::format(" {} {:.2f} s,", step, seconds);
    out.back() = '\n';
    return out;
  }

private:
  std::chrono::steady_clock::time_point m_last = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, double>> m_steps;
};

std::chrono::seconds
agent_lifetime(const SshArgs& args, const CheckOptions& options)
{
  if (args.exit_after_s > 0) return std::chrono::seconds(args.exit_after_s);
  auto egress = options.egress.enabled ? options.egress.deadline : std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::seconds>(options.deadline + egress) + std::chrono::seconds(120);
}

} // namespace

namespace {

// check's own options, for the check a --coordinator node runs.
std::vector<std::string>
check_arguments(const CheckOptions& options)
{
  using std::chrono::duration_cast;
  std::vector<std::string> out{"--timeout-ms", std::to_string(options.timeout.count()),
                               "--retries", std::to_string(options.retries),
                               "--deadline", std::to_string(duration_cast<std::chrono::seconds>(options.deadline).count()),
                               "--conntrack-ceiling", std::to_string(options.conntrack_ceiling)};
  if (options.egress.enabled) {
    out.insert(out.end(), {"--egress", "--egress-deadline",
                           std::to_string(duration_cast<std::chrono::seconds>(options.egress.deadline).count())});
  }
  if (options.coverage.mode == CoverageMode::sample) {
    out.insert(out.end(), {"--coverage", "sample", "--seed", std::to_string(options.coverage.seed), "--sample-ports",
                           std::to_string(options.coverage.sample_ports)});
  }
  if (options.results == CheckOptions::Results::failures) out.insert(out.end(), {"--results", "failures"});
  for (const auto& [node, why] : options.absent) out.insert(out.end(), {"--absent", node + "=" + why});
  return out;
}

// check --coordinator NODE: the check runs on that node (the token on its
// standard input), its report printed here as it wrote it, or written to
// --output with the node's overall line on stderr.
int
check_from_node(NodeSession& coordinator, const SshArgs& args, const CheckOptions& options, const std::string& secret)
{
  std::vector<std::string> command{"check", "--inventory", coordinator.run_directory() + "/inventory.yaml",
                                   "--token-file", "-", "--format", args.format};
  if (!args.profile.empty()) command.insert(command.end(), {"--profile", args.profile});
  if (args.verbose) command.push_back("--verbose");
  if (!args.output.empty()) command.push_back("--overall-line");
  auto forwarded = check_arguments(options);
  command.insert(command.end(), forwarded.begin(), forwarded.end());
  std::string report, errors;
  int status = 0;
  if (!coordinator.run_portmatrix(command, report, status, secret, &errors)) {
    std::cerr << fmt::format("portmatrix: check --coordinator {}: {}\n", coordinator.node(), coordinator.failure());
    return k_exit_input;
  }
  if (args.dry_run) return 0;
  if (args.output.empty()) {
    std::cout << report;
  } else if (!write_file(args.output, report)) {
    return k_exit_input;
  } else {
    // The node's last line on stderr is its overall line.
    while (!errors.empty() && errors.back() == '\n') errors.pop_back();
    std::cerr << errors.substr(errors.rfind('\n') + 1) << " (report: " << args.output << ")\n";
  }
  return status;
}

// One node's `preflight --format json` as the report shows it: the counts
// and a line per failed check; an error when it gave no report.
NodePreflight
node_preflight(const std::string& node, const std::string& failure, const std::string& json)
{
  NodePreflight out;
  out.node = node;
  if (!failure.empty()) {
    out.error = failure;
    return out;
  }
  auto report = nlohmann::json::parse(json, nullptr, false);
  if (report.is_discarded() || !report.is_object() || !report.contains("summary")) {
    out.error = "the node's preflight report is not JSON";
    return out;
  }
  out.json = json;
  const auto& summary = report["summary"];
  out.passed = summary.value("passed", std::size_t{0});
  out.failed = summary.value("failed", std::size_t{0});
  out.warnings = summary.value("warnings", std::size_t{0});
  auto failed = [](const nlohmann::json& item) { return item.is_object() && item.value("status", "") == "fail"; };
  for (const auto& p : report.value("ports", nlohmann::json::array())) {
    if (!failed(p)) continue;
    auto min = p.value("port_min", 0), max = p.value("port_max", 0);
    out.failures.push_back(fmt::format("port {}/{} ({}): taken", min == max ? std::to_string(min) : fmt::format("{}-{}", min, max),
                                       p.value("protocol", ""), p.value("names", "")));
  }
  for (const auto& f : report.value("firewall", nlohmann::json::object()).value("results", nlohmann::json::array())) {
    if (!failed(f)) continue;
    auto min = f.value("port_min", 0), max = f.value("port_max", 0);
    out.failures.push_back(fmt::format("firewall: {} -> {}/{} ({}): {} by {}", f.value("from", ""),
                                       min == max ? std::to_string(min) : fmt::format("{}-{}", min, max),
                                       f.value("protocol", ""), f.value("purpose", ""), f.value("decision", ""),
                                       f.value("rule", "")));
  }
  for (const auto& k : report.value("kernel", nlohmann::json::array())) {
    if (failed(k)) out.failures.push_back(fmt::format("kernel {}: {}", k.value("check", ""), k.value("detail", "")));
  }
  return out;
}

// check --ssh --preflight: every node's preflight (running mode: the ports
// its services hold are no failure), run before the agents start.
std::vector<NodePreflight>
preflight_of_nodes(Fleet& fleet, const SshArgs& args)
{
  auto total = fleet.sessions().size();
  std::vector<std::string> outputs(total);
  std::atomic<std::size_t> done{0};
  fleet.each([&](NodeSession& session) {
    std::vector<std::string> command{"preflight"};
    auto node_args = node_arguments(session, args);
    command.insert(command.end(), node_args.begin(), node_args.end());
    command.insert(command.end(), {"--mode", "running", "--format", "json"});
    auto at = std::find_if(fleet.sessions().begin(), fleet.sessions().end(),
                           [&](const auto& s) { return s.get() == &session; }) - fleet.sessions().begin();
    int status = 0;
    session.run_portmatrix(command, outputs[std::size_t(at)], status);
    fleet.progress(fmt::format("ssh: preflight done on {}/{} nodes", ++done, total));
  });
  std::vector<NodePreflight> out;
  for (std::size_t i = 0; i < total; ++i) {
    const auto& session = *fleet.sessions()[i];
    out.push_back(node_preflight(session.node(), session.failure(), outputs[i]));
  }
  return out;
}

} // namespace

int
command_check_ssh(const Plan& plan, const SshArgs& args, CheckOptions options, const CheckWithAgents& check)
{
  NodeSession* coordinator = nullptr;
  auto ssh = SshRun::start(plan, args);
  if (!ssh) return k_exit_input;
  auto& fleet = ssh->fleet;
  if (!args.coordinator.empty()) {
    for (auto& session : fleet.sessions()) {
      if (session->node() == args.coordinator) coordinator = session.get();
    }
    if (!coordinator) {
      std::cerr << fmt::format("portmatrix: --coordinator: no node '{}' in {}\n", printable(args.coordinator),
                               plan.inventory.file);
      return k_exit_input;
    }
  }
  bool tty = ssh->tty;
  auto lifetime = agent_lifetime(args, options);

  // A fresh secret per run, known to this process and, through ssh's
  // standard input, to the agents; never on a command line or a disk.
  auto secret = random_hex(32);
  auto token = Token::from_text(secret);
  StepTimes times;
  fleet.connect();
  times.mark("connect");
  fleet.install();
  times.mark("install");
  if (args.preflight) {
    options.preflight = preflight_of_nodes(fleet, args);
    times.mark("preflight");
  }
  std::atomic<std::size_t> up{0};
  auto total = fleet.sessions().size();
  fleet.each([&](NodeSession& session) {
    auto agent_args = node_arguments(session, args);
    agent_args.insert(agent_args.end(), {"--token-file", "-", "--exit-after", std::to_string(lifetime.count())});
    if (session.start_agent(agent_args, secret, std::chrono::seconds(30))) {
      fleet.progress(fmt::format("ssh: {}/{} agents up", ++up, total));
    }
  });
  times.mark("agents up");
  options.absent = fleet.failures();
  if (coordinator && coordinator->failed()) {
    fleet.teardown();
    std::cerr << fmt::format("portmatrix: check --coordinator {}: {}\n", coordinator->node(), coordinator->failure());
    return k_exit_input;
  }
  int status = 0;
  if (coordinator) {
    if (tty) tty_progress(fmt::format("check: running on {}", coordinator->node()));
    status = check_from_node(*coordinator, args, options, secret);
  } else if (!args.dry_run) {
    if (tty) options.on_progress = [](const CheckProgress& p) { tty_progress("check: " + to_text(p)); };
    status = check(*token, options);
  }
  times.mark("check");
  if (tty) tty_progress("ssh: stopping the agents and cleaning up");
  fleet.teardown();
  times.mark("cleanup");
  if (tty) tty_progress("");
  if (!args.dry_run) std::cerr << times.text(fleet.sessions().size());
  if (args.dry_run) {
    print_dry_run(fleet, coordinator ? "" : "< token on standard input",
                  coordinator ? "" : "# (when every agent is up: the check runs here, from this workstation, to the "
                                     "agents' control ports)");
  }
  return status;
}

int
with_ssh_fleet(const Plan& plan, const SshArgs& args, const std::function<int(Fleet&, bool tty)>& work)
{
  auto ssh = SshRun::start(plan, args);
  if (!ssh) return k_exit_input;
  int status = work(ssh->fleet, ssh->tty);
  ssh->fleet.teardown();
  return status;
}

namespace {

// The report a node printed, or its failure, merged by format.
struct NodeReport
{
  std::string node;
  std::string output;
  std::string failure; // ssh's words; empty when the node ran
  int status = 0;
};

std::string
merge_table(const std::vector<NodeReport>& reports)
{
  std::string out;
  for (const auto& r : reports) {
    out += fmt::format("== {} ==\n", r.node);
    out += r.failure.empty() ? r.output : fmt::format("could not run: {}\n", r.failure);
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += '\n';
  }
  return out;
}

std::string
merge_json(const std::vector<NodeReport>& reports)
{
  nlohmann::json out = nlohmann::json::object();
  for (const auto& r : reports) {
    if (!r.failure.empty()) {
      out[r.node] = {{"error", r.failure}};
      continue;
    }
    auto parsed = nlohmann::json::parse(r.output, nullptr, false);
    out[r.node] = parsed.is_discarded() ? nlohmann::json{{"error", "the node's report is not JSON"}} : parsed;
  }
  return out.dump(2) + "\n";
}

// The <testsuite> elements of a node's JUnit report, each named after the node.
std::string
testsuites_of(const NodeReport& r, const std::string& suffix)
{
  if (!r.failure.empty()) {
    return fmt::format("  <testsuite name=\"{0}{1}\" tests=\"1\" failures=\"1\">\n    <testcase classname=\"{0}\" "
                       "name=\"ssh\">\n      <failure message=\"{2}\"/>\n    </testcase>\n  </testsuite>\n",
                       xml_escape(r.node), suffix, xml_escape(r.failure));
  }
  auto begin = r.output.find("<testsuite ");
  auto end = r.output.rfind("</testsuites>");
  if (begin == std::string::npos || end == std::string::npos || end < begin) return {};
  auto inner = "  " + r.output.substr(begin, end - begin);
  auto name = inner.find("name=\"");
  auto close = name == std::string::npos ? name : inner.find('"', name + 6);
  if (name != std::string::npos && close != std::string::npos) {
    inner.replace(name + 6, close - name - 6, xml_escape(r.node) + suffix);
  }
  return inner;
}

} // namespace

int
command_nodes_ssh(const Plan& plan, const SshArgs& args, const std::string& subcommand,
                  const std::vector<std::string>& forward, const std::string& format, const std::string& output)
{
  auto ssh = SshRun::start(plan, args);
  if (!ssh) return k_exit_input;
  auto& fleet = ssh->fleet;
  bool tty = ssh->tty;
  StepTimes times;
  fleet.connect();
  times.mark("connect");
  fleet.install();
  times.mark("install");
  std::vector<NodeReport> reports(fleet.sessions().size());
  std::atomic<std::size_t> done{0};
  auto total = reports.size();
  for (std::size_t i = 0; i < total; ++i) reports[i].node = fleet.sessions()[i]->node();
  fleet.each([&](NodeSession& session) {
    std::vector<std::string> command;
    std::istringstream words(subcommand); // "firewall status": two words
    for (std::string word; words >> word;) command.push_back(word);
    auto node_args = node_arguments(session, args);
    if (subcommand == "egress") node_args.erase(node_args.begin() + 2, node_args.begin() + 4); // no --node
    command.insert(command.end(), node_args.begin(), node_args.end());
    command.insert(command.end(), {"--format", format});
    command.insert(command.end(), forward.begin(), forward.end());
    auto& report = *std::find_if(reports.begin(), reports.end(), [&](const NodeReport& r) { return r.node == session.node(); });
    session.run_portmatrix(command, report.output, report.status);
    fleet.progress(fmt::format("ssh: {} done on {}/{} nodes", subcommand, ++done, total));
  });
  times.mark(subcommand);
  fleet.teardown();
  times.mark("cleanup");
  if (tty) tty_progress("");
  if (!args.dry_run) std::cerr << times.text(fleet.sessions().size());
  if (args.dry_run) {
    print_dry_run(fleet, "", "");
    return 0;
  }
  bool failed = false;
  for (std::size_t i = 0; i < total; ++i) {
    const auto& session = *fleet.sessions()[i];
    reports[i].failure = session.failure();
    failed = failed || session.failed() || reports[i].status != 0;
  }
  std::string text;
  if (format == "json") {
    text = merge_json(reports);
  } else if (format == "junit") {
    text = fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"portmatrix {}\">\n", subcommand);
    for (const auto& r : reports) text += testsuites_of(r, subcommand == "egress" ? ".egress" : "");
    text += "</testsuites>\n";
  } else {
    text = merge_table(reports);
  }
  if (!output.empty()) {
    if (!write_file(output, text)) return k_exit_input;
  } else {
    std::cout << text;
  }
  return failed ? 1 : 0;
}

} // namespace portmatrix
