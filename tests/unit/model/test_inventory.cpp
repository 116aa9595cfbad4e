#include <gtest/gtest.h>

#include <chrono>

#include "model/inventory.hpp"
#include "model/yaml_reader.hpp"

namespace portmatrix {
namespace {

Diagnostics
errors_of(std::string_view text)
{
  auto result = parse_inventory(text, "inv.yaml");
  EXPECT_FALSE(result.has_value());
  return result ? Diagnostics{} : result.error();
}

bool
has(const Diagnostics& diagnostics, int line, int column, std::string_view fragment)
{
  for (const auto& d : diagnostics) {
    if (d.line == line && d.column == column && d.message.find(fragment) != std::string::npos) return true;
  }
  std::string all;
  for (const auto& d : diagnostics) all += to_string(d) + "\n";
  ADD_FAILURE() << "no diagnostic at " << line << ":" << column << " containing '" << fragment << "' in:\n" << all;
  return false;
}

} // namespace

TEST(Inventory, LoadsTheDesignExample)
{
  auto inventory = parse_inventory(R"(cluster: prod
profile: apinizer
options: {flannel_backend: vxlan, apinizer_worker_port: 30080}
loadbalancer: {vip: 10.0.0.100, port: 6443}
ports: {kube-apiserver: 6443}
admin_cidrs: [10.0.0.0/24]
agent: {control_port: 7946}
nodes:
  - {name: master1, address: 10.0.0.11, roles: [master]}
  - {name: worker1, address: 10.0.0.21, roles: [worker]}
  - {name: lb1,     address: 10.0.0.5,  roles: [loadbalancer]}
  - {name: cp6,     address: "fd00::6", roles: [control-plane, worker]}
)",
                                   "inv.yaml");
  ASSERT_TRUE(inventory.has_value());
  EXPECT_EQ(inventory->cluster, "prod");
  ASSERT_EQ(inventory->nodes.size(), 4u);
  EXPECT_TRUE(inventory->nodes[3].ipv6);
  EXPECT_TRUE(inventory->nodes[3].has(Role::master));
  EXPECT_TRUE(inventory->nodes[3].has(Role::worker));
  EXPECT_EQ(inventory->loadbalancer->vip, "10.0.0.100");
  EXPECT_EQ(inventory->control_port, 7946);
  EXPECT_EQ(inventory->port_overrides.at("kube-apiserver").value, (PortRange{6443, 6443}));
}

TEST(Inventory, ReportsEveryErrorOfAFileAtOnceWithPositions)
{
  auto errors = errors_of(R"(cluster: prod
colour: blue
ports: {kube-apiserver: 70000, etcd: 2380-2379}
admin_cidrs: [10.0.0.0/33]
nodes:
  - {name: m1, address: 10.0.0.11, roles: [master]}
  - {name: m1, address: 10.0.0.12, roles: [wizard]}
  - {name: w1, address: 10.0.0.11, roles: [worker]}
  - {name: w2, address: 10.0.0.300, roles: [worker]}
  - {name: w3, address: 10.0.0.31}
  - {name: w4, address: 10.0.0.41, roles: []}
)");
  EXPECT_TRUE(has(errors, 2, 1, "unknown key 'colour'"));
  EXPECT_TRUE(has(errors, 3, 25, "outside 1-65535"));
  EXPECT_TRUE(has(errors, 3, 38, "first port above its last"));
  EXPECT_TRUE(has(errors, 4, 15, "not an address or CIDR"));
  EXPECT_TRUE(has(errors, 7, 12, "duplicate node name 'm1'"));
  EXPECT_TRUE(has(errors, 7, 44, "unknown role 'wizard'"));
  EXPECT_TRUE(has(errors, 8, 25, "duplicate address 10.0.0.11"));
  EXPECT_TRUE(has(errors, 9, 25, "not an IPv4 or IPv6 address"));
  EXPECT_TRUE(has(errors, 10, 5, "has no roles"));
  EXPECT_TRUE(has(errors, 11, 43, "has no roles"));
  EXPECT_EQ(errors.size(), 10u);
}

