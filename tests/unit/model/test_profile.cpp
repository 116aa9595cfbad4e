#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "model/profile.hpp"
#include "model/yaml_reader.hpp"
#include "../skip.hpp"

namespace portmatrix {
namespace {

const Requirement*
find(const Profile& profile, Role from, Role to, std::string_view port, Protocol protocol)
{
  for (const auto& r : profile.requirements) {
    if (r.from == from && r.to == to && r.port == port && r.protocol == protocol) return &r;
  }
  return nullptr;
}

std::size_t
count_between(const Profile& profile, Role from, Role to, Expect expect = Expect::allow)
{
  return std::count_if(profile.requirements.begin(), profile.requirements.end(), [&](const Requirement& r) {
    return r.from == from && r.to == to && r.expect == expect;
  });
}

// A `ports:` section of `count` ports p0, p1, ... (1000 up) on `protocol`,
// and their names, comma separated.
std::pair<std::string, std::string>
numbered_ports(int count, std::string_view protocol)
{
  std::string ports = "ports:\n";
  std::string names;
  for (int i = 0; i < count; ++i) {
    ports += fmt::format("  p{}: {{port: {}, protocol: {}}}\n", i, 1000 + i, protocol);
    names += fmt::format("{}p{}", names.empty() ? "" : ", ", i);
  }
  return {ports, names};
}

// Profile files in a directory of their own, removed with it.
class ProfileDir
{
public:
  ProfileDir() : m_root(std::filesystem::temp_directory_path() / ("pm-profiles-" + std::to_string(::getpid())))
  {
    std::filesystem::create_directories(m_root / "sub");
  }
  ~ProfileDir() { std::filesystem::remove_all(m_root); }
  std::string write(const std::string& name, const std::string& text)
  {
    std::ofstream(m_root / name) << text;
    return (m_root / name).string();
  }

private:
  std::filesystem::path m_root;
};

} // namespace

TEST(BuiltinProfiles, AllLoad)
{
  for (const auto& name : builtin_profile_names()) {
    auto profile = load_profile(name);
    EXPECT_TRUE(profile.has_value()) << name << ": "
                                     << (profile ? "" : to_string(profile.error().front()));
  }
}

// The guide's tables, entry by entry (shared/seed/port-requirements.txt).
TEST(BuiltinProfiles, ApinizerDocReproducesTheGuide)
{
  auto profile = load_profile("apinizer-doc");
  ASSERT_TRUE(profile.has_value());
  EXPECT_EQ(profile->validated_with.at("kubernetes"), "1.31.0");
  EXPECT_EQ(profile->validated_with.at("flannel"), "0.27.4");

  // Worker -> Master: 6443, 10250, 10259, 10257, 2379-2380 TCP; 8472 UDP; 51820/51821 UDP optional.
  for (auto port : {"kube-apiserver", "kubelet", "kube-scheduler", "kube-controller-manager", "etcd"}) {
    EXPECT_TRUE(find(*profile, Role::worker, Role::master, port, Protocol::tcp)) << port;
  }
  EXPECT_EQ(find(*profile, Role::worker, Role::master, "etcd", Protocol::tcp)->range, (PortRange{2379, 2380}));
  EXPECT_FALSE(find(*profile, Role::worker, Role::master, "flannel-vxlan", Protocol::udp)->optional);
  const auto* wireguard = find(*profile, Role::worker, Role::master, "flannel-wireguard", Protocol::udp);
  ASSERT_TRUE(wireguard);
  EXPECT_TRUE(wireguard->optional);
  EXPECT_EQ(wireguard->range, (PortRange{51820, 51821}));
  EXPECT_EQ(count_between(*profile, Role::worker, Role::master), 7u);

  // Master -> Worker: 10250, 30000-32767 TCP/UDP, 8472, 51820/51821 optional.
  EXPECT_TRUE(find(*profile, Role::master, Role::worker, "kubelet", Protocol::tcp));
  EXPECT_EQ(find(*profile, Role::master, Role::worker, "nodeport", Protocol::tcp)->range, (PortRange{30000, 32767}));
  EXPECT_TRUE(find(*profile, Role::master, Role::worker, "nodeport", Protocol::udp));
  EXPECT_TRUE(find(*profile, Role::master, Role::worker, "flannel-vxlan", Protocol::udp));
  EXPECT_TRUE(find(*profile, Role::master, Role::worker, "flannel-wireguard", Protocol::udp)->optional);
  EXPECT_EQ(count_between(*profile, Role::master, Role::worker), 5u);

  // Master <-> Master: 6443, 2379-2380, 10250, 10259, 10257, 8472 (no WireGuard in the guide).
  EXPECT_EQ(count_between(*profile, Role::master, Role::master), 6u);
  EXPECT_FALSE(find(*profile, Role::master, Role::master, "flannel-wireguard", Protocol::udp));

  // HA: master and worker -> VIP 6443, VIP -> each master 6443.
  EXPECT_TRUE(find(*profile, Role::master, Role::vip, "kube-apiserver", Protocol::tcp));
  EXPECT_TRUE(find(*profile, Role::worker, Role::vip, "kube-apiserver", Protocol::tcp));
  EXPECT_TRUE(find(*profile, Role::loadbalancer, Role::master, "kube-apiserver", Protocol::tcp));

  // Apinizer 32080 and 30080 on workers, MongoDB 27017, Elasticsearch 9200 / 9300.
  EXPECT_EQ(find(*profile, Role::any, Role::worker, "apinizer-manager", Protocol::tcp)->range.min, 32080);
  EXPECT_EQ(find(*profile, Role::any, Role::worker, "apinizer-worker", Protocol::tcp)->range.min, 30080);
  EXPECT_TRUE(find(*profile, Role::mongodb, Role::mongodb, "mongodb", Protocol::tcp));
  EXPECT_EQ(find(*profile, Role::worker, Role::elasticsearch, "elasticsearch-http", Protocol::tcp)->range.min, 9200);
  EXPECT_EQ(find(*profile, Role::elasticsearch, Role::elasticsearch, "elasticsearch-transport", Protocol::tcp)->range.min,
            9300);

  // Nothing the guide does not say: no worker <-> worker, no kube-proxy, no deny flows.
  EXPECT_EQ(count_between(*profile, Role::worker, Role::worker), 0u);
  EXPECT_FALSE(profile->find_port("kube-proxy-health"));
  EXPECT_TRUE(std::none_of(profile->requirements.begin(), profile->requirements.end(),
                           [](const Requirement& r) { return r.expect == Expect::deny; }));

  // The egress list as written, wildcards kept.
  std::vector<std::string> hosts;
  for (const auto& host : profile->egress) hosts.push_back(host.host);
  EXPECT_EQ(hosts, (std::vector<std::string>{"archive.ubuntu.com", "cdn.redhat.com", "*.docker.com", "*.docker.io",
                                             "*.k8s.io", "*.amazonaws.com", "*.mongodb.org", "artifacts.elastic.co"}));
}

// The port numbers a text names: runs of 4 or 5 digits that are not part of a
// version (1.31.0) or a longer number. The seed page names no port below 1000.
std::set<int>
port_numbers_in(const std::string& text)
{
  std::set<int> numbers;
  for (std::size_t at = 0; at < text.size();) {
    if (!std::isdigit(static_cast<unsigned char>(text[at]))) {
      ++at;
      continue;
    }
    auto end = at;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    bool version = (at > 0 && text[at - 1] == '.') || (end < text.size() && text[end] == '.' && end + 1 < text.size() &&
                                                        std::isdigit(static_cast<unsigned char>(text[end + 1])));
    if (!version && end - at >= 4 && end - at <= 5) numbers.insert(std::stoi(text.substr(at, end - at)));
    at = end;
  }
  return numbers;
}

// The seed page lives beside the repository (../shared/seed/, as in CI's
// checkout). Under CI a missing seed fails the test; elsewhere it is skipped.
TEST(BuiltinProfiles, ApinizerDocPortsAreTheSeedsPorts)
{
  std::ifstream in(PORTMATRIX_SEED);
  if (!in) PORTMATRIX_SKIP() << "the seed file is missing: " << PORTMATRIX_SEED;
  std::stringstream seed;
  seed << in.rdbuf();
  auto profile = load_profile("apinizer-doc");
  ASSERT_TRUE(profile.has_value());
  // Every port's bounds, and every value an option may move a port to (30080 or 30090).
  std::set<int> in_profile;
  for (const auto& port : profile->ports) in_profile.insert({port.range.min, port.range.max});
  for (const auto& option : profile->options) {
    if (option.sets_port.empty()) continue;
    for (const auto& value : option.values) in_profile.insert(std::stoi(value));
  }
  auto in_seed = port_numbers_in(seed.str());
  EXPECT_EQ(in_profile, in_seed) << "apinizer-doc: " << fmt::format("{}", fmt::join(in_profile, " "))
                                 << "\nseed page:   " << fmt::format("{}", fmt::join(in_seed, " "));
}

TEST(BuiltinProfiles, SeedPortNumbersSkipVersionsAndShortNumbers)
{
  EXPECT_EQ(port_numbers_in("Kubernetes 1.31.0, Flannel 0.27.4: 6443 and 2379-2380, Node 1:6443, 51820/51821, 123456"),
            (std::set<int>{2379, 2380, 6443, 51820, 51821}));
}

TEST(BuiltinProfiles, EveryApinizerCorrectionCarriesAReason)
{
  auto profile = load_profile("apinizer");
  ASSERT_TRUE(profile.has_value());
  for (const auto& r : profile->requirements) EXPECT_FALSE(r.reason.empty()) << r.key();
  for (const auto& h : profile->egress) EXPECT_FALSE(h.reason.empty()) << h.host;
  EXPECT_TRUE(find(*profile, Role::worker, Role::worker, "flannel-vxlan", Protocol::udp));
  EXPECT_TRUE(find(*profile, Role::master, Role::master, "flannel-wireguard", Protocol::udp));
  EXPECT_TRUE(find(*profile, Role::loadbalancer, Role::worker, "kube-proxy-health", Protocol::tcp));
  for (auto port : {"etcd", "kubelet", "kube-scheduler", "kube-controller-manager"}) {
    const auto* deny = find(*profile, Role::client, Role::master, port, Protocol::tcp);
    ASSERT_TRUE(deny) << port;
    EXPECT_EQ(deny->expect, Expect::deny);
  }
  EXPECT_EQ(find(*profile, Role::client, Role::mongodb, "mongodb", Protocol::tcp)->expect, Expect::deny);
  EXPECT_EQ(find(*profile, Role::client, Role::elasticsearch, "elasticsearch-transport", Protocol::tcp)->expect,
            Expect::deny);
  auto has_host = [&](std::string_view host) {
    return std::any_of(profile->egress.begin(), profile->egress.end(), [&](const EgressHost& h) { return h.host == host; });
  };
  EXPECT_TRUE(has_host("ghcr.io"));
  EXPECT_TRUE(has_host("*.pkg.dev"));
}

// A deny has a key of its own: it sits beside the allow of the same flow
// (under exclusive conditions) instead of replacing it, and `remove: true`
// keeps its reason for diff.
TEST(Profile, DenyBesideAllowAndRemovalReasons)
{
  auto base = testing::TempDir() + "pm-base.yaml";
  {
    std::ofstream out(base);
    out << "name: base\noptions: {watch: {default: \"no\", values: [\"no\", \"yes\"]}}\n"
           "ports: {m: {port: 9100, protocol: tcp}, e: {port: 2379, protocol: tcp}}\n"
           "requirements:\n"
           "  - {from: worker, to: master, ports: [m, e], reason: guide}\n";
  }
  auto profile = parse_profile(fmt::format(R"(name: tight
include: [{}]
requirements:
  - {{from: worker, to: master, ports: [e], remove: true, reason: only the masters use it}}
  - {{from: worker, to: master, ports: [e], expect: deny, reason: closed}}
  - {{from: worker, to: master, ports: [m], when: {{watch: "yes"}}, reason: a scraper}}
  - {{from: worker, to: master, ports: [m], expect: deny, when: {{watch: "no"}}, reason: no scraper}}
)",
                                           base),
                               "tight.yaml");
  ASSERT_TRUE(profile.has_value()) << (profile ? "" : to_string(profile.error().front()));
  std::size_t m = 0;
  for (const auto& r : profile->requirements) m += r.port == "m";
  EXPECT_EQ(m, 2u);
  ASSERT_EQ(profile->removals.size(), 1u);
  EXPECT_EQ(profile->removals[0].reason, "only the masters use it");
  EXPECT_EQ(profile->removals[0].key(), "worker>master:e/tcp");
  const auto* e = find(*profile, Role::worker, Role::master, "e", Protocol::tcp);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->expect, Expect::deny);
  EXPECT_EQ(e->key(), "worker>master:e/tcp deny");
}

