// The conntrack table's fill, read from a /proc tree: this machine's own, and
// fixture trees written by the test (a count, a garbled count, no table).
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "host/conntrack.hpp"
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

TEST(ConntrackGauge, BelowTheCeilingTheKernelsCountIsEnough)
{
  ProcTree proc;
  proc.write("nf_conntrack_count", "700\n");
  proc.write("nf_conntrack_max", "1000\n");
  proc.write_entries(3);
  ConntrackGauge gauge(0.75, proc.root());
  auto table = gauge.read();
  ASSERT_TRUE(table);
  EXPECT_EQ(table->count, 700u);
  EXPECT_EQ(table->max, 1000u);
  EXPECT_EQ(gauge.walks(), 0u);
}

TEST(ConntrackGauge, AtTheCeilingItCountsTheLiveEntriesAtMostOnceAnInterval)
{
  ProcTree proc;
  proc.write("nf_conntrack_count", "800\n"); // expired entries the collector has not reached
  proc.write("nf_conntrack_max", "1000\n");
  proc.write_entries(3);
  ConntrackGauge gauge(0.75, proc.root());
  auto table = gauge.read();
  ASSERT_TRUE(table);
  EXPECT_EQ(table->count, 3u) << "the live entries, not the kernel's count";
  EXPECT_EQ(gauge.walks(), 1u);
  proc.write_entries(10);
  table = gauge.read();
  ASSERT_TRUE(table);
  EXPECT_EQ(table->count, 800u) << "no second walk within the interval: the kernel's count";
  EXPECT_EQ(gauge.walks(), 1u);
}

TEST(ConntrackGauge, WithoutTheEntriesFileTheKernelsCountStands)
{
  ProcTree proc;
  proc.write("nf_conntrack_count", "900\n");
  proc.write("nf_conntrack_max", "1000\n");
  ConntrackGauge gauge(0.75, proc.root());
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

} // namespace
} // namespace portmatrix