TEST(Inventory, LongValuesAreCutInMessages)
{
  std::string huge(1'000'000, 'x');
  std::string key(1000, 'k'); // YAML allows at most 1024 characters in a simple key
  auto errors = errors_of("nodes:\n  - name: " + huge + "\n    address: 10.0.0.1\n    roles: [" + huge + "]\n    " +
                          key + ": 1\n");
  auto cut = std::string(64, 'x') + "... (1000000 bytes)";
  EXPECT_TRUE(has(errors, 2, 11, "node name '" + cut + "' must be 1-63"));
  EXPECT_TRUE(has(errors, 4, 13, "unknown role '" + cut + "' in roles"));
  EXPECT_TRUE(has(errors, 5, 5, "unknown key '" + std::string(64, 'k') + "... (1000 bytes)' in a node"));
  EXPECT_EQ(errors.size(), 3u);
  for (const auto& error : errors) EXPECT_LT(error.message.size(), 300u);
}

TEST(Inventory, RemembersWhereItsProfileIsNamed)
{
  auto inventory = parse_inventory("cluster: x\nprofile: [apinizer, flannel-0.27]\n"
                                   "nodes: [{name: a, address: 10.0.0.1, roles: [master]}]\n",
                                   "inv.yaml");
  ASSERT_TRUE(inventory.has_value());
  EXPECT_EQ(inventory->profile, "apinizer,flannel-0.27");
  EXPECT_EQ(to_string(inventory->profile_at), "inv.yaml:2:1: error: ");
  auto errors = errors_of("profile: [apinizer, '']\nnodes: [{name: a, address: 10.0.0.1, roles: [master]}]\n");
  EXPECT_TRUE(has(errors, 1, 21, "an empty profile name"));
}

