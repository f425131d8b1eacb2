#include "bench/proc.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace berth::bench {
namespace {

TEST(ParseProcStat, ReadsUtimeAndStime) {
  // A command name with a space and a ')' inside, as the kernel allows.
  std::string_view stat =
      "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 "
      "100 200000000 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  auto cpu = ParseProcStat(stat, 100);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  EXPECT_DOUBLE_EQ(cpu->user_s, 2.5);
  EXPECT_DOUBLE_EQ(cpu->system_s, 0.75);
}

TEST(ParseProcStat, RejectsTruncatedText) {
  EXPECT_FALSE(ParseProcStat("1234 (x) S 1 2 3", 100).ok());
  EXPECT_FALSE(ParseProcStat("garbage", 100).ok());
}

TEST(ParseProcStatus, ReadsPeakAndCurrentRss) {
  std::string_view status =
      "Name:\tberth\nVmPeak:\t  300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n"
      "Threads:\t4\n";
  auto mem = ParseProcStatus(status);
  ASSERT_TRUE(mem.ok()) << mem.status().ToString();
  EXPECT_EQ(mem->vm_hwm_kib, 51200u);
  EXPECT_EQ(mem->vm_rss_kib, 40960u);
}

TEST(ParseProcStatus, MissingLinesAreAnError) {
  EXPECT_FALSE(ParseProcStatus("Name:\tkthreadd\nThreads:\t1\n").ok());
}

TEST(SampleProcess, ReadsThisProcess) {
  auto s = SampleProcess(static_cast<int>(getpid()));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GT(s->memory.vm_hwm_kib, 0u);
  EXPECT_GE(s->memory.vm_hwm_kib, s->memory.vm_rss_kib);
  EXPECT_GT(CurrentRssKib(static_cast<int>(getpid())), 0u);
}

TEST(SampleProcess, GoneProcessIsNotFound) {
  auto s = SampleProcess(0x3fffffff);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().Is(Code::kNotFound)) << s.status().ToString();
}

}  // namespace
}  // namespace berth::bench
