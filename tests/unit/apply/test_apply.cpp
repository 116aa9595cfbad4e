// apply/: the node-local steps against a fake host (what ran, what was
// written, in which order), the rollback script, and the rollout order.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "apply/apply.hpp"
#include "apply/rollout.hpp"
#include "model/inventory.hpp"

namespace portmatrix {
namespace {

class FakeHost : public ApplyHost
{
public:
  ProcessResult run(const std::vector<std::string>& argv, const std::string& input) override
  {
    std::string line;
    for (const auto& word : argv) line += (line.empty() ? "" : " ") + word;
    ran.push_back(line);
    inputs.push_back(input);
    if (argv[0] == "/bin/sh" && argv.size() == 3 && argv[2] == "0") {
      // The rollback script run now: it restores when the state says armed.
      auto& state = files[std::filesystem::path(argv[1]).parent_path() / "state"];
      auto at = state.find("status armed");
      if (at != std::string::npos) state.replace(at, 12, "status rolled-back");
    }
    if (argv[0] == "nft" && argv.size() > 1 && argv[1] == "list") {
      return table ? ProcessResult{0, "table inet portmatrix {\n}\n", ""}
                   : ProcessResult{1, "", "Error: No such file or directory"};
    }
    if (argv[0] == "nft" && argv.size() > 2 && argv[1] == "-f" && fail_apply) return {1, "", "Error: syntax"};
    return {0, "", ""};
  }
  std::optional<std::string> read(const std::filesystem::path& path) override
  {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  }
  bool write(const std::filesystem::path& path, const std::string& text, unsigned) override
  {
    files[path] = text;
    written.push_back(path.filename().string());
    return true;
  }
  bool remove(const std::filesystem::path& path) override
  {
    files.erase(path);
    return true;
  }
  bool exists(const std::filesystem::path& path) override { return files.count(path) != 0; }
  bool have_program(const std::string&) override { return true; }
  int spawn_detached(const std::vector<std::string>& argv, const std::filesystem::path&) override
  {
    spawned = argv;
    ran.push_back("spawn " + argv[1] + " " + argv[2]);
    return 4242;
  }
  bool running(int pid, const std::string&) override { return pid == 4242 && !stopped; }
  void stop_group(int) override { stopped = true; }
  bool systemd_here() override { return systemd; }
  bool locked(const std::filesystem::path&, const std::function<void()>& work) override
  {
    work();
    return true;
  }