TEST(Inventory, ReportsSyntaxErrorsWithTheirPosition)
{
  auto errors = errors_of("nodes:\n  - {name: a, address: [\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].file, "inv.yaml");
  EXPECT_GT(errors[0].line, 0);
}

// An unclosed list, mapping or quote is detected where the text ends or the
// next construct begins; the message points at where it was opened (issue
// 19: `roles: [master` on line 5 was reported only as 6:1).
TEST(Inventory, AnUnclosedConstructIsReportedWhereItBegins)
{
  const std::string head = "cluster: x\nprofile: apinizer\nnodes:\n  - name: m1\n";
  auto list = errors_of(head + "    roles: [master\n    address: 10.0.0.1\n");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(has(list, 5, 12, "the flow list opened here by '[' is never closed with ']' (detected at "));
  EXPECT_TRUE(has(list, 5, 12, "end of sequence flow not found"));
  auto map = errors_of(head + "    address: 10.0.0.1\n    roles: [master]\nloadbalancer: {vip: 10.0.0.100, port: 6443\n");
  EXPECT_TRUE(has(map, 7, 15, "the flow mapping opened here by '{' is never closed with '}'"));
  // The inner list of a mapping closed by '}': the list is the one left open.
  auto crossed = errors_of(head + "    address: 10.0.0.1\n    roles: [master\nloadbalancer: {vip: 10.0.0.100}\n");
  EXPECT_TRUE(has(crossed, 6, 12, "the flow list opened here by '['"));
  // A quote: the apostrophe inside a plain scalar and a comment's quote do not count.
  auto quote = errors_of("# it's the guide's example\ncluster: it's mine\nnodes:\n  - {name: \"m1, address: 10.0.0.1}\n");
  EXPECT_TRUE(has(quote, 4, 12, "the quoted string opened here by '\"' is never closed"));
  auto single = errors_of("nodes:\n  - {name: 'it''s, roles: [master]}\n"); // '' is a quote inside
  EXPECT_TRUE(has(single, 2, 12, "the quoted string opened here by \"'\" is never closed with \"'\""));
  // Closed by the wrong bracket: yaml-cpp stops at the '}', the '[' is what was left open.
  auto wrong = errors_of("cluster: x\nnodes: [{name: a, roles: [master}]\n");
  EXPECT_TRUE(has(wrong, 2, 26, "the flow list opened here by '[' is never closed with ']' (detected at 2:33: illegal flow end)"));
}

// A mistyped key, role or option is answered with the nearest known one.
TEST(Inventory, AMistypedKeyRoleOrOptionGetsASuggestion)
{
  auto errors = errors_of("cluster: x\noptions: {flanel_backend: vxlan}\nnodes:\n"
                          "  - {name: m1, adress: 10.0.0.1, roles: [mastr]}\n");
  EXPECT_TRUE(has(errors, 4, 16, "unknown key 'adress' in a node; did you mean 'address'? (known: "));
  EXPECT_TRUE(has(errors, 4, 42, "unknown role 'mastr' in roles; did you mean 'master'? (known: "));
  auto inventory = parse_inventory("cluster: x\noptions: {flanel_backend: vxlan}\nnodes:\n"
                                   "  - {name: m1, address: 10.0.0.1, roles: [master]}\n", "inv.yaml");
  ASSERT_TRUE(inventory.has_value());
  auto profile = load_profile("apinizer");
  ASSERT_TRUE(profile.has_value());
  auto problems = check_against(*inventory, *profile);
  EXPECT_TRUE(has(problems, 2, 11, "unknown option 'flanel_backend' for profile apinizer; did you mean 'flannel_backend'?"));
}

TEST(Inventory, RejectsEmptyAndNonMappingDocuments)
{
  EXPECT_TRUE(has(errors_of(""), 0, 0, "empty"));
  EXPECT_TRUE(has(errors_of("- a\n- b\n"), 1, 1, "must be a mapping"));
  EXPECT_TRUE(has(errors_of("cluster: x\n"), 1, 1, "no 'nodes'"));
  EXPECT_TRUE(has(errors_of("cluster: x\nnodes: []\n"), 2, 8, "the inventory lists no nodes"));
}

// An empty optional section means what leaving it out means
// (docs/inventory.md): no overrides, no client networks, SSH from anywhere.
TEST(Inventory, EmptyOptionalSectionsAreLikeLeavingThemOut)
{
  auto inventory = parse_inventory(R"(options: {}
ports: {}
admin_cidrs: []
client_cidrs: []
egress: {add: [], remove: [], replace: {}}
nodes: [{name: a, address: 10.0.0.1, roles: [master]}]
)",
                                   "inv.yaml");
  ASSERT_TRUE(inventory.has_value()) << to_string(inventory.error().front());
  EXPECT_TRUE(inventory->options.empty());
  EXPECT_TRUE(inventory->port_overrides.empty());
  EXPECT_TRUE(inventory->admin_cidrs.empty());
  EXPECT_TRUE(inventory->egress.add.empty());
}

TEST(Inventory, ASecondDocumentIsAnError)
{
  auto errors = errors_of("nodes: [{name: a, address: 10.0.0.1, roles: [master]}]\n---\nnodes: []\n");
  EXPECT_TRUE(has(errors, 2, 1, "a second YAML document starts here"));
  EXPECT_EQ(errors.size(), 1u);
  EXPECT_TRUE(has(errors_of("cluster: a\n...\n--- \n"), 3, 1, "a second YAML document"));
  // One document with its markers is fine.
  EXPECT_TRUE(parse_inventory("---\nnodes: [{name: a, address: 10.0.0.1, roles: [master]}]\n...\n", "inv.yaml"));
}

TEST(Inventory, ChecksOptionsAndOverridesAgainstTheProfile)
{
  auto inventory = parse_inventory(R"(options: {flannel_backend: calico, colour: red}
ports: {kube-apiserver: 8443, etcdd: 2379}
nodes: [{name: m1, address: 10.0.0.1, roles: [master]}]
)",
                                   "inv.yaml");
  ASSERT_TRUE(inventory.has_value());
  auto profile = load_profile("apinizer");
  ASSERT_TRUE(profile.has_value());
  auto problems = check_against(*inventory, *profile);
  EXPECT_TRUE(has(problems, 1, 11, "cannot be 'calico'"));
  EXPECT_TRUE(has(problems, 1, 36, "unknown option 'colour'"));
  EXPECT_TRUE(has(problems, 2, 31, "override of port 'etcdd'"));
  EXPECT_EQ(problems.size(), 3u);
}

