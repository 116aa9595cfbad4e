// The agent. Everything runs on one EventLoop: listeners answering probes,
// the capture, the control server and the probes the agent runs for check,
// so a probe request never stops the agent from answering other probes.
//
// The control server is defensive: connections are capped and time out when
// idle; each is TLS 1.3 with this node's PSK (agent/control_channel.hpp), and
// nothing of a request is read before its handshake authenticated the peer
// (what comes before is bounded); every request must name this node and this run of the agent,
// and is replay-checked; a probe request may only name flows that start at
// this node (so the agent cannot be used as a scanner), duplicates merged and
// its total bounded by those flows; a check's hello opens a window (with the
// check's deadline) that its probe and observed requests must name, and that
// bounds its probings' budgets: `done`, or the deadline, closes it, and what
// the capture kept for the check is released; and every request's work is bounded and
// runs on the loop in slices (observed) or as the prober's events, so a
// `hello` is never held up. A client that cannot authenticate gets an alert
// and is disconnected; one that asks for too much gets an error; the others
// are unaffected.
#include "agent/agent_impl.hpp"

#include <iostream>

namespace portmatrix {

// An overlay's port is probed plainly, in its shape and at full size (agent/encapsulation.hpp).
std::uint64_t
Agent::Impl::probes_per_port(const Flow& flow) const
{
  const auto* port = plan.matrix.profile.find_port(flow.port);
  return port && port->encapsulation != Encapsulation::none ? k_overlay_probes_per_port : 1;
}

bool
Agent::Impl::start(std::string& error, const std::function<std::string()>& after_setup)
{
  auto address = SocketAddress::parse(node.address, plan.inventory.control_port);
  if (!address) {
    error = "bad node address " + node.address;
    return false;
  }
  control_address = *address;
  // For evaluate: the interface probes arrive on, which rules may match
  // (looked up now: the confined agent does not list interfaces).
  interface = interface_with_address(node.address).value_or("");
  listener.reset(::socket(address->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (!listener || ::bind(listener.get(), address->get(), address->length()) != 0 ||
      ::listen(listener.get(), 64) != 0) {
    error = fmt::format("cannot listen on {} for the control channel: {}", address->to_string(), std::strerror(errno));
    return false;
  }
  loop.add(listener.get(), EPOLLIN, [this](std::uint32_t) { accept_all(); });

  raise_fd_limit();
  // The VIP's ports on a load balancer are haproxy's: the agent leaves them
  // free. A port several roles send to is bound (and reported) once. Ports
  // that must stay closed are bound too: a deny passes on the evidence that
  // something listened and the firewall stopped the probe.
  std::map<Protocol, std::vector<PortRange>> wanted;
  auto rules = plan.ingress(node, Plan::VipPorts::exclude);
  auto denied = plan.denied(node);
  rules.insert(rules.end(), denied.begin(), denied.end());
  for (const auto& rule : rules) {
    if (!has_probe(rule.protocol)) continue;
    wanted[rule.protocol].insert(wanted[rule.protocol].end(), rule.ports.begin(), rule.ports.end());
  }
  std::vector<ListenSpec> specs;
  for (auto& [protocol, ranges] : wanted) {
    for (const auto& range : merge_ranges(std::move(ranges))) specs.push_back({protocol, range});
  }
  responder.bind(specs);
  if (wanted.contains(Protocol::ipip) && !responder.listening(Protocol::ipip, 0)) {
    log << fmt::format("portmatrix agent {}: no raw socket for IP-in-IP (it needs CAP_NET_RAW and an IPv4 address): "
                       "probes of IP protocol 4 to this node go unanswered, and check reports their flows as not "
                       "proven\n",
                       node.name);
  }
  serve_health_checks();
  std::string capture_error_text;
  if (auto peers = capture.set_peers(capture_peers(plan.inventory)); !peers.empty()) {
    log << fmt::format("portmatrix agent {}: capture: {}\n", node.name, peers);
  }
  if (!capture.start(node.interface, capture_error_text)) capture_error = capture_error_text;
  interface_mtu = mtu_of_address(node.address);

  log << fmt::format("portmatrix agent {}: control on {}, {} listeners", node.name, address->to_string(),
                     responder.listener_count());
  log << (capture.active() ? ", capture on" : ", capture off (" + capture_error + ")") << "\n";
  if (after_setup) {
    if (auto failed = after_setup(); !failed.empty()) {
      error = failed;
      return false;
    }
  }
  identify_owners();
  for (const auto& owner : responder.owners()) {
    log << fmt::format("  {}/{} is held by {} (pid {}): probed as it is\n", owner.port, to_string(owner.protocol),
                       owner.process.empty() ? "an unknown process" : owner.process, owner.pid);
  }
  return true;
}

// Before the cluster exists, the agent answers the load balancer's API
// health check (GET /healthz over TLS) on the backends' API port, so the
// VIP check works with the configuration `portmatrix lb` generates.
void
Agent::Impl::serve_health_checks()
{
  for (const auto& frontend : plan.matrix.profile.frontends) {
    const auto* port = plan.matrix.profile.find_port(frontend.port);
    if (frontend.health != HealthCheck::apiserver || !node.has(frontend.backend) || !port) continue;
    if (!responder.listening(Protocol::tcp, port->range.min)) continue; // a real API server holds it
    if (!tls) {
      tls = std::make_unique<TlsHealthServer>(loop);
      tls->set_priority_sources(load_balancer_addresses(plan.inventory));
    }
    if (!tls->ready()) {
      log << fmt::format("portmatrix agent {}: {}\n", node.name, tls->error());
      return;
    }
    responder.serve_tls(*tls, port->range.min);
  }
}

// Who answers on the ports held by other processes (in the background:
// hello replies carry it once known). UDP owners are not probed.
void
Agent::Impl::identify_owners()
{
  std::vector<OwnerIdentifier::Job> jobs;
  for (const auto& owner : responder.owners()) {
    if (owner.protocol != Protocol::tcp) continue;
    jobs.push_back({owner.protocol, owner.port, port_hint(plan.matrix.profile, owner.protocol, owner.port)});
  }
  if (jobs.empty()) return;
  identifier = std::make_unique<OwnerIdentifier>(
    loop, node.address, std::move(jobs), k_owner_identify_timeout,
    [this](const OwnerIdentifier::Job& job, const Identification& result) {
      services[{job.protocol, job.port}] = result.summary;
      log << fmt::format("portmatrix agent {}: {}/{} answers as: {}\n", node.name, job.port,
                         to_string(job.protocol), result.summary);
    });
}

Agent::Agent(EventLoop& loop, const Plan& plan, const Node& node, const Token& token, std::ostream& log)
  : m_impl(std::make_unique<Impl>(loop, plan, node, token, log))
{
}

Agent::~Agent() = default;

void
Agent::set_firewall_source(FirewallSource source)
{
  m_impl->firewall_source = std::move(source);
}

bool
Agent::start(std::string& error, const std::function<std::string()>& after_setup)
{
  return m_impl->start(error, after_setup);
}

std::string
Agent::control_endpoint() const
{
  return m_impl->control_address.to_string();
}

int
run_agent(const Plan& plan, const Node& node, const Token& token, std::chrono::seconds exit_after)
{
  Fd signal_fd = termination_signals();

  // Forked first, while the agent is one thread holding its privileges.
  FirewallReader firewall_reader;
  EventLoop loop;
  Agent agent(loop, plan, node, token, std::cerr);
  agent.set_firewall_source(firewall_reader.source(loop));
  std::string error;
  if (!agent.start(error, [&node] {
        auto failed = confine();
        if (failed.empty()) {
          std::cerr << fmt::format("portmatrix agent {}: confined: CAP_NET_RAW and CAP_NET_BIND_SERVICE kept, "
                                   "no_new_privs, seccomp allowlist\n",
                                   node.name);
        }
        return failed.empty() ? failed : "cannot drop privileges: " + failed;
      })) {
    std::cerr << "portmatrix agent: " << error << "\n";
    return 2;
  }
  loop.add(signal_fd.get(), EPOLLIN, [&loop](std::uint32_t) { loop.stop(); });
  if (exit_after.count() > 0) {
    loop.after(exit_after, [&loop, &node, exit_after] {
      std::cerr << fmt::format("portmatrix agent {}: --exit-after {} s reached\n", node.name, exit_after.count());
      loop.stop();
    });
  }
  std::cerr << fmt::format("portmatrix agent {}: ready\n", node.name) << std::flush;
  loop.run();
  std::cerr << fmt::format("portmatrix agent {}: stopped\n", node.name);
  return 0;
}

} // namespace portmatrix
