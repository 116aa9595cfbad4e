// pm_agents: the test helper that serves the agents' control protocol for
// every node of an inventory in one process, so the coordinator can be run
// against 1,000 simulated agents on one machine (issue 20 item 4). Each node
// gets a listener on its address and control port (the scenario makes the
// inventory's addresses local: `ip route add local 10.0.0.0/8 dev lo`), TLS
// with that node's PSK, and requests bounded as a real agent bounds them
// (k_max_request_bytes: a larger probe request is refused, as it would be).
// No packet is probed: every answer is the healthy one.
//
//   pm_agents TOKEN_FILE INVENTORY
//       hello    the node, a random instance, capture on
//       probe    every target open, answered by the node at its address (the
//                VIP: by every backend), authentic; a flow that must stay
//                closed filtered
//       observed nothing seen, every queried port held (as a real agent
//                holds the ports it must keep closed); evaluate: every port
//                of the node's inbound flows passed; egress: no host; done: {}
//     Prints "pm_agents: serving N nodes" once every listener is up, then
//     "pm_agents: N requests (T by type)" when SIGTERM or SIGINT ends it.
//
// Exit status: 0 stopped by a signal, 2 usage or a listener that failed.
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <algorithm>
#include <map>
#include <tuple>
#include <memory>

#include <fmt/format.h>

#include "agent/control_channel.hpp"
#include "agent/control_protocol.hpp"
#include "agent/evaluate.hpp"
#include "agent/messages.hpp"
#include "crypto/hmac.hpp"
#include "net/address.hpp"
#include "net/event_loop.hpp"
#include "net/termination.hpp"
#include "plan/coverage.hpp"
#include "plan/plan.hpp"
#include "profiles/builtin.hpp"

using namespace portmatrix;