TEST(Inventory, ItsChecksAgainstTheProfileStopAfterAHundredErrors)
{
  std::string options = "options:\n";
  for (int i = 0; i < 300; ++i) options += "  colour" + std::to_string(i) + ": red\n";
  auto inventory = parse_inventory(options + "nodes: [{name: m1, address: 10.0.0.1, roles: [master]}]\n", "inv.yaml");
  ASSERT_TRUE(inventory.has_value());
  auto profile = load_profile("apinizer");
  ASSERT_TRUE(profile.has_value());
  auto problems = check_against(*inventory, *profile);
  ASSERT_EQ(problems.size(), k_max_errors + 1);
  EXPECT_EQ(to_string(problems.back()), "inv.yaml: error: too many errors (more than 100); fix these first");
}

TEST(Inventory, AddressAndCidrParsing)
{
  bool ipv6 = false;
  EXPECT_TRUE(parse_cidr("10.0.0.0/8", ipv6));
  EXPECT_FALSE(ipv6);
  EXPECT_TRUE(parse_cidr("fd00::/64", ipv6));
  EXPECT_TRUE(ipv6);
  EXPECT_FALSE(parse_cidr("fd00::/129", ipv6));
  EXPECT_FALSE(parse_cidr("10.0.0.0/", ipv6));
  EXPECT_FALSE(parse_address("10.0.0", ipv6));
}

TEST(Inventory, ACidrWithHostBitsSaysWhichNetworkIsMeant)
{
  auto errors = errors_of(R"(admin_cidrs: [10.0.0.1/24, 10.0.0.0/24, 10.1.2.3/32, 10.1.2.3, 0.0.0.0/0, 192.168.7.255/21]
client_cidrs: ["fd00::1/64", "fd00::/64", "2001:db8:ffff::/33", "::/0"]
nodes: [{name: a, address: 10.0.0.1, roles: [master]}]
)");
  EXPECT_TRUE(has(errors, 1, 15, "10.0.0.1/24 in admin_cidrs has bits set past its prefix: 10.0.0.0/24 is probably "
                                 "meant (or 10.0.0.1 for that host alone)"));
  EXPECT_TRUE(has(errors, 1, 75, "192.168.7.255/21 in admin_cidrs has bits set past its prefix: 192.168.0.0/21"));
  EXPECT_TRUE(has(errors, 2, 16, "fd00::1/64 in client_cidrs has bits set past its prefix: fd00::/64 is probably meant "
                                 "(or fd00::1 for that host alone)"));
  EXPECT_TRUE(has(errors, 2, 43, "2001:db8:ffff::/33 in client_cidrs has bits set past its prefix: 2001:db8:8000::/33"));
  EXPECT_EQ(errors.size(), 4u);
}

TEST(Inventory, AnAddressWithAnEmbeddedNulIsNoAddress)
{
  using namespace std::string_view_literals;
  bool ipv6 = false;
  EXPECT_FALSE(parse_address("1.2.3.4\0garbage"sv, ipv6));
  EXPECT_FALSE(parse_address("fd00::1\0"sv, ipv6));
  EXPECT_FALSE(parse_cidr("10.0.0.0\0/8"sv, ipv6));
  EXPECT_FALSE(address_identity("1.2.3.4\0"sv));
  auto errors = errors_of(R"(loadbalancer: {vip: "10.0.0.100\0x"}
admin_cidrs: ["10.0.0.0/8\0"]
nodes:
  - {name: a, address: "1.2.3.4\0garbage", roles: [worker]}
  - {name: b, address: 1.2.3.4, roles: [worker]}
)");
  EXPECT_TRUE(has(errors, 1, 21, "vip '10.0.0.100\\0x' is not an IPv4 or IPv6 address"));
  EXPECT_TRUE(has(errors, 2, 15, "'10.0.0.0/8\\0' in admin_cidrs is not an address or CIDR"));
  EXPECT_TRUE(has(errors, 4, 24, "'1.2.3.4\\0garbage' is not an IPv4 or IPv6 address"));
  EXPECT_EQ(errors.size(), 3u);
}