  std::map<std::filesystem::path, std::string> files;
  std::vector<std::string> ran, inputs, written;
  std::vector<std::string> spawned;
  bool table = true, fail_apply = false, stopped = false, systemd = false;
};

ApplyOptions
options()
{
  ApplyOptions out;
  out.state_dir = "/state";
  out.root = "/root";
  out.confirm_timeout = std::chrono::seconds(45);
  return out;
}

TEST(Apply, SavesArmsThenApplies)
{
  FakeHost host;
  auto backend = make_apply_backend(FirewallFormat::nftables);
  auto done = apply_rules(host, *backend, "master1", "table inet portmatrix {}\n", options());
  ASSERT_TRUE(done) << done.error();
  EXPECT_NE(done->find("detached process (pid 4242"), std::string::npos);
  // The rollback is armed before the rules go in.
  auto spawn = std::find(host.ran.begin(), host.ran.end(), "spawn /state/master1/rollback.sh 45");
  auto apply = std::find(host.ran.begin(), host.ran.end(), "nft -f /state/master1/applied.nft");
  ASSERT_NE(spawn, host.ran.end());
  ASSERT_NE(apply, host.ran.end());
  EXPECT_LT(spawn, apply);
  EXPECT_NE(host.files["/state/master1/saved.nft"].find("delete table inet portmatrix\ntable inet portmatrix {"),
            std::string::npos);
  EXPECT_NE(host.files["/state/master1/state"].find("status armed"), std::string::npos);
  EXPECT_NE(host.files["/state/master1/state"].find("timer detached 4242"), std::string::npos);
}

TEST(Apply, AbsentTableIsSavedAsItsDeletion)
{
  FakeHost host;
  host.table = false;
  auto backend = make_apply_backend(FirewallFormat::nftables);
  ASSERT_TRUE(apply_rules(host, *backend, "m", "x", options()));
  EXPECT_EQ(host.files["/state/m/saved.nft"].find("table inet portmatrix {\n}"), std::string::npos);
  EXPECT_NE(host.files["/state/m/saved.nft"].find("delete table inet portmatrix"), std::string::npos);
}

TEST(Apply, SecondApplyWhileArmedIsRefused)
{
  FakeHost host;
  auto backend = make_apply_backend(FirewallFormat::nftables);
  ASSERT_TRUE(apply_rules(host, *backend, "m", "x", options()));
  auto saved = host.files["/state/m/saved.nft"];
  auto again = apply_rules(host, *backend, "m", "y", options());
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().find("still waits for its confirmation"), std::string::npos);
  EXPECT_EQ(host.files["/state/m/saved.nft"], saved); // the first save is kept
}

TEST(Apply, FailedApplyRestoresAndDisarms)
{
  FakeHost host;
  host.fail_apply = true;
  auto backend = make_apply_backend(FirewallFormat::nftables);
  auto done = apply_rules(host, *backend, "m", "x", options());
  ASSERT_FALSE(done);
  EXPECT_NE(done.error().find("applying failed"), std::string::npos);
  EXPECT_TRUE(host.stopped);
  EXPECT_NE(host.files["/state/m/state"].find("status rolled-back"), std::string::npos);
}

TEST(Apply, ConfirmPersistsAndStopsTheTimer)
{
  FakeHost host;
  host.files["/root/etc/nftables.conf"] = "#!/usr/sbin/nft -f\nflush ruleset\n";
  auto backend = make_apply_backend(FirewallFormat::nftables);
  ASSERT_TRUE(apply_rules(host, *backend, "m", "table inet portmatrix {}\n", options()));
  auto done = confirm_apply(host, "m", options());
  ASSERT_TRUE(done) << done.error();
  EXPECT_TRUE(host.stopped);
  EXPECT_EQ(host.files["/root/etc/portmatrix/portmatrix.nft"], "table inet portmatrix {}\n");
  EXPECT_EQ(host.files["/root/etc/nftables.conf"],
            "#!/usr/sbin/nft -f\nflush ruleset\ninclude \"/etc/portmatrix/portmatrix.nft\"\n");
  EXPECT_NE(host.files["/state/m/state"].find("status confirmed"), std::string::npos);
  // Confirming twice, or rolling back after: nothing waits.
  EXPECT_FALSE(confirm_apply(host, "m", options()));
  auto late = rollback_apply(host, "m", options());
  ASSERT_FALSE(late);
  EXPECT_NE(late.error().find("was confirmed at"), std::string::npos);
}

TEST(Apply, ConfirmAfterTheRollbackSaysSo)
{
  FakeHost host;
  auto backend = make_apply_backend(FirewallFormat::nftables);
  ASSERT_TRUE(apply_rules(host, *backend, "m", "x", options()));
  ASSERT_TRUE(rollback_apply(host, "m", options()));
  auto late = confirm_apply(host, "m", options());
  ASSERT_FALSE(late);
  EXPECT_NE(late.error().find("rolled back"), std::string::npos);
  EXPECT_EQ(host.files.count("/root/etc/portmatrix/portmatrix.nft"), 0u);
}

TEST(Apply, RemoveTakesOnlyOurs)
{
  FakeHost host;
  host.files["/root/etc/nftables.conf"] = "flush ruleset\ninclude \"/etc/portmatrix/portmatrix.nft\"\ntable inet filter {}\n";
  host.files["/root/etc/portmatrix/portmatrix.nft"] = "x";
  auto backend = make_apply_backend(FirewallFormat::nftables);
  ASSERT_TRUE(remove_rules(host, *backend, "m", options()));
  EXPECT_EQ(host.files["/root/etc/nftables.conf"], "flush ruleset\ntable inet filter {}\n");
  EXPECT_EQ(host.files.count("/root/etc/portmatrix/portmatrix.nft"), 0u);
  EXPECT_NE(std::find(host.inputs.begin(), host.inputs.end(), "table inet portmatrix {}\ndelete table inet portmatrix\n"),
            host.inputs.end());
}

TEST(Apply, SystemdTimerWhereSystemdRuns)
{
  FakeHost host;
  host.systemd = true;
  auto backend = make_apply_backend(FirewallFormat::nftables);
  auto done = apply_rules(host, *backend, "master 1", "x", options());
  ASSERT_TRUE(done);
  EXPECT_TRUE(host.spawned.empty());
  EXPECT_NE(std::find(host.ran.begin(), host.ran.end(),
                      "systemd-run --unit=portmatrix-rollback-master_1 --on-active=45s --timer-property=AccuracySec=1s "
                      "--description=portmatrix rollback of master 1 /bin/sh /state/master 1/rollback.sh 0"),
            host.ran.end());
}

TEST(Apply, RollbackScriptDecidesUnderTheLock)
{
  auto backend = make_apply_backend(FirewallFormat::nftables);
  auto script = rollback_script(*backend, "/var/lib/portmatrix/m", "m");
  auto lock = script.find("flock 9");
  auto check = script.find("grep -qx 'status armed'");
  auto restore = script.find("nft -f /var/lib/portmatrix/m/saved.nft");
  ASSERT_NE(lock, std::string::npos);
  EXPECT_LT(lock, check);
  EXPECT_LT(check, restore);
}

TEST(Rollout, CanaryThenRoleGroups)
{
  Inventory inventory;
  auto add = [&](std::string name, Role role) {
    Node node;
    node.name = std::move(name);
    node.roles = {role};
    inventory.nodes.push_back(node);
  };
  add("m1", Role::master);
  add("w1", Role::worker);
  add("m2", Role::master);
  add("w2", Role::worker);
  add("lb", Role::loadbalancer);
  std::vector<const Node*> selected;
  for (const auto& node : inventory.nodes) selected.push_back(&node);
  auto waves = rollout_waves(inventory, selected);
  ASSERT_EQ(waves.size(), 4u);
  EXPECT_EQ(waves[0].name, "canary m1");
  ASSERT_EQ(waves[1].nodes.size(), 1u);
  EXPECT_EQ(waves[1].nodes[0]->name, "m2");
  EXPECT_EQ(waves[2].name, "group worker");
  EXPECT_EQ(waves[2].nodes.size(), 2u);
  EXPECT_EQ(waves[3].nodes[0]->name, "lb");
  // Only the workers: the first is the canary.
  auto workers = rollout_waves(inventory, {&inventory.nodes[3], &inventory.nodes[1]});
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(workers[0].name, "canary w1");
  EXPECT_EQ(workers[1].nodes[0]->name, "w2");
}

} // namespace
} // namespace portmatrix
