#include <gtest/gtest.h>

#include <algorithm>

#include "remote/ssh_command.hpp"
#include "util/process.hpp"

namespace portmatrix {
namespace {

Inventory
two_nodes()
{
  auto inventory = parse_inventory(R"(ssh:
  user: admin
  port: 2200
  identity_file: /keys/id
  proxy_jump: admin@bastion
  sudo: true
  options: [ConnectTimeout=5]
nodes:
  - name: m1
    address: 10.0.0.11
    roles: [master]
    ssh: {host: m1.example, user: root, options: ["StrictHostKeyChecking=accept-new"]}
  - {name: w1, address: "fd00::21", roles: [worker], ssh: {sudo: false}}
)",
                                   "inv.yaml");
  EXPECT_TRUE(inventory.has_value());
  return inventory ? std::move(*inventory) : Inventory{};
}

std::size_t
position_of(const std::vector<std::string>& argv, std::string_view word)
{
  return std::size_t(std::find(argv.begin(), argv.end(), word) - argv.begin());
}

} // namespace

TEST(SshCommand, ShellQuotingReadsBackAsTheSameWords)
{
  std::vector<std::string> words{"plain", "two words", "it's", "$HOME", "`id`", "a;b|c&d", "\"q\"", "", "-n",
                                 "new\nline", "back\\slash", "*", "~"};
  auto shell = run_process({"sh", "-c", "printf '%s|' " + shell_join(words)});
  ASSERT_EQ(shell.status, 0) << shell.output;
  std::string expected;
  for (const auto& w : words) expected += w + "|";
  EXPECT_EQ(shell.output, expected);
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("/tmp/a-b_c.d"), "/tmp/a-b_c.d");
  EXPECT_EQ(shell_quote(""), "''");
}

TEST(SshCommand, ANodesKeysReplaceTheTopLevelsAndItsOptionsFollowThem)
{
  auto inventory = two_nodes();
  auto m1 = ssh_target(inventory, inventory.nodes[0]);
  EXPECT_EQ(m1.host, "m1.example");
  EXPECT_EQ(m1.user, "root");
  EXPECT_EQ(m1.port, 2200);
  EXPECT_EQ(m1.identity_file, "/keys/id");
  EXPECT_EQ(m1.proxy_jump, "admin@bastion");
  EXPECT_TRUE(m1.sudo);
  EXPECT_EQ(m1.options, (std::vector<std::string>{"ConnectTimeout=5", "StrictHostKeyChecking=accept-new"}));
  auto w1 = ssh_target(inventory, inventory.nodes[1]);
  EXPECT_EQ(w1.host, "fd00::21"); // the address when no host
  EXPECT_EQ(w1.user, "admin");
  EXPECT_FALSE(w1.sudo);
}

TEST(SshCommand, TheInventorysOptionsComeFirstAndStrictHostKeysIsTheDefault)
{
  auto inventory = two_nodes();
  SshCommands w1(ssh_target(inventory, inventory.nodes[1]), "/tmp/ctl/1");
  auto argv = w1.run({"echo", "a b"});
  ASSERT_GE(argv.size(), 3u);
  EXPECT_EQ(argv[0], "ssh");
  // ssh takes the first value it gets for a keyword: the user's options lead.
  EXPECT_LT(position_of(argv, "ConnectTimeout=5"), position_of(argv, "StrictHostKeyChecking=yes"));
  EXPECT_LT(position_of(argv, "StrictHostKeyChecking=yes"), argv.size());
  EXPECT_LT(position_of(argv, "ControlPath=/tmp/ctl/1"), argv.size());
  EXPECT_LT(position_of(argv, "BatchMode=yes"), argv.size());
  EXPECT_EQ(argv[position_of(argv, "-p") + 1], "2200");
  // One bastion: a ProxyCommand carrying the same options (ssh -J would pass none of them).
  EXPECT_EQ(position_of(argv, "-J"), argv.size());
  auto proxy = std::find_if(argv.begin(), argv.end(), [](const std::string& w) { return w.starts_with("ProxyCommand="); });
  ASSERT_NE(proxy, argv.end());
  EXPECT_EQ(*proxy, "ProxyCommand=ssh -o ConnectTimeout=5 -o StrictHostKeyChecking=yes -o BatchMode=yes -o User=admin "
                    "-i /keys/id -W '[%h]:%p' -- bastion");
  EXPECT_EQ(argv[position_of(argv, "-i") + 1], "/keys/id");
  // The host after "--" (never read as an option), then the one quoted command.
  EXPECT_EQ(argv[argv.size() - 3], "--");
  EXPECT_EQ(argv[argv.size() - 2], "fd00::21");
  EXPECT_EQ(argv.back(), "echo 'a b'");

  SshCommands m1(ssh_target(inventory, inventory.nodes[0]), "/tmp/ctl/0");
  auto strict = m1.run({"true"});
  EXPECT_EQ(position_of(strict, "StrictHostKeyChecking=yes"), strict.size()); // the node set it
  EXPECT_EQ(m1.run_privileged({"rm", "-rf", "--", "/tmp/x y"}).back(), "sudo -n -- rm -rf -- '/tmp/x y'");
  EXPECT_EQ(w1.run_privileged({"true"}).back(), "true"); // w1: sudo false
}