TEST(Inventory, UnspecifiedBroadcastAndMulticastAddressesAreNoHostsAddress)
{
  auto errors = errors_of(R"(loadbalancer: {vip: 224.0.0.18}
nodes:
  - {name: a, address: 0.0.0.0, roles: [worker]}
  - {name: b, address: "::", roles: [worker]}
  - {name: c, address: 255.255.255.255, roles: [worker]}
  - {name: d, address: 239.1.2.3, roles: [worker]}
  - {name: e, address: "ff02::1", roles: [worker]}
  - {name: f, address: "::ffff:0.0.0.0", roles: [worker]}
  - {name: g, address: 223.255.255.255, roles: [worker]}
  - {name: h, address: 240.0.0.1, roles: [worker]}
  - {name: i, address: "fe80::1", roles: [worker]}
)");
  EXPECT_TRUE(has(errors, 1, 21, "vip 224.0.0.18 is a multicast address; the VIP must be a unicast address"));
  EXPECT_TRUE(has(errors, 3, 24, "address 0.0.0.0 is the unspecified address; a node needs a unicast address"));
  EXPECT_TRUE(has(errors, 4, 24, "address :: is the unspecified address"));
  EXPECT_TRUE(has(errors, 5, 24, "address 255.255.255.255 is the broadcast address"));
  EXPECT_TRUE(has(errors, 6, 24, "address 239.1.2.3 is a multicast address"));
  EXPECT_TRUE(has(errors, 7, 24, "address ff02::1 is a multicast address"));
  EXPECT_TRUE(has(errors, 8, 24, "address ::ffff:0.0.0.0 is the unspecified address"));
  EXPECT_EQ(errors.size(), 7u); // 223.255.255.255, 240.0.0.1 and fe80::1 are unicast
  EXPECT_TRUE(has(errors_of("loadbalancer: {vip: \"::\"}\nnodes: [{name: a, address: 10.0.0.1, roles: [master]}]\n"),
                  1, 21, "vip :: is the unspecified address"));
}

TEST(Inventory, InterfacesAreLinuxInterfaceNames)
{
  auto errors = errors_of(R"(loadbalancer: {vip: 10.0.0.100, interface: "eth 0"}
nodes:
  - {name: a, address: 10.0.0.1, roles: [loadbalancer], interface: "et\th0"}
  - {name: b, address: 10.0.0.2, roles: [loadbalancer], interface: "eth0\e[31m"}
  - {name: c, address: 10.0.0.3, roles: [loadbalancer], interface: abcdefghijklmnop}
  - {name: d, address: 10.0.0.4, roles: [loadbalancer], interface: ../eth0}
  - {name: e, address: 10.0.0.5, roles: [loadbalancer], interface: ".."}
  - {name: f, address: 10.0.0.6, roles: [loadbalancer], interface: ""}
  - {name: g, address: 10.0.0.7, roles: [loadbalancer], interface: "eth0:1"}
  - {name: h, address: 10.0.0.8, roles: [loadbalancer], interface: abcdefghijklmno}
  - {name: i, address: 10.0.0.9, roles: [loadbalancer], interface: enp0s31f6.100}
)");
  EXPECT_TRUE(has(errors, 1, 44, "interface 'eth 0' is not a Linux interface name (1-15 bytes, no '/', ':', white space "
                                 "or control characters, not '.' or '..')"));
  EXPECT_TRUE(has(errors, 3, 68, "interface 'et\\th0' is not a Linux interface name"));
  EXPECT_TRUE(has(errors, 4, 68, "interface 'eth0\\x1b[31m' is not"));
  EXPECT_TRUE(has(errors, 5, 68, "interface 'abcdefghijklmnop' is not"));
  EXPECT_TRUE(has(errors, 6, 68, "interface '../eth0' is not"));
  EXPECT_TRUE(has(errors, 7, 68, "interface '..' is not"));
  EXPECT_TRUE(has(errors, 8, 68, "interface '' is not"));
  EXPECT_TRUE(has(errors, 9, 68, "interface 'eth0:1' is not"));
  EXPECT_EQ(errors.size(), 8u); // 15 bytes, and a VLAN's dot, are fine
}

