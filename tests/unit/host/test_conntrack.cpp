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