TEST(SshCommand, ABastionsProxyCommandQuotesItsWordsAndKeepsSeveralHopsAsJ)
{
  SshTarget target;
  target.node = "n";
  target.host = "10.0.0.5";
  target.options = {"UserKnownHostsFile=/my dir/known 100%"};
  target.proxy_jump = "ops@[fd00::1]:2222";
  SshCommands one(target, "/tmp/ctl/0");
  auto argv = one.run({"true"});
  auto proxy = std::find_if(argv.begin(), argv.end(), [](const std::string& w) { return w.starts_with("ProxyCommand="); });
  ASSERT_NE(proxy, argv.end());
  EXPECT_EQ(*proxy, "ProxyCommand=ssh -o 'UserKnownHostsFile=/my dir/known 100%%' -o StrictHostKeyChecking=yes -o "
                    "BatchMode=yes -o User=ops -p 2222 -W '[%h]:%p' -- fd00::1");
  target.proxy_jump = "a@bastion1,b@bastion2";
  SshCommands hops(target, "/tmp/ctl/0");
  auto chained = hops.run({"true"});
  EXPECT_EQ(chained[position_of(chained, "-J") + 1], "a@bastion1,b@bastion2");
}

TEST(SshCommand, TheMasterPersistsAndIsClosedWithExit)
{
  auto inventory = two_nodes();
  SshCommands w1(ssh_target(inventory, inventory.nodes[1]), "/tmp/ctl/1");
  auto master = w1.open_master(std::chrono::seconds(90));
  EXPECT_LT(position_of(master, "ControlMaster=yes"), master.size());
  EXPECT_LT(position_of(master, "ControlPersist=90"), master.size());
  EXPECT_LT(position_of(master, "-f"), master.size());
  EXPECT_EQ(master.back(), "fd00::21");
  auto close = w1.close_master();
  EXPECT_EQ(close[position_of(close, "-O") + 1], "exit");
  EXPECT_EQ(close.back(), "fd00::21");
}

TEST(SshCommand, FailuresAreClassifiedFromSshsOwnWords)
{
  EXPECT_EQ(classify_failure("ssh: connect to host 10.0.0.1 port 22: Connection refused\r\n"), "unreachable");
  EXPECT_EQ(classify_failure("ssh: connect to host 10.9.9.9 port 22: No route to host"), "unreachable");
  EXPECT_EQ(classify_failure("root@10.0.0.1: Permission denied (publickey)."), "auth");
  EXPECT_EQ(classify_failure("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed."),
            "host key");
  EXPECT_EQ(classify_failure("No ED25519 host key is known for 10.0.0.1 and you have requested strict checking.\n"
                             "Host key verification failed."),
            "host key");
  EXPECT_EQ(classify_failure("sudo: a password is required"), "sudo password");
  EXPECT_EQ(classify_failure("cat: write error: No space left on device"), "disk full");
  EXPECT_EQ(classify_failure("sh: 1: /tmp/p/portmatrix-1: Exec format error"), "binary will not run");
  EXPECT_EQ(classify_failure("/tmp/p/portmatrix-1: /lib64/libc.so.6: version `GLIBC_2.34' not found"),
            "binary will not run");
  EXPECT_EQ(classify_failure("something else"), "failed");
  auto reason = failure_reason("connect",
                               "Warning: Permanently added '10.0.0.1' (ED25519) to the list of known hosts.\r\n"
                               "root@10.0.0.1: Permission denied (publickey).\r\n",
                               255);
  EXPECT_EQ(reason, "connect: auth: root@10.0.0.1: Permission denied (publickey).");
  EXPECT_EQ(failure_reason("agent", "", 255), "agent: failed: exit status 255");
  // ssh's banner is left out, and of long output the end is kept: its conclusion.
  auto changed = failure_reason("connect",
                                "@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n" +
                                  std::string(400, 'x') + "\nHost key verification failed.\n",
                                255);
  EXPECT_TRUE(changed.starts_with("connect: host key: ...x")) << changed;
  EXPECT_TRUE(changed.ends_with("; Host key verification failed.")) << changed;
}

} // namespace portmatrix