TEST(BuiltinProfiles, ComposeKubernetesAndFlannel)
{
  auto profile = load_profile("kubernetes-1.31,flannel-0.27");
  ASSERT_TRUE(profile.has_value());
  EXPECT_EQ(profile->find_port("kube-proxy-health")->range.min, 10256);
  EXPECT_TRUE(find(*profile, Role::worker, Role::worker, "flannel-vxlan", Protocol::udp));
  EXPECT_TRUE(profile->find_option("flannel_backend"));
}

// Issue 17 point 4: kubernetes-1.31 reproduces the upstream Ports and
// Protocols page, and says so row by row: a reason starts with "upstream:"
// or, for what the page does not list, "portmatrix addition:". The ports the
// page gives to "Self" (10257, 10259) are the node's own, never another's.
TEST(BuiltinProfiles, KubernetesMarksItsAdditionsAndOpensNoSelfOnlyPort)
{
  for (auto name : {"kubernetes-1.29", "kubernetes-1.31", "kubernetes-1.32"}) {
    auto profile = load_profile(name);
    ASSERT_TRUE(profile.has_value()) << name;
    for (const auto& r : profile->requirements) {
      EXPECT_TRUE(r.reason.starts_with("upstream: ") || r.reason.starts_with("portmatrix addition: "))
        << name << " " << r.key() << ": " << r.reason;
      EXPECT_NE(r.port, "kube-scheduler") << name << " " << r.key();
      EXPECT_NE(r.port, "kube-controller-manager") << name << " " << r.key();
    }
    const auto* udp = find(*profile, Role::any, Role::worker, "nodeport", Protocol::udp);
    const auto* tcp = find(*profile, Role::any, Role::worker, "nodeport", Protocol::tcp);
    const auto* lb_master = find(*profile, Role::loadbalancer, Role::master, "kube-proxy-health", Protocol::tcp);
    const auto* lb_worker = find(*profile, Role::loadbalancer, Role::worker, "kube-proxy-health", Protocol::tcp);
    ASSERT_TRUE(udp && tcp && lb_master && lb_worker) << name;
    EXPECT_TRUE(udp->reason.starts_with("portmatrix addition: ")) << udp->reason;
    EXPECT_TRUE(lb_master->reason.starts_with("portmatrix addition: ")) << lb_master->reason;
    EXPECT_TRUE(tcp->reason.starts_with("upstream: ")) << tcp->reason;
    EXPECT_TRUE(lb_worker->reason.starts_with("upstream: ")) << lb_worker->reason;
    const auto* etcd = find(*profile, Role::master, Role::master, "etcd", Protocol::tcp);
    ASSERT_TRUE(etcd) << name;
    EXPECT_EQ(count_between(*profile, Role::worker, Role::master), 1u) << name << ": the API server only";
  }
}

