#include <gtest/gtest.h>

#include <functional>
#include <mutex>

#include "remote/fleet.hpp"
#include "remote/node_session.hpp"

namespace portmatrix {
namespace {

// Records every command; answers with what `reply` says (by default: success).
class FakeRunner : public Runner
{
public:
  struct Call
  {
    std::vector<std::string> argv;
    std::string input;
  };
  std::function<ProcessResult(const std::vector<std::string>&)> reply = [](const std::vector<std::string>& argv) {
    return ProcessResult{0, argv.back().find("printf") != std::string::npos ? "/home/admin\nabsent\n" : "", {}};
  };
  std::string agent_output = "portmatrix agent m1: ready\n";
  std::vector<Call> calls;
  std::mutex mutex;

  ProcessResult run(const std::vector<std::string>& argv, const std::string& input, Streams) override
  {
    std::lock_guard lock(mutex);
    calls.push_back({argv, input});
    return reply(argv);
  }
  std::unique_ptr<Background> start(const std::vector<std::string>& argv, const std::string& input) override
  {
    std::lock_guard lock(mutex);
    calls.push_back({argv, input});
    struct Fixed : Background
    {
      std::string text;
      bool wait_for(std::string_view wanted, std::chrono::milliseconds) override
      {
        return text.find(wanted) != std::string::npos;
      }
      int finish(std::chrono::milliseconds) override { return 0; }
      std::string output() override { return text; }
    };
    auto background = std::make_unique<Fixed>();
    background->text = agent_output;
    return background;
  }
};

SshTarget
target(bool sudo)
{
  SshTarget t;
  t.node = "m1";
  t.host = "10.0.0.11";
  t.user = "admin";
  t.sudo = sudo;
  return t;
}

RemoteRun
run_settings()
{
  RemoteRun run;
  run.id = "0a1b2c3d";
  run.binary = "/build/portmatrix";
  run.binary_content = "\x7f" "ELF...";
  run.binary_sha256 = std::string(64, 'f');
  run.inventory = "/work/inv.yaml";
  run.inventory_text = "nodes: []\n";
  return run;
}

// What each call did, in a word: master, prepare, upload, agent, teardown, exit.
std::vector<std::string>
steps(const FakeRunner& runner)
{
  std::vector<std::string> out;
  for (const auto& call : runner.calls) {
    const auto& argv = call.argv;
    const auto& last = argv.back();
    if (last.find("cat > ") != std::string::npos && last.find("mv -f") != std::string::npos) out.push_back("upload");
    else if (std::find(argv.begin(), argv.end(), "ControlMaster=yes") != argv.end()) out.push_back("master");
    else if (std::find(argv.begin(), argv.end(), "-O") != argv.end()) out.push_back("exit");
    else if (last.find("mkdir -m 700") != std::string::npos) out.push_back("prepare");
    else if (last.find(" agent ") != std::string::npos) out.push_back("agent");
    else if (last.find("kill -TERM") != std::string::npos && last.find("rm -rf") != std::string::npos) {
      out.push_back("teardown");
    }
    else out.push_back("other: " + last);
  }
  return out;
}

} // namespace

TEST(NodeSession, SetsUpStartsTheAgentAndCleansUpInOrder)
{
  FakeRunner runner;
  auto run = run_settings();
  {
    NodeSession session(runner, SshCommands(target(true), "/tmp/ctl/0"), run);
    ASSERT_TRUE(session.connect());
    ASSERT_TRUE(session.install());
    ASSERT_TRUE(session.start_agent({"--node", "m1", "--token-file", "-"}, "s3cret-token-0123456789",
                                    std::chrono::seconds(1)));
    EXPECT_EQ(session.run_directory(), "/tmp/portmatrix-0a1b2c3d-m1");
  } // the destructor tears down
  EXPECT_EQ(steps(runner),
            (std::vector<std::string>{"master", "prepare", "upload", "agent", "teardown", "exit"}));
  // The inventory goes with the run directory's creation, on standard input.
  EXPECT_EQ(runner.calls[1].input, "nodes: []\n");
  EXPECT_NE(runner.calls[1].argv.back().find("cat > /tmp/portmatrix-0a1b2c3d-m1/inventory.yaml"), std::string::npos);
  // The binary goes up on standard input under a temporary name, and is
  // renamed to its hash's name only when its size is right.
  const auto& upload = runner.calls[2];
  EXPECT_EQ(upload.input, "\x7f" "ELF...");
  EXPECT_NE(upload.argv.back().find(" /tmp/portmatrix-0a1b2c3d-m1/portmatrix-ffffffffffffffff.part-0a1b2c3d-m1 "
                                    "/tmp/portmatrix-0a1b2c3d-m1/portmatrix-ffffffffffffffff 7"),
            std::string::npos)
    << upload.argv.back();
  EXPECT_NE(upload.argv.back().find("-eq"), std::string::npos);
  // The token: on the agent's standard input, in no command line.
  EXPECT_EQ(runner.calls[3].input, "s3cret-token-0123456789\n");
  for (const auto& call : runner.calls) {
    for (const auto& word : call.argv) EXPECT_EQ(word.find("s3cret"), std::string::npos) << word;
  }
  // The agent runs through sudo -n; its pid is kept for the stop.
  EXPECT_NE(runner.calls[3].argv.back().find("sudo -n -- sh -c"), std::string::npos);
  EXPECT_NE(runner.calls[4].argv.back().find("sudo -n --"), std::string::npos);
  EXPECT_NE(runner.calls[4].argv.back().find(" /tmp/portmatrix-0a1b2c3d-m1"), std::string::npos);
}

TEST(NodeSession, ACachedBinaryIsNotUploadedAgain)
{
  FakeRunner runner;
  runner.reply = [](const std::vector<std::string>& argv) {
    return ProcessResult{0, argv.back().find("printf") != std::string::npos ? "/home/admin\ncached\n" : "", {}};
  };
  auto run = run_settings();
  NodeSession session(runner, SshCommands(target(false), "/tmp/ctl/0"), run);
  ASSERT_TRUE(session.connect() && session.install());
  std::string output;
  int status = 0;
  ASSERT_TRUE(session.run_portmatrix({"preflight", "--format", "json"}, output, status));
  session.teardown();
  EXPECT_EQ(steps(runner), (std::vector<std::string>{"master", "prepare",
                                                     "other: /home/admin/.cache/portmatrix/portmatrix-ffffffffffffffff "
                                                     "preflight --format json",
                                                     "teardown", "exit"}));
  session.teardown(); // a second teardown runs nothing
  EXPECT_EQ(runner.calls.size(), 5u);
}

TEST(NodeSession, AFailedStepIsTheNodesResultInSshsWordsAndNothingElseRuns)
{
  FakeRunner runner;
  runner.reply = [](const std::vector<std::string>&) {
    return ProcessResult{255, "admin@10.0.0.11: Permission denied (publickey).\r\n", {}};
  };
  auto run = run_settings();
  NodeSession session(runner, SshCommands(target(true), "/tmp/ctl/0"), run);
  EXPECT_FALSE(session.connect());
  EXPECT_FALSE(session.install());
  EXPECT_FALSE(session.start_agent({}, "token-token-token-token", std::chrono::seconds(1)));
  session.teardown();
  EXPECT_EQ(session.failure(), "connect: auth: admin@10.0.0.11: Permission denied (publickey).");
  EXPECT_EQ(steps(runner), std::vector<std::string>{"master"}); // not connected: nothing to close
}

TEST(NodeSession, AnAgentThatDoesNotStartFailsWithWhatItSaid)
{
  FakeRunner runner;
  runner.agent_output = "sudo: a password is required\n";
  auto base = runner.reply;
  runner.reply = [base](const std::vector<std::string>& argv) {
    if (argv.back().starts_with("sudo -n")) return ProcessResult{1, "sudo: a password is required\n", {}};
    return base(argv);
  };
  auto run = run_settings();
  NodeSession session(runner, SshCommands(target(true), "/tmp/ctl/0"), run);
  ASSERT_TRUE(session.connect() && session.install());
  EXPECT_FALSE(session.start_agent({}, "token-token-token-token", std::chrono::milliseconds(10)));
  EXPECT_EQ(session.failure(), "agent: sudo password: sudo: a password is required");
  session.teardown();
  auto done = steps(runner);
  // The stop is tried through sudo; sudo refuses again, so the ssh user's
  // own files are removed without it.
  ASSERT_GE(runner.calls.size(), 3u);
  EXPECT_EQ(std::vector<std::string>(done.end() - 3, done.end()),
            (std::vector<std::string>{"teardown", "teardown", "exit"}));
  EXPECT_TRUE(runner.calls[runner.calls.size() - 3].argv.back().starts_with("sudo -n -- sh -c"));
  EXPECT_TRUE(runner.calls[runner.calls.size() - 2].argv.back().starts_with("sh -c"));
}

TEST(Fleet, WorksOnAtMostParallelNodesAtOnce)
{
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  for_each_bounded(40, 3, [&](std::size_t) {
    int now = ++running;
    int seen = most;
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    --running;
  });
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 1);
}

} // namespace portmatrix
