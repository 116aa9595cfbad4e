// The conntrack table's fill, read from a /proc tree: this machine's own, and
// fixture trees written by the test (a count, a garbled count, no table);
// and ctnetlink's reaping of expired entries, in a network namespace of the
// test's own with real entries.
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "host/conntrack.hpp"
#include "net/address.hpp"
#include "net/fd.hpp"
#include "../private_network.hpp"
#include "../skip.hpp"

namespace portmatrix {
namespace {

class ProcTree
{
public:
  ProcTree() : m_root(std::filesystem::temp_directory_path() / ("pm-conntrack-" + std::to_string(::getpid())))
  {
    std::filesystem::create_directories(m_root / "sys/net/netfilter");
  }
  ~ProcTree() { std::filesystem::remove_all(m_root); }
  void write(const char* name, const char* text) { std::ofstream(m_root / "sys/net/netfilter" / name) << text; }
  // net/nf_conntrack with `entries` lines, as the kernel prints them.
  void write_entries(int entries)
  {
    std::filesystem::create_directories(m_root / "net");
    std::ofstream file(m_root / "net/nf_conntrack");
    for (int i = 0; i < entries; ++i) {
      file << "ipv4     2 tcp      6 9 CLOSE src=10.0.0.1 dst=10.0.0.2 sport=" << 40000 + i
           << " dport=30000 src=10.0.0.2 dst=10.0.0.1 sport=30000 dport=" << 40000 + i
           << " [ASSURED] mark=0 zone=0 use=2\n";
    }
  }
  const std::filesystem::path& root() const { return m_root; }

private:
  std::filesystem::path m_root;
};

TEST(ConntrackTable, ReadsTheCountAndTheMaximum)
{
  ProcTree proc;
  proc.write("nf_conntrack_count", "98304\n");
  proc.write("nf_conntrack_max", "131072\n");
  auto table = read_conntrack_table(proc.root());
  ASSERT_TRUE(table);
  EXPECT_EQ(table->count, 98304u);
  EXPECT_EQ(table->max, 131072u);
}

TEST(ConntrackTable, NoTableOrAGarbledOneIsNone)
{
  ProcTree proc;
  EXPECT_FALSE(read_conntrack_table(proc.root())) << "no conntrack module: no files";
  proc.write("nf_conntrack_count", "12\n");
  EXPECT_FALSE(read_conntrack_table(proc.root())) << "no maximum";
  proc.write("nf_conntrack_max", "lots\n");
  EXPECT_FALSE(read_conntrack_table(proc.root()));
  proc.write("nf_conntrack_max", "-5\n");
  EXPECT_FALSE(read_conntrack_table(proc.root()));
  proc.write("nf_conntrack_max", "\n");
  EXPECT_FALSE(read_conntrack_table(proc.root()));
}

TEST(ConntrackTable, LiveEntriesAreTheLinesOfTheNamespacesTable)
{
  ProcTree proc;
  EXPECT_FALSE(count_live_conntrack_entries(proc.root())) << "no net/nf_conntrack";
  proc.write_entries(0);
  EXPECT_EQ(count_live_conntrack_entries(proc.root()), 0u);
  proc.write_entries(5000); // past one read's buffer
  EXPECT_EQ(count_live_conntrack_entries(proc.root()), 5000u);
}

// A reaper that cannot reach ctnetlink, counting how often it was asked.
ConntrackGauge::Reaper
refused(int& asked)
{
  return [&asked] {
    ++asked;
    return false;
  };
}

TEST(ConntrackGauge, BelowTheCeilingTheKernelsCountIsEnough)
{
  ProcTree proc;
  proc.write("nf_conntrack_count", "700\n");
  proc.write("nf_conntrack_max", "1000\n");
  proc.write_entries(3);
  int asked = 0;
  ConntrackGauge gauge(0.75, proc.root(), refused(asked));
  auto table = gauge.read();
  ASSERT_TRUE(table);
  EXPECT_EQ(table->count, 700u);
  EXPECT_EQ(table->max, 1000u);
  EXPECT_EQ(gauge.walks(), 0u);
  EXPECT_EQ(asked, 0) << "nothing reaped below the ceiling";
}

TEST(ConntrackGauge, AtTheCeilingTheExpiredEntriesAreReapedAndTheCountReadAgain)
{
  ProcTree proc;
  proc.write("nf_conntrack_count", "800\n"); // expired entries the collector has not reached
  proc.write("nf_conntrack_max", "1000\n");
  proc.write_entries(3); // not read: the reaper answered
  int asked = 0;
  ConntrackGauge gauge(0.75, proc.root(), [&] {
    ++asked;
    proc.write("nf_conntrack_count", "120\n"); // what the kernel's count is once they are gone
    return true;
  });
  auto table = gauge.read();
  ASSERT_TRUE(table);
  EXPECT_EQ(table->count, 120u) << "the count after the reaping";
  EXPECT_EQ(table->max, 1000u);
  EXPECT_EQ(gauge.walks(), 1u);
  EXPECT_EQ(asked, 1);
}

TEST(ConntrackGauge, WhereNothingCanBeReapedItCountsTheLiveEntriesAtMostOnceAnInterval)
{
  ProcTree proc;
  proc.write("nf_conntrack_count", "800\n"); // expired entries the collector has not reached
  proc.write("nf_conntrack_max", "1000\n");
  proc.write_entries(3);
  int asked = 0;
  ConntrackGauge gauge(0.75, proc.root(), refused(asked));
  auto table = gauge.read();
  ASSERT_TRUE(table);
  EXPECT_EQ(table->count, 3u) << "the live entries, not the kernel's count";
  EXPECT_EQ(gauge.walks(), 1u);
  EXPECT_EQ(asked, 1);
  proc.write_entries(10);
  table = gauge.read();
  ASSERT_TRUE(table);
  EXPECT_EQ(table->count, 800u) << "no second walk within the interval: the kernel's count";
  EXPECT_EQ(gauge.walks(), 1u);
  EXPECT_EQ(asked, 1);
}

TEST(ConntrackGauge, WithoutTheEntriesFileTheKernelsCountStands)
{
  ProcTree proc;
  proc.write("nf_conntrack_count", "900\n");
  proc.write("nf_conntrack_max", "1000\n");
  int asked = 0;
  ConntrackGauge gauge(0.75, proc.root(), refused(asked));
  auto table = gauge.read();
  ASSERT_TRUE(table);
  EXPECT_EQ(table->count, 900u);
  EXPECT_EQ(gauge.walks(), 0u);
}

TEST(ConntrackTable, ThisHostsTableWhenItHasOne)
{
  if (!std::filesystem::exists("/proc/sys/net/netfilter/nf_conntrack_max")) {
    PORTMATRIX_SKIP() << "no conntrack table on this host (nf_conntrack not loaded)";
  }
  auto table = read_conntrack_table();
  ASSERT_TRUE(table);
  EXPECT_GT(table->max, 0u);
  EXPECT_LE(table->count, table->max);
}

// --- ctnetlink, in a network namespace of the test's own (root) ---------------

std::uint64_t
entries_now()
{
  auto table = read_conntrack_table();
  return table ? table->count : 0;
}

void
set_udp_timeout(int seconds)
{
  std::ofstream("/proc/sys/net/netfilter/nf_conntrack_udp_timeout") << seconds << "\n";
}

// One datagram from one socket to each of `count` ports of 127.0.0.1 from
// `first`: an unreplied UDP entry each, living the UDP timeout of the moment.
void
make_entries(std::uint16_t first, int count)
{
  Fd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  for (int i = 0; i < count; ++i) {
    auto peer = *SocketAddress::parse("127.0.0.1", std::uint16_t(first + i));
    ::sendto(socket.get(), "x", 1, 0, peer.get(), peer.length());
  }
}

// 50 entries that live 30 s, then 200 that live 1 s. Once those have
// expired (and before the kernel's collector, which scans every 1-60 s, has
// reached them: the count still says 250), the reaping leaves the 50. The
// look comes 0.1 s after they expired, so the collector seldom comes first;
// when it does it leaves nothing to show, and the test tries again on other
// ports.
TEST(ConntrackReap, TakesTheExpiredEntriesOutOfTheCountAndLeavesTheLiveOnes)
{
  if (::geteuid() != 0) PORTMATRIX_SKIP() << "needs root (a network namespace, CAP_NET_ADMIN)";
  if (std::system("nft --version >/dev/null 2>&1") != 0) PORTMATRIX_SKIP() << "nft is not installed";
  bool reaped_before_the_collector = false;
  bool isolated = test::run_in_private_network([&] {
    // The kernel tracks a namespace's connections once a rule asks for it.
    ASSERT_EQ(std::system("nft 'add table inet pm_reap; add chain inet pm_reap out "
                          "{ type filter hook output priority 0; ct state new accept; }'"),
              0);
    ASSERT_TRUE(read_conntrack_table()) << "no conntrack table in the namespace";
    for (int attempt = 0; attempt < 5 && !reaped_before_the_collector; ++attempt) {
      auto first = std::uint16_t(20000 + attempt * 1000);
      auto before = entries_now();
      set_udp_timeout(30);
      make_entries(first, 50);
      set_udp_timeout(1);
      make_entries(std::uint16_t(first + 100), 200);
      ASSERT_EQ(entries_now(), before + 250);
      std::this_thread::sleep_for(std::chrono::milliseconds(1100));
      if (entries_now() != before + 250) continue; // the collector came first
      ASSERT_TRUE(reap_expired_conntrack_entries());
      EXPECT_EQ(entries_now(), before + 50) << "the 200 expired entries reaped, the 50 live ones kept";
      reaped_before_the_collector = true;
    }
  });
  if (!isolated) PORTMATRIX_SKIP() << "no network namespace could be made";
  EXPECT_TRUE(reaped_before_the_collector) << "the kernel's collector reached the expired entries first, five times";
}

TEST(ConntrackReap, WithoutCapNetAdminItSaysSo)
{
  // As root, a thread that became nobody (the raw system call changes that
  // thread's credentials only, and with them its capabilities) cannot ask.
  bool reaped = true;
  std::thread thread([&] {
    if (::geteuid() == 0 && ::syscall(SYS_setresuid, 65534, 65534, 65534) != 0) return;
    reaped = reap_expired_conntrack_entries();
  });
  thread.join();
  EXPECT_FALSE(reaped) << "reaped without CAP_NET_ADMIN";
}

} // namespace
} // namespace portmatrix