TEST(BuiltinProfiles, OverlayTunnelsAreMarkedWithTheirEncapsulation)
{
  auto flannel = load_profile("flannel-0.27");
  ASSERT_TRUE(flannel.has_value());
  EXPECT_EQ(flannel->find_port("flannel-vxlan")->encapsulation, Encapsulation::vxlan);
  EXPECT_EQ(flannel->find_port("flannel-vxlan")->vni, 1u);
  EXPECT_EQ(flannel->find_port("flannel-wireguard")->encapsulation, Encapsulation::wireguard);
  auto calico = load_profile("calico-3.29");
  ASSERT_TRUE(calico.has_value());
  EXPECT_EQ(calico->find_port("calico-vxlan")->vni, 4096u);
  auto cilium = load_profile("cilium-1.16");
  ASSERT_TRUE(cilium.has_value());
  EXPECT_EQ(cilium->find_port("cilium-geneve")->encapsulation, Encapsulation::geneve);
  EXPECT_EQ(cilium->find_port("cilium-health")->encapsulation, Encapsulation::none);
}

TEST(Profile, AnEncapsulationIsAUdpPortsAndItsVniFitsIn24Bits)
{
  auto result = parse_profile(R"(name: tunnels
ports:
  a: {port: 8472, protocol: tcp, encapsulation: vxlan}
  b: {port: 8472, protocol: udp, encapsulation: gre}
  c: {port: 4789, protocol: udp, encapsulation: vxlan, vni: 16777216}
  d: {port: 51820, protocol: udp, encapsulation: wireguard, vni: 1}
  e: {port: 6081, protocol: udp, vni: 1}
  f: {port: 6081, protocol: udp, encapsulation: geneve, vni: 16777215}
)",
                              "t.yaml");
  ASSERT_FALSE(result.has_value());
  std::string all;
  for (const auto& d : result.error()) all += to_string(d) + "\n";
  EXPECT_NE(all.find("t.yaml:3:49: error: an encapsulation is carried on UDP"), std::string::npos) << all;
  EXPECT_NE(all.find("t.yaml:4:49: error: unknown encapsulation 'gre'"), std::string::npos) << all;
  EXPECT_NE(all.find("t.yaml:5:61: error: vni must be a number from 0 to 16777215"), std::string::npos) << all;
  EXPECT_NE(all.find("t.yaml:6:66: error: wireguard has no vni"), std::string::npos) << all;
  EXPECT_NE(all.find("t.yaml:7:39: error: vni belongs to an encapsulation"), std::string::npos) << all;
  EXPECT_EQ(all.find("t.yaml:8"), std::string::npos) << all;
}