TEST(Inventory, OneAddressWrittenTwoWaysIsADuplicate)
{
  auto errors = errors_of(R"(loadbalancer: {vip: "::ffff:10.0.0.2"}
nodes:
  - {name: a, address: "2001:DB8::1", roles: [worker]}
  - {name: b, address: "2001:db8::1", roles: [worker]}
  - {name: c, address: "2001:0db8:0:0:0:0:0:1", roles: [worker]}
  - {name: d, address: "::1", roles: [worker]}
  - {name: e, address: "0:0:0:0:0:0:0:1", roles: [worker]}
  - {name: f, address: 10.0.0.1, roles: [worker]}
  - {name: g, address: "::ffff:10.0.0.1", roles: [worker]}
  - {name: h, address: 10.0.0.2, roles: [worker]}
  - {name: i, address: "::10.0.0.1", roles: [worker]}
)");
  EXPECT_TRUE(has(errors, 4, 24, "duplicate address 2001:db8::1 (first at line 3, as 2001:DB8::1)"));
  EXPECT_TRUE(has(errors, 5, 24, "duplicate address 2001:0db8:0:0:0:0:0:1 (first at line 3, as 2001:DB8::1)"));
  EXPECT_TRUE(has(errors, 7, 24, "duplicate address 0:0:0:0:0:0:0:1 (first at line 6, as ::1)"));
  EXPECT_TRUE(has(errors, 9, 24, "duplicate address ::ffff:10.0.0.1 (first at line 8, as 10.0.0.1)"));
  EXPECT_TRUE(has(errors, 1, 21, "the vip ::ffff:10.0.0.2 is also node 'h''s address (10.0.0.2)"));
  EXPECT_EQ(errors.size(), 5u); // ::10.0.0.1 (IPv4-compatible, deprecated) is another address
  EXPECT_EQ(address_identity("::ffff:10.0.0.1"), address_identity("10.0.0.1"));
  EXPECT_NE(address_identity("::10.0.0.1"), address_identity("10.0.0.1"));
}

TEST(Inventory, DuplicateKeysAreErrorsInEveryMapping)
{
  auto errors = errors_of(R"(ports:
  kube-apiserver: 6443
  kube-apiserver: 8443
options: {flannel_backend: vxlan, flannel_backend: wireguard}
loadbalancer: {vip: 10.0.0.100, vip: 10.0.0.101}
egress:
  replace: {registry-1.docker.io: [mirror.example], registry-1.docker.io: [other.example]}
  add: [{host: a.example, host: b.example}]
nodes:
  - {name: a, address: 10.0.0.1, roles: [worker], name: b}
)");
  EXPECT_TRUE(has(errors, 3, 3, "duplicate key 'kube-apiserver' in ports (first at line 2)"));
  EXPECT_TRUE(has(errors, 4, 35, "duplicate key 'flannel_backend' in options (first at line 4)"));
  EXPECT_TRUE(has(errors, 5, 33, "duplicate key 'vip' in loadbalancer"));
  EXPECT_TRUE(has(errors, 7, 53, "duplicate key 'registry-1.docker.io' in egress.replace"));
  EXPECT_TRUE(has(errors, 8, 27, "duplicate key 'host' in egress.add[0]"));
  EXPECT_TRUE(has(errors, 10, 51, "duplicate key 'name' in nodes[0]"));
  EXPECT_EQ(errors.size(), 6u);
}

