// `portmatrix preflight`: on a node, before an install or on a running
// cluster, whether the node itself is ready for the flows the plan gives it:
// its ports (free, or who holds them), its live firewall (would each required
// inbound flow be accepted, and by which rule), and the kernel bits the
// cluster network needs.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/sockets.hpp"
#include "plan/plan.hpp"
#include "preflight/iptables.hpp"
#include "preflight/kernel.hpp"
#include "preflight/nftables.hpp"
#include "preflight/rule_eval.hpp"
#include "util/expected.hpp"

namespace portmatrix {

// install: a port held by another process is a failure (the service cannot
// bind it); running: the owner is shown as information.
enum class PreflightMode { install, running };

struct PortHolder
{
  std::uint16_t port = 0;
  std::string address; // the socket's local address
  std::optional<ProcessInfo> owner;
  std::string answered_by; // TCP: what the holder answers as (identify/), "" when not asked
};

// One required port range of one protocol.
struct PortsCheck
{
  Protocol protocol = Protocol::tcp;
  PortRange range;
  std::string names; // the named ports, comma separated
  std::vector<PortHolder> held; // taken ports, ascending
  CheckStatus status = CheckStatus::pass;
};

// One run of ports of one required inbound flow, with what the firewall decides.
struct FirewallResult
{
  std::string from;         // source node
  std::string from_address;
  std::string to_address;   // the node, or the VIP on a load balancer
  Protocol protocol = Protocol::tcp;
  PortRange ports;
  std::string purpose;
  Expect expect = Expect::allow;
  Decision decision = Decision::unknown;
  std::string rule;
  CheckStatus status = CheckStatus::pass;
};

struct FirewallManager
{
  std::string name;    // firewalld, ufw
  std::string summary; // what it allows, condensed from its own output
};

struct PreflightReport
{
  std::string node;
  std::string address;
  PreflightMode mode = PreflightMode::install;
  std::vector<PortsCheck> ports;
  std::string backend; // "nftables", "iptables", "nftables+iptables", "none"
  std::vector<FirewallResult> firewall;
  std::vector<FirewallManager> managers;
  std::vector<KernelCheck> kernel;
  int passed = 0, failed = 0, warnings = 0, skipped = 0;
};

// The node's required ports against `sockets` (read_sockets()); owners are
// looked up under `proc` in one pass.
std::vector<PortsCheck> check_ports(const Plan& plan, const Node& node, const std::vector<SocketEntry>& sockets,
                                    PreflightMode mode, const std::filesystem::path& proc = "/proc");

// Every required inbound flow of `node` (and, on a load balancer, the VIP's)
// through `firewalls` in the order packets meet them; empty: no firewall.
std::vector<FirewallResult> check_firewall(const Plan& plan, const Node& node,
                                           const std::vector<const RuleEvaluator*>& firewalls,
                                           const std::string& interface = {});

// Fills the summary counts from every check's status.
void count(PreflightReport& report);

// The live firewalls as text, as `nft -j list ruleset`, iptables(-legacy)-save,
// ip6tables(-legacy)-save and `ipset save` print them (empty: not installed,
// or nothing there). Runs those programs: needs CAP_NET_ADMIN.
struct FirewallText
{
  bool nft_present = false;
  int nft_status = 0;
  std::string nft;
  std::string iptables;
  std::string ip6tables;
  std::string ipset;
};
FirewallText read_firewall_text();

// The evaluators of FirewallText, in the order packets meet them.
struct LiveFirewalls
{
  std::optional<NftRuleset> nft;
  std::optional<IptablesRuleset> legacy;
  std::string backend; // "nftables", "iptables", "nftables+iptables", "none"

  // Not empty ones; pointers into this object.
  std::vector<const RuleEvaluator*> evaluators() const;
};
// Parses what read_firewall_text() read; an error when nft's JSON is bad
// or nft failed.
Expected<LiveFirewalls, std::string> parse_firewalls(const FirewallText& text);

struct PreflightOptions
{
  PreflightMode mode = PreflightMode::install;
  std::filesystem::path root = "/"; // where /proc and /sys are read (tests: a fixture tree)
  bool address_check = true;        // the node's address must be on this host
  // Ask each TCP port's holder who it is (one harmless request per protocol
  // tried, identify/), at most k_identify_holders of them, all at once.
  bool identify = true;
  std::chrono::milliseconds identify_timeout{1000};
};

inline constexpr std::size_t k_identify_holders = 32;

// Fills `answered_by` of the TCP holders in `ports` (at most
// k_identify_holders, in parallel): what answers there. A wildcard socket is
// asked on `address`.
void identify_holders(const Profile& profile, const std::string& address, std::vector<PortsCheck>& ports,
                      std::chrono::milliseconds timeout);

// Runs every check on this host: reads the socket tables, runs nft,
// iptables-save, ipset, firewall-cmd and ufw where present. An error (exit
// status 2) when the node's address is not on this host and
// options.address_check is set.
Expected<PreflightReport, std::string> run_preflight(const Plan& plan, const Node& node, const PreflightOptions& options);

int exit_status(const PreflightReport& report); // 0 nothing failed, else 1

} // namespace portmatrix