TEST(Profile, ReportsAllErrorsWithPositions)
{
  auto result = parse_profile(R"(name: broken
colour: red
ports:
  a: {port: 70000, protocol: tcp}
  b: {port: 100, protocol: sctp}
  c: {port: 200, protocol: tcp}
requirements:
  - {from: wizard, to: master, ports: [c]}
  - {from: worker, to: master, ports: [nope]}
  - {from: worker, to: master, ports: [c], when: {backend: x}}
)",
                              "p.yaml");
  ASSERT_FALSE(result.has_value());
  std::string all;
  for (const auto& d : result.error()) all += to_string(d) + "\n";
  EXPECT_NE(all.find("p.yaml:2:1: error: unknown key 'colour'"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:4:13: error: port 'a': port 70000 is outside 1-65535"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:5:28: error: unknown protocol 'sctp'"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:8:12: error: unknown role 'wizard'"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:9:40: error: unknown port name 'nope'"), std::string::npos) << all;
}

TEST(Profile, ASecondDocumentIsAnError)
{
  auto result = parse_profile("name: a\nports: {p: {port: 100, protocol: tcp}}\n---\nname: b\n", "p.yaml");
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().size(), 1u);
  EXPECT_EQ(to_string(result.error()[0]), "p.yaml:3:1: error: a second YAML document starts here; a file holds one "
                                          "inventory or profile (its later documents would be ignored)");
}