TEST(Inventory, AliasesDoNotMakeTheDuplicateKeyWalkExponential)
{
  std::string text = "a0: &a0 {x: 1}\n";
  // Each level names the previous one twice: 2^40 paths, 40 nodes.
  for (int i = 1; i < 40; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + "]\n";
  }
  text += "nodes: [{name: a, address: 10.0.0.1, roles: [worker]}]\n";
  auto start = std::chrono::steady_clock::now();
  auto errors = errors_of(text);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(has(errors, 2, 1, "unknown key 'a1'"));
}

TEST(Inventory, AFileStopsAfterAHundredErrors)
{
  std::string text = "nodes:\n";
  for (int i = 0; i < 1000; ++i) text += "  - 1\n";
  auto errors = errors_of(text);
  ASSERT_EQ(errors.size(), k_max_errors + 1);
  EXPECT_TRUE(has(errors, 101, 5, "a node must be a mapping"));
  EXPECT_EQ(to_string(errors.back()), "inv.yaml: error: too many errors (more than 100); fix these first");
}

TEST(Inventory, AFileWithMoreValuesThanAnyClusterIsRefusedBeforeItIsBuilt)
{
  std::string flow = "nodes:\n  - {name: a, address: 10.0.0.1, roles: [";
  for (std::size_t i = 0; i < k_max_values; ++i) flow += "x,";
  flow += "x]}\n";
  auto errors = errors_of(flow);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("more than 250000 lines and commas"), std::string::npos);
  std::string block = "nodes:\n";
  for (std::size_t i = 0; i < k_max_values / 2; ++i) block += "  - {a: b}\n"; // three values a line
  errors = errors_of(block);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("more than 250000 values"), std::string::npos);
}

TEST(Inventory, PortSettingOptionsTakeOnlyPorts)
{
  auto profile = parse_profile(R"(name: p
options: {o: {default: "1000", sets_port: a}}
ports: {a: {port: 1000, protocol: tcp}}
requirements: [{from: worker, to: worker, ports: [a]}]
)",
                               "p.yaml");
  ASSERT_TRUE(profile.has_value());
  auto inventory = parse_inventory("options: {o: abc}\nnodes: [{name: a, address: 10.0.0.1, roles: [worker]}]\n",
                                   "inv.yaml");
  ASSERT_TRUE(inventory.has_value());
  auto problems = check_against(*inventory, *profile);
  EXPECT_TRUE(has(problems, 1, 11, "option 'o' value 'abc' is not a port (1-65535) (it sets port 'a')"));
  EXPECT_EQ(problems.size(), 1u);
}

TEST(Inventory, SshAndControlPortsMustNotBePortsANodeReceives)
{
  auto profile = load_profile("apinizer");
  ASSERT_TRUE(profile.has_value());
  auto check = [&](std::string_view text) {
    auto inventory = parse_inventory(text, "inv.yaml");
    EXPECT_TRUE(inventory.has_value());
    return inventory ? check_against(*inventory, *profile) : Diagnostics{};
  };
  auto problems = check(R"(agent: {control_port: 6443}
ssh_port: 10250
nodes: [{name: m, address: 10.0.0.1, roles: [master]}]
)");
  EXPECT_TRUE(has(problems, 1, 23, "agent control_port 6443 is also port 'kube-apiserver' (6443/tcp), which profile "
                                   "apinizer has master nodes receive"));
  EXPECT_TRUE(has(problems, 2, 11, "ssh_port 10250 is also port 'kubelet'"));
  EXPECT_EQ(problems.size(), 2u);
  // Only ports some node of this inventory receives: no master, no 6443.
  EXPECT_TRUE(check("agent: {control_port: 6443}\nnodes: [{name: c, address: 10.0.0.1, roles: [client]}]\n").empty());
  // The port as this inventory moves it.
  auto moved = check(R"(ports: {kube-apiserver: 8443}
agent: {control_port: 8443}
nodes: [{name: m, address: 10.0.0.1, roles: [master]}]
)");
  EXPECT_TRUE(has(moved, 2, 23, "agent control_port 8443 is also port 'kube-apiserver' (8443/tcp)"));
  EXPECT_TRUE(check("ports: {kube-apiserver: 8443}\nagent: {control_port: 6443}\n"
                    "nodes: [{name: m, address: 10.0.0.1, roles: [master]}]\n")
                .empty());
  // The defaults (ssh 22, control 7946) are fine, and so is an explicit ssh_port 22.
  EXPECT_TRUE(check("ssh_port: 22\nnodes: [{name: m, address: 10.0.0.1, roles: [master, worker]}]\n").empty());
  EXPECT_TRUE(has(check("ssh_port: 2222\nagent: {control_port: 2222}\nnodes: [{name: m, address: 10.0.0.1, roles: "
                        "[worker]}]\n"),
                  2, 23, "agent control_port 2222 is also the ssh_port"));
}

} // namespace portmatrix

