// The egress list: profile expansion (wildcards -> concrete hosts, the
// distribution condition), the inventory's overrides with positioned errors,
// and the allowlists rendered from it.
#include <gtest/gtest.h>

#include <algorithm>

#include "model/egress_entry.hpp"
#include "model/inventory.hpp"
#include "plan/egress.hpp"
#include "report/egress_report.hpp"

namespace portmatrix {
namespace {

const char* k_nodes = "nodes:\n  - {name: m1, address: 10.0.0.1, roles: [master]}\n";

std::vector<std::string>
target_names(const std::vector<EgressTarget>& targets)
{
  std::vector<std::string> out;
  for (const auto& t : targets) out.push_back(t.host + ":" + std::to_string(t.port.port) + "/" + std::string(to_string(t.port.scheme)));
  return out;
}

bool
contains(const std::vector<std::string>& list, std::string_view item)
{
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Every diagnostic, one per line, as the command line prints them.
std::string
joined(const Diagnostics& diagnostics)
{
  std::string all;
  for (const auto& d : diagnostics) all += to_string(d) + "\n";
  return all;
}

struct Loaded
{
  Inventory inventory;
  Profile profile;
  Diagnostics problems;
};

Loaded
load(const std::string& inventory_text, std::string_view profile_name = "apinizer")
{
  auto inventory = parse_inventory(inventory_text, "inv.yaml");
  EXPECT_TRUE(inventory.has_value()) << (inventory ? "" : to_string(inventory.error().front()));
  auto profile = load_profile(profile_name);
  EXPECT_TRUE(profile.has_value());
  auto problems = check_against(*inventory, *profile);
  return {*inventory, *profile, problems};
}

} // namespace

TEST(EgressProfile, TheGuideKeepsItsWildcardsTheCorrectionNamesConcreteHosts)
{
  auto doc = load_profile("apinizer-doc");
  ASSERT_TRUE(doc.has_value());
  std::vector<std::string> unchecked;
  auto doc_targets = egress_targets(resolve_egress(resolve(*doc, nullptr), nullptr), &unchecked);
  // The guide's wildcards cannot be checked: only its three concrete hosts are.
  EXPECT_EQ(unchecked, (std::vector<std::string>{"*.docker.com", "*.docker.io", "*.k8s.io", "*.amazonaws.com", "*.mongodb.org"}));
  EXPECT_EQ(target_names(doc_targets), (std::vector<std::string>{"archive.ubuntu.com:80/http", "archive.ubuntu.com:443/https",
                                                                 "cdn.redhat.com:443/https", "artifacts.elastic.co:443/https"}));

  auto apinizer = load_profile("apinizer");
  ASSERT_TRUE(apinizer.has_value());
  unchecked.clear();
  auto names = target_names(egress_targets(resolve_egress(resolve(*apinizer, nullptr), nullptr), &unchecked));
  EXPECT_TRUE(unchecked.empty());
  for (auto host : {"registry-1.docker.io:443/https", "auth.docker.io:443/https", "production.cloudflare.docker.com:443/https",
                    "download.docker.com:443/https", "registry.k8s.io:443/https", "pkgs.k8s.io:443/https",
                    "dl.k8s.io:443/https", "repo.mongodb.org:443/https", "artifacts.elastic.co:443/https",
                    "ghcr.io:443/https", "archive.ubuntu.com:80/http"}) {
    EXPECT_TRUE(contains(names, host)) << host;
  }
  EXPECT_TRUE(std::any_of(names.begin(), names.end(), [](const std::string& n) {
    return n.starts_with("prod-registry-k8s-io-") && n.find(".amazonaws.com:443") != std::string::npos;
  }));
  // Ubuntu by default: no Red Hat CDN.
  EXPECT_FALSE(contains(names, "cdn.redhat.com:443/https"));
}

// Issue 17 point 4: the hosts the guide's wildcards miss or get wrong,
// checked against their sources (the reasons in apinizer.yaml name them).
TEST(EgressProfile, TheCorrectionNamesTheHostsTheRedirectsReach)
{
  auto apinizer = load_profile("apinizer");
  ASSERT_TRUE(apinizer.has_value());
  auto names = target_names(egress_targets(resolve_egress(resolve(*apinizer, nullptr), nullptr)));
  for (auto host : {"security.ubuntu.com:80/http", "prod-cdn.packages.k8s.io:443/https", "cdn.dl.k8s.io:443/https",
                    "production.cloudfront.docker.com:443/https",
                    "docker-images-prod.6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com:443/https",
                    "pgp.mongodb.com:443/https", "github.com:443/https", "release-assets.githubusercontent.com:443/https",
                    "us-west1-docker.pkg.dev:443/https", "d39mqg4b1dx9z1.cloudfront.net:443/https"}) {
    EXPECT_TRUE(contains(names, host)) << host;
  }
  EXPECT_EQ(std::count_if(names.begin(), names.end(),
                          [](const std::string& n) { return n.starts_with("prod-registry-k8s-io-"); }),
            10);
  EXPECT_FALSE(contains(names, "ports.ubuntu.com:80/http")); // no arm64 nodes by default

  // ports.ubuntu.com needs both conditions: Ubuntu and arm64 nodes.
  auto arm = load(std::string("options: {arm64_nodes: \"true\"}\n") + k_nodes);
  ASSERT_TRUE(arm.problems.empty());
  auto plan = make_plan(arm.profile, arm.inventory);
  EXPECT_TRUE(contains(target_names(egress_targets(resolve_egress(plan.matrix, &plan.inventory))), "ports.ubuntu.com:80/http"));
  auto rhel = load(std::string("options: {arm64_nodes: \"true\", distribution: redhat}\n") + k_nodes);
  ASSERT_TRUE(rhel.problems.empty());
  auto rhel_plan = make_plan(rhel.profile, rhel.inventory);
  EXPECT_FALSE(
    contains(target_names(egress_targets(resolve_egress(rhel_plan.matrix, &rhel_plan.inventory))), "ports.ubuntu.com:80/http"));
}

TEST(EgressProfile, DistributionOptionPicksTheMirror)
{
  auto loaded = load(std::string("options: {distribution: redhat}\n") + k_nodes);
  ASSERT_TRUE(loaded.problems.empty());
  auto plan = make_plan(loaded.profile, loaded.inventory);
  auto names = target_names(egress_targets(resolve_egress(plan.matrix, &plan.inventory)));
  EXPECT_TRUE(contains(names, "cdn.redhat.com:443/https"));
  EXPECT_FALSE(contains(names, "archive.ubuntu.com:80/http"));
}

TEST(EgressProfile, BadEntriesArePositioned)
{
  auto profile = parse_profile(R"(name: p
options: {}
egress:
  - {host: "bad host", ports: [443]}
  - {host: ok.example, ports: [70000, 80/gopher]}
  - {host: "*.x.example", serves: ["*.y.example"]}
)",
                               "p.yaml");
  ASSERT_FALSE(profile.has_value());
  auto all = joined(profile.error());
  EXPECT_NE(all.find("p.yaml:4:12: error: host 'bad host' is not a host name"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:5:32: error: egress port '70000'"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:5:39: error: egress port '80/gopher'"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:6:36: error: a served host '*.y.example'"), std::string::npos) << all;
}

TEST(EgressProfile, ConditionsNameRealOptionsAndValues)
{
  auto profile = parse_profile(R"(name: p
options:
  distribution: {default: a, values: [a, b]}
egress:
  - {host: c.example, when: {distribution: c}}
  - {host: d.example, when: {nosuch: a}}
)",
                               "p.yaml");
  ASSERT_FALSE(profile.has_value());
  auto all = joined(profile.error());
  EXPECT_NE(all.find("p.yaml:5:5: error: option 'distribution' cannot be 'c'"), std::string::npos) << all;
  EXPECT_NE(all.find("p.yaml:6:5: error: 'when' names unknown option 'nosuch'"), std::string::npos) << all;
}

TEST(EgressInventory, RemoveReplaceAdd)
{
  auto loaded = load(std::string(R"(egress:
  remove: ["*.amazonaws.com", "*.pkg.dev"]
  replace: {"*.docker.io": [mirror.corp.example], "*.k8s.io": k8s-mirror.corp.example}
  add:
    - {host: artifacts.corp.example, ports: [8443], purpose: internal artifacts}
)") + k_nodes);
  ASSERT_TRUE(loaded.problems.empty()) << to_string(loaded.problems.front());
  auto plan = make_plan(loaded.profile, loaded.inventory);
  auto hosts = resolve_egress(plan.matrix, &plan.inventory);
  auto names = target_names(egress_targets(hosts));
  EXPECT_FALSE(std::any_of(names.begin(), names.end(), [](const std::string& n) {
    return n.find("amazonaws") != std::string::npos || n.find("docker.io") != std::string::npos ||
           n.find("k8s.io") != std::string::npos || n.find("pkg.dev") != std::string::npos;
  }));
  EXPECT_TRUE(contains(names, "mirror.corp.example:443/https"));
  EXPECT_TRUE(contains(names, "k8s-mirror.corp.example:443/https"));
  EXPECT_TRUE(contains(names, "artifacts.corp.example:8443/https"));
  auto mirror = std::find_if(hosts.begin(), hosts.end(), [](const EgressHost& h) { return h.host == "mirror.corp.example"; });
  ASSERT_NE(mirror, hosts.end());
  EXPECT_EQ(mirror->purpose, "Docker Hub registry");
  EXPECT_EQ(mirror->reason, "replaces *.docker.io (inv.yaml:3)");
}

TEST(EgressInventory, ShapeErrorsArePositioned)
{
  auto inventory = parse_inventory(std::string(R"(egress:
  add:
    - {host: "not a host"}
    - {host: ok.example, when: {distribution: ubuntu}}
  remove: bare-string
  replace: {"*.docker.io": []}
  rename: {}
)") + k_nodes,
                                   "inv.yaml");
  ASSERT_FALSE(inventory.has_value());
  auto all = joined(inventory.error());
  EXPECT_NE(all.find("inv.yaml:3:14: error: host 'not a host' is not a host name"), std::string::npos) << all;
  EXPECT_NE(all.find("inv.yaml:4:26: error: unknown key 'when'"), std::string::npos) << all;
  EXPECT_NE(all.find("inv.yaml:5:11: error: egress remove"), std::string::npos) << all;
  EXPECT_NE(all.find("inv.yaml:6:28: error: egress replace '*.docker.io' names no host"), std::string::npos) << all;
  EXPECT_NE(all.find("inv.yaml:7:3: error: unknown key 'rename'"), std::string::npos) << all;
}

TEST(EgressInventory, AnEmptyPortListIsAnError)
{
  auto inventory = parse_inventory(std::string("egress: {add: [{host: a.example, ports: []}]}\n") + k_nodes, "inv.yaml");
  ASSERT_FALSE(inventory.has_value());
  EXPECT_EQ(joined(inventory.error()), "inv.yaml:1:41: error: ports lists no port (leave it out for 443/https)\n");
  auto profile = parse_profile("name: p\negress:\n  - {host: b.example, ports: []}\n", "p.yaml");
  ASSERT_FALSE(profile.has_value());
  EXPECT_EQ(joined(profile.error()), "p.yaml:3:30: error: ports lists no port (leave it out for 443/https)\n");
}

TEST(EgressInventory, EachHostIsNamedOnce)
{
  auto inventory = parse_inventory(std::string(R"(egress:
  add:
    - {host: a.example}
    - {host: b.example}
    - {host: A.Example, ports: [8443]}
  remove: ["*.amazonaws.com", "*.pkg.dev", "*.amazonaws.com"]
  replace:
    "*.pkg.dev": mirror.example
    "*.docker.io": [m1.example, m2.example, M1.example]
    "*.DOCKER.io": other.example
)") + k_nodes,
                                   "inv.yaml");
  ASSERT_FALSE(inventory.has_value());
  auto all = joined(inventory.error());
  auto reported = [&](std::string_view line) { return all.find(line) != std::string::npos; };
  EXPECT_TRUE(reported("inv.yaml:5:14: error: duplicate egress add host 'A.Example' (first at line 3)")) << all;
  EXPECT_TRUE(reported("inv.yaml:6:44: error: duplicate egress remove host '*.amazonaws.com' (first at line 6)")) << all;
  EXPECT_TRUE(reported("inv.yaml:8:5: error: egress host '*.pkg.dev' is both removed (line 6) and replaced")) << all;
  EXPECT_TRUE(reported("inv.yaml:9:45: error: duplicate replacement host 'M1.example' (first at line 9)")) << all;
  EXPECT_TRUE(reported("inv.yaml:10:5: error: duplicate egress replace host '*.DOCKER.io' (first at line 9)")) << all;
  EXPECT_EQ(inventory.error().size(), 5u) << all;
}

TEST(EgressInventory, HostLabelsNeitherStartNorEndWithAHyphen)
{
  for (auto bad : {"-a.example", "a-.example", "a.-example", "a.example-", "*.-x.example", "a..example", "a.example.",
                   "a_b.example"}) {
    EXPECT_FALSE(valid_egress_name(bad, true)) << bad;
  }
  for (auto good : {"a-b.example", "x--y.example", "1.example", "*.docker.io", "localhost"}) {
    EXPECT_TRUE(valid_egress_name(good, true)) << good;
  }
  EXPECT_FALSE(valid_egress_name(std::string(64, 'a') + ".example", false));
  EXPECT_TRUE(valid_egress_name(std::string(63, 'a') + ".example", false));
  auto inventory = parse_inventory(std::string(R"(egress:
  add: [{host: -b.example}, {host: c-.example, serves: [d-.example]}]
  replace: {"*.docker.io": [-m.example]}
)") + k_nodes,
                                   "inv.yaml");
  ASSERT_FALSE(inventory.has_value());
  auto all = joined(inventory.error());
  EXPECT_NE(all.find("inv.yaml:2:16: error: host '-b.example' is not a host name or *.domain (dot-separated labels of "
                     "1-63 letters, digits and '-', none starting or ending with '-')"),
            std::string::npos)
    << all;
  EXPECT_NE(all.find("inv.yaml:2:36: error: host 'c-.example' is not a host name"), std::string::npos) << all;
  EXPECT_NE(all.find("inv.yaml:3:29: error: replacement '-m.example' is not a host name"), std::string::npos) << all;
  EXPECT_EQ(inventory.error().size(), 4u) << all; // and "egress replace '*.docker.io' names no host"
}

TEST(EgressInventory, OverridesMustMatchTheProfile)
{
  auto loaded = load(std::string(R"(egress:
  remove: ["*.nosuch.example"]
  replace: {"quay.io": mirror.example}
  add: [{host: ghcr.io}]
)") + k_nodes);
  auto all = joined(loaded.problems);
  EXPECT_NE(all.find("inv.yaml:2:12: error: egress remove '*.nosuch.example': profile apinizer lists no such host"),
            std::string::npos)
    << all;
  EXPECT_NE(all.find("inv.yaml:3:13: error: egress replace 'quay.io'"), std::string::npos) << all;
  EXPECT_NE(all.find("inv.yaml:4:9: error: egress add 'ghcr.io': profile apinizer lists it already"), std::string::npos)
    << all;
}

TEST(EgressAllowlist, WildcardsCoverTheirHostsSquidWritesDotDomain)
{
  std::vector<EgressHost> hosts(4);
  hosts[0].host = "*.docker.io";
  hosts[0].serves = {"registry-1.docker.io"};
  hosts[0].ports = {{443, EgressScheme::https}};
  hosts[1].host = "auth.docker.io"; // covered by the wildcard
  hosts[1].ports = {{443, EgressScheme::https}};
  hosts[2].host = "archive.ubuntu.com";
  hosts[2].ports = {{80, EgressScheme::http}, {443, EgressScheme::https}};
  hosts[3].host = "docker.io"; // not covered: *.docker.io is only subdomains
  hosts[3].ports = {{443, EgressScheme::https}};
  EXPECT_EQ(egress_allowlist(hosts), (std::vector<std::string>{"*.docker.io", "archive.ubuntu.com", "docker.io"}));
  EXPECT_EQ(render_allowlist(hosts, EgressFormat::domains, "c"), "*.docker.io\narchive.ubuntu.com\ndocker.io\n");
  auto squid = render_allowlist(hosts, EgressFormat::squid, "c");
  EXPECT_NE(squid.find("\nacl portmatrix_egress dstdomain .docker.io\n"), std::string::npos) << squid;
  EXPECT_NE(squid.find("\nacl portmatrix_egress dstdomain archive.ubuntu.com\n"), std::string::npos) << squid;
  EXPECT_EQ(squid.find("auth.docker.io"), std::string::npos) << squid;
  EXPECT_NE(squid.find("\nacl portmatrix_egress_ports port 80 443\n"), std::string::npos) << squid;
}

} // namespace portmatrix