TEST(Profile, DenyContradictingAllowIsAnError)
{
  auto result = parse_profile(R"(name: contradiction
ports: {p: {port: 100, protocol: tcp}}
requirements:
  - {from: any, to: master, ports: [p]}
  - {from: client, to: master, ports: [p], expect: deny}
)",
                              "p.yaml");
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error()[0].message.find("contradicts"), std::string::npos);
  EXPECT_EQ(result.error()[0].line, 5);
}

TEST(Profile, IncludeCyclesAndUnknownIncludesAreErrors)
{
  auto unknown = parse_profile("name: x\ninclude: [no-such-profile]\n", "p.yaml");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error()[0].message.find("unknown profile 'no-such-profile'"), std::string::npos);
  EXPECT_EQ(unknown.error()[0].line, 2);
  auto device = parse_profile("name: x\ninclude: [/dev/zero]\n", "p.yaml");
  ASSERT_FALSE(device.has_value());
  EXPECT_NE(device.error()[0].message.find("not a regular file"), std::string::npos);
}

TEST(Profile, ErrorsAboutTheSpecAreReportedWhereItWasWritten)
{
  Diagnostic key{"inv.yaml", 2, 1, {}};
  auto unknown = load_profile("apinizer,nosuch", key);
  ASSERT_FALSE(unknown.has_value());
  ASSERT_EQ(unknown.error().size(), 1u);
  EXPECT_EQ(to_string(unknown.error()[0]).substr(0, 50), "inv.yaml:2:1: error: unknown profile 'nosuch' (bui");
  auto unreadable = load_profile("/nonexistent/p.yaml");
  ASSERT_FALSE(unreadable.has_value());
  EXPECT_EQ(to_string(unreadable.error()[0]),
            "--profile: error: cannot read profile '/nonexistent/p.yaml': not a regular file");
}