namespace portmatrix {

TEST(InventorySsh, ReadsTheTopLevelAndPerNodeSections)
{
  auto inventory = parse_inventory(R"(ssh:
  user: admin
  port: 2200
  identity_file: /keys/id_ed25519
  proxy_jump: admin@bastion:22
  sudo: true
  options: ["UserKnownHostsFile=/x/known_hosts", "ConnectTimeout 5"]
nodes:
  - name: m1
    address: 10.0.0.11
    roles: [master]
    ssh: {host: m1.example, port: 2222, user: root, sudo: false, options: [BatchMode=yes]}
  - {name: w1, address: 10.0.0.21, roles: [worker]}
)",
                                   "inv.yaml");
  ASSERT_TRUE(inventory.has_value());
  const auto& top = inventory->ssh;
  EXPECT_EQ(top.user, "admin");
  EXPECT_EQ(top.port, 2200);
  EXPECT_EQ(top.identity_file, "/keys/id_ed25519");
  EXPECT_EQ(top.proxy_jump, "admin@bastion:22");
  EXPECT_EQ(top.sudo, true);
  EXPECT_EQ(top.options, (std::vector<std::string>{"UserKnownHostsFile=/x/known_hosts", "ConnectTimeout 5"}));
  EXPECT_FALSE(top.host);
  const auto& m1 = inventory->nodes[0].ssh;
  EXPECT_EQ(m1.host, "m1.example");
  EXPECT_EQ(m1.port, 2222);
  EXPECT_EQ(m1.user, "root");
  EXPECT_EQ(m1.sudo, false);
  EXPECT_EQ(m1.options, std::vector<std::string>{"BatchMode=yes"});
  const auto& w1 = inventory->nodes[1].ssh;
  EXPECT_FALSE(w1.host || w1.user || w1.port || w1.sudo);
}

TEST(InventorySsh, ReportsBadValuesWhereTheyAreWritten)
{
  auto errors = errors_of(R"(ssh:
  host: h
  user: "-oProxyCommand=x"
  port: 70000
  sudo: maybe
  options: ["ControlPath=/tmp/x", "NoValue", "Bad\nLine=1"]
  colour: red
nodes:
  - name: m1
    address: 10.0.0.11
    roles: [master]
    ssh: {host: "a b", proxy_jump: "", identity_file: "", port: 1-2}
)");
  EXPECT_TRUE(has(errors, 2, 3, "unknown key 'host'"));
  EXPECT_TRUE(has(errors, 3, 9, "must be one word"));
  EXPECT_TRUE(has(errors, 4, 9, "outside 1-65535"));
  EXPECT_TRUE(has(errors, 5, 9, "must be true or false"));
  EXPECT_TRUE(has(errors, 6, 13, "portmatrix's own"));
  EXPECT_TRUE(has(errors, 6, 35, "must read Key=Value"));
  EXPECT_TRUE(has(errors, 6, 46, "must read Key=Value"));
  EXPECT_TRUE(has(errors, 7, 3, "unknown key 'colour'"));
  EXPECT_TRUE(has(errors, 12, 17, "ssh host 'a b' must be one word"));
  EXPECT_TRUE(has(errors, 12, 36, "ssh proxy_jump '' must be one word"));
  EXPECT_TRUE(has(errors, 12, 55, "identity_file '' must be a path"));
  EXPECT_TRUE(has(errors, 12, 65, "single port"));
}

} // namespace portmatrix