namespace {

struct Connection
{
  Fd fd;
  std::size_t node = 0;
  std::unique_ptr<ControlChannel> channel;
  std::string out;
};

class Agents
{
public:
  Agents(EventLoop& loop, const Plan& plan, const Token& token) : m_loop(loop), m_plan(plan), m_token(token)
  {
    const auto& nodes = plan.inventory.nodes;
    m_instances.resize(nodes.size());
    m_inbound_ports.assign(nodes.size(), 0);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      m_instances[i] = random_hex(16);
      m_by_address[nodes[i].address] = i;
    }
    std::vector<std::size_t> balancers;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].has(Role::loadbalancer)) balancers.push_back(i);
    }
    plan.for_each_flow([&](const Flow& flow) {
      if (flow.protocol != Protocol::tcp && flow.protocol != Protocol::udp) return;
      if (flow.to) m_inbound_ports[*flow.to] += flow.range.size();
      else for (auto lb : balancers) m_inbound_ports[lb] += flow.range.size();
      if (!flow.to && !m_vip_backends.count(flow.range)) m_vip_backends[flow.range] = backends(flow);
      if (flow.expect == Expect::deny) m_denied[{flow.from, flow.protocol, plan.flow_address(flow)}].push_back(flow.range);
    });
  }

  bool listen(std::string& error)
  {
    for (std::size_t i = 0; i < m_plan.inventory.nodes.size(); ++i) {
      const auto& node = m_plan.inventory.nodes[i];
      auto address = SocketAddress::parse(node.address, m_plan.inventory.control_port);
      if (!address) {
        error = "bad address " + node.address;
        return false;
      }
      Fd fd(::socket(address->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      int one = 1;
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (!fd || ::bind(fd.get(), address->get(), address->length()) != 0 || ::listen(fd.get(), 64) != 0) {
        error = fmt::format("cannot listen on {}: {}", address->to_string(), std::strerror(errno));
        return false;
      }
      int raw = fd.get();
      m_loop.add(raw, EPOLLIN, [this, raw, i](std::uint32_t) { accept_all(raw, i); });
      m_listeners.push_back(std::move(fd));
    }
    return true;
  }

  std::string counts() const
  {
    std::string text;
    std::size_t total = 0;
    for (const auto& [type, count] : m_requests) {
      text += fmt::format("{}{} {}", text.empty() ? "" : ", ", count, type);
      total += count;
    }
    return fmt::format("{} requests ({})", total, text);
  }

private:
  void accept_all(int listener, std::size_t node)
  {
    for (;;) {
      Fd fd(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) return;
      auto connection = std::make_unique<Connection>();
      connection->node = node;
      connection->channel = std::make_unique<ControlChannel>(m_token, ChannelSide::agent,
                                                             m_plan.inventory.nodes[node].name, k_max_request_bytes);
      int raw = fd.get();
      connection->fd = std::move(fd);
      m_connections[raw] = std::move(connection);
      m_loop.add(raw, EPOLLIN, [this, raw](std::uint32_t events) { on_io(raw, events); });
    }
  }

  void close(int fd)
  {
    m_loop.forget(fd);
    m_connections.erase(fd);
  }

  void on_io(int fd, std::uint32_t events)
  {
    auto it = m_connections.find(fd);
    if (it == m_connections.end()) return;
    auto& connection = *it->second;
    if (events & EPOLLIN) {
      char buffer[65536];
      for (;;) {
        auto got = ::read(fd, buffer, sizeof buffer);
        if (got > 0) {
          connection.channel->feed(std::string_view(buffer, std::size_t(got)));
          continue;
        }
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          close(fd);
          return;
        }
        if (errno == EAGAIN) break;
      }
      for (;;) {
        auto message = connection.channel->next();
        connection.out += connection.channel->take_output();
        if (!message) {
          flush(fd, connection);
          close(fd);
          return;
        }
        if (!*message) break;
        connection.channel->send(encode_response(answer(connection.node, **message)));
        connection.out += connection.channel->take_output();
      }
    }
    flush(fd, connection);
  }

  void flush(int fd, Connection& connection)
  {
    while (!connection.out.empty()) {
      auto sent = ::send(fd, connection.out.data(), connection.out.size(), MSG_NOSIGNAL);
      if (sent <= 0) break;
      connection.out.erase(0, std::size_t(sent));
    }
    m_loop.modify(fd, connection.out.empty() ? EPOLLIN : EPOLLIN | EPOLLOUT);
  }

  ControlResponse answer(std::size_t node, const std::string& message)
  {
    auto request = decode_request(message);
    if (!request) return {"", false, R"({"error": "bad request"})"};
    ++m_requests[request->type];
    const auto& type = request->type;
    if (type == "hello") {
      HelloReply hello;
      hello.node = m_plan.inventory.nodes[node].name;
      hello.version = "pm_agents";
      hello.instance = m_instances[node];
      hello.capture = true;
      return {request->id, true, to_json(hello)};
    }
    if (type == "probe") {
      auto body = parse_probe_request(request->body);
      if (!body) return {request->id, false, R"({"error": "bad probe request"})"};
      ProbeReply reply;
      for (const auto& target : body->targets) {
        Segment segment;
        segment.range = target.range;
        segment.state = ProbeState::open;
        segment.authentic = true;
        auto it = m_by_address.find(target.address);
        if (denied(node, target)) segment.state = ProbeState::filtered; // as the generated firewall drops it
        else if (it != m_by_address.end()) segment.responder = m_plan.inventory.nodes[it->second].name;
        else if (auto vip = m_vip_backends.find(target.range); vip != m_vip_backends.end()) segment.responders = vip->second;
        reply.targets.push_back({std::move(segment)});
      }
      return {request->id, true, to_json(reply)};
    }
    if (type == "observed") {
      auto queries = parse_observed_queries(request->body);
      ObservedReply reply;
      reply.capture = reply.departures = true;
      // Nothing arrived (no packet is probed), and, like a real agent, every
      // port a flow must not reach is held by a listener of ours: a filtered
      // deny is proof that the firewall stopped it.
      if (queries)
        for (const auto& query : *queries) {
          ObservedAnswer answer;
          if (!query.departed) answer.ports_listening = std::uint32_t(query.range.size());
          reply.answers.push_back(answer);
        }
      return {request->id, true, to_json(reply)};
    }
    if (type == "evaluate") {
      EvaluateReply reply;
      reply.backend = "nftables";
      reply.ports = reply.passed = m_inbound_ports[node];
      return {request->id, true, to_json(reply)};
    }
    if (type == "egress") return {request->id, true, to_json(EgressReply{})};
    if (type == "done") return {request->id, true, "{}"};
    return {request->id, false, R"({"error": "unknown request type"})"};
  }

  // A target inside a flow from `node` that must stay closed.
  bool denied(std::size_t node, const ProbeTarget& target) const
  {
    auto it = m_denied.find({node, target.protocol, target.address});
    if (it == m_denied.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(), [&](const PortRange& range) {
      return range.min <= target.range.min && target.range.max <= range.max;
    });
  }

  // The nodes a flow to the VIP reaches, as check expects them.
  std::vector<std::string> backends(const Flow& flow) const
  {
    std::vector<std::string> names;
    for (auto node : vip_backends(m_plan, flow)) names.push_back(m_plan.inventory.nodes[node].name);
    return names;
  }

  EventLoop& m_loop;
  const Plan& m_plan;
  const Token& m_token;
  std::vector<std::string> m_instances;
  std::vector<std::uint64_t> m_inbound_ports;
  std::map<std::string, std::size_t> m_by_address;
  std::map<PortRange, std::vector<std::string>> m_vip_backends;                       // the VIP's port -> backends
  std::map<std::tuple<std::size_t, Protocol, std::string>, std::vector<PortRange>> m_denied; // expect deny
  std::vector<Fd> m_listeners;
  std::map<int, std::unique_ptr<Connection>> m_connections;
  std::map<std::string, std::size_t> m_requests;
};

} // namespace

int
main(int argc, char** argv)
{
  if (argc != 3) {
    std::cerr << "usage: pm_agents TOKEN_FILE INVENTORY\n";
    return 2;
  }
  std::string error;
  auto token = Token::load(argv[1], error);
  if (!token) {
    std::cerr << "pm_agents: " << error << "\n";
    return 2;
  }
  auto inventory = load_inventory(argv[2]);
  if (!inventory) {
    std::cerr << "pm_agents: bad inventory " << argv[2] << "\n";
    return 2;
  }
  auto profile = load_profile(inventory->profile, inventory->profile_at);
  if (!profile) {
    std::cerr << "pm_agents: bad profile " << inventory->profile << "\n";
    return 2;
  }
  auto plan = make_plan(std::move(*profile), std::move(*inventory));
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  Fd signal_fd = termination_signals();
  EventLoop loop;
  Agents agents(loop, plan, *token);
  if (!agents.listen(error)) {
    std::cerr << "pm_agents: " << error << "\n";
    return 2;
  }
  loop.add(signal_fd.get(), EPOLLIN, [&loop](std::uint32_t) { loop.stop(); });
  std::cout << fmt::format("pm_agents: serving {} nodes", plan.inventory.nodes.size()) << std::endl;
  loop.run();
  std::cout << "pm_agents: " << agents.counts() << std::endl;
  return 0;
}