TEST(Profile, AnEmptyNameInACompositionIsAnError)
{
  for (auto spec : {"apinizer,", ",apinizer", "kubernetes-1.31,,flannel-0.27", ","}) {
    auto result = load_profile(spec);
    ASSERT_FALSE(result.has_value()) << spec;
    ASSERT_EQ(result.error().size(), 1u) << spec;
    EXPECT_EQ(to_string(result.error()[0]),
              fmt::format("--profile: error: '{}' has an empty profile name (a comma with no name on one side)", spec));
  }
  auto none = load_profile("", {"inv.yaml", 3, 1, {}});
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(to_string(none.error()[0]), "inv.yaml:3:1: error: no profile named");
}

TEST(Profile, AnIncludeCycleIsNamedFileByFile)
{
  ProfileDir dir;
  auto a = dir.write("a.yaml", "name: a\ninclude: [./sub/b.yaml]\n");
  dir.write("sub/b.yaml", "name: b\ninclude: [../a.yaml]\n");
  auto result = load_profile(a);
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().size(), 1u);
  auto b = a.substr(0, a.size() - 6) + "sub/b.yaml";
  EXPECT_EQ(to_string(result.error()[0]),
            fmt::format("{}:2:11: error: include cycle: {} includes {} includes {}", b, a, b, a));
  auto self = dir.write("self.yaml", "name: self\ninclude: [self.yaml]\n");
  result = load_profile(self);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(to_string(result.error()[0]), fmt::format("{}:2:11: error: include cycle: {} includes {}", self, self, self));
}

TEST(Profile, IncludesNestAtMostSixteenDeep)
{
  ProfileDir dir;
  std::string first;
  for (int i = 0; i < 20; ++i) {
    auto path = dir.write(fmt::format("p{}.yaml", i), fmt::format("name: p{}\ninclude: [p{}.yaml]\n", i, i + 1));
    if (i == 0) first = path;
  }
  dir.write("p20.yaml", "name: p20\n");
  auto result = load_profile(first);
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().size(), 1u);
  EXPECT_EQ(result.error()[0].line, 2);
  EXPECT_NE(result.error()[0].file.find("p16.yaml"), std::string::npos);
  EXPECT_NE(result.error()[0].message.find("profile includes nest deeper than 16 (at "), std::string::npos);
  EXPECT_EQ(result.error()[0].message.find("./"), std::string::npos);
}

TEST(Profile, RemoveDropsARequirementAndLaterDefinitionsReplace)
{
  auto result = parse_profile(R"(name: trimmed
include: [apinizer-doc]
requirements:
  - {from: worker, to: master, ports: [etcd], remove: true, reason: workers never talk to etcd}
  - {from: worker, to: master, ports: [kubelet], optional: true, reason: test}
)",
                              "p.yaml");
  ASSERT_TRUE(result.has_value()) << to_string(result.error()[0]);
  EXPECT_FALSE(find(*result, Role::worker, Role::master, "etcd", Protocol::tcp));
  EXPECT_TRUE(find(*result, Role::worker, Role::master, "kubelet", Protocol::tcp)->optional);
  EXPECT_EQ(find(*result, Role::worker, Role::master, "kubelet", Protocol::tcp)->origin, "trimmed");
}

TEST(Profile, DuplicateKeysAreErrorsInEveryMapping)
{
  auto result = parse_profile(R"(name: dup
options:
  o: {default: a, default: b}
  o: {default: c}
ports:
  kube-apiserver: {port: 6443, protocol: tcp}
  kube-apiserver: {port: 8443, protocol: tcp}
requirements:
  - {from: worker, to: master, ports: [kube-apiserver], from: client}
loadbalancer:
  frontends: [{name: api, port: kube-apiserver, name: other}]
)",
                              "p.yaml");
  ASSERT_FALSE(result.has_value());
  std::string all;
  for (const auto& d : result.error()) all += to_string(d) + "\n";
  EXPECT_NE(all.find("p.yaml:3:19: error: duplicate key 'default' in options.o (first at line 3)"), std::string::npos)
    << all;
  EXPECT_NE(all.find("p.yaml:4:3: error: duplicate key 'o' in options (first at line 3)"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:7:3: error: duplicate key 'kube-apiserver' in ports (first at line 6)"), std::string::npos)
    << all;
  EXPECT_NE(all.find("p.yaml:9:57: error: duplicate key 'from' in requirements[0]"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:11:49: error: duplicate key 'name' in loadbalancer.frontends[0]"), std::string::npos)
    << all;
  EXPECT_EQ(result.error().size(), 5u) << all;
}

TEST(Profile, PortSettingOptionValuesMustBePorts)
{
  auto result = parse_profile(R"(name: p
ports: {a: {port: 1000, protocol: tcp}}
options: {o: {default: "1", values: ["1", "99999", "abc", "0", "2000-2001"], sets_port: a}}
)",
                              "p.yaml");
  ASSERT_FALSE(result.has_value());
  std::string all;
  for (const auto& d : result.error()) all += to_string(d) + "\n";
  EXPECT_NE(all.find("p.yaml:3:43: error: option 'o' value '99999' is not a port (1-65535) (it sets port 'a')"),
            std::string::npos)
    << all;
  EXPECT_NE(all.find("p.yaml:3:52: error: option 'o' value 'abc'"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:3:59: error: option 'o' value '0'"), std::string::npos) << all;
  EXPECT_EQ(result.error().size(), 3u) << all;
  auto fine = parse_profile(R"(name: p
ports: {a: {port: 1000, protocol: tcp}}
options: {o: {default: "1", values: ["1", "65535"], sets_port: a}, p: {default: abc, values: [abc, "99999"]}}
)",
                            "p.yaml");
  EXPECT_TRUE(fine.has_value());
  auto bad_default = parse_profile("name: p\nports: {a: {port: 1000, protocol: tcp}}\n"
                                   "options: {o: {default: none, sets_port: a}}\n",
                                   "p.yaml");
  ASSERT_FALSE(bad_default.has_value());
  EXPECT_EQ(to_string(bad_default.error()[0]),
            "p.yaml:3:24: error: option 'o' value 'none' is not a port (1-65535) (it sets port 'a')");
}

TEST(Profile, AnOptionThatSetsAnUnknownPortIsPositioned)
{
  auto result = parse_profile("name: p\noptions:\n  o: {default: \"1000\", sets_port: nosuch}\n", "p.yaml");
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().size(), 1u);
  EXPECT_EQ(to_string(result.error()[0]), "p.yaml:3:3: error: option 'o' sets unknown port 'nosuch'");
}

TEST(Profile, AFileStopsAfterAHundredErrors)
{
  std::string text = "name: many\nrequirements:\n";
  for (int i = 0; i < 1000; ++i) text += "  - {from: wizard, to: master, ports: [x]}\n";
  auto result = parse_profile(text, "p.yaml");
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().size(), k_max_errors + 1);
  EXPECT_EQ(to_string(result.error().back()), "p.yaml: error: too many errors (more than 100); fix these first");
}

TEST(Profile, ItsChecksStopAfterAHundredErrors)
{
  // 300 ports, each allowed from any client and denied to clients: 600 contradictions.
  auto [ports, names] = numbered_ports(300, "tcp");
  auto result = parse_profile("name: many\n" + ports + "requirements:\n  - {from: any, to: [master, worker], ports: [" +
                                names + "]}\n  - {from: client, to: [master, worker], ports: [" + names +
                                "], expect: deny}\n",
                              "p.yaml");
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().size(), k_max_errors + 1);
  EXPECT_NE(result.error().front().message.find("contradicts"), std::string::npos);
  EXPECT_EQ(to_string(result.error().back()), "<profile many>: error: too many errors (more than 100); fix these first");
}

TEST(Profile, AProfileOfMoreRequirementsThanAnyClusterIsRefusedQuickly)
{
  // One line asks for 7 sources x 7 destinations x 2,600 ports x 2 protocols: 254,800 requirements.
  auto [ports, names] = numbered_ports(2600, "[tcp, udp]");
  auto start = std::chrono::steady_clock::now();
  auto result = parse_profile("name: huge\n" + ports +
                                "requirements:\n  - {from: [any, master, worker, mongodb, elasticsearch, loadbalancer, "
                                "client], to: [vip, master, worker, mongodb, elasticsearch, loadbalancer, client], "
                                "ports: [" + names + "]}\n",
                              "p.yaml");
  // About 2 s (0.25 million requirements composed); one key lookup after another took hours.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().size(), 1u);
  EXPECT_EQ(result.error()[0].line, 2604);
  EXPECT_NE(result.error()[0].message.find("more than 250000 requirements"), std::string::npos);
}

} // namespace portmatrix
