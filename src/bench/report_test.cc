#include "bench/report.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace berth::bench {
namespace {

TEST(ParseSize, Suffixes) {
  EXPECT_EQ(*ParseSize("512"), 512u);
  EXPECT_EQ(*ParseSize("4K"), 4096u);
  EXPECT_EQ(*ParseSize("1M"), 1048576u);
  EXPECT_EQ(*ParseSize("64M"), 64u << 20);
  EXPECT_EQ(*ParseSize("1G"), 1u << 30);
  EXPECT_EQ(*ParseSize("1g"), 1u << 30);
  EXPECT_EQ(*ParseSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*ParseSize("1.5K"), 1536u);
  EXPECT_EQ(*ParseSize("0"), 0u);
}

TEST(ParseSize, Rejects) {
  for (const char* s : {"", "M", "1X", "-1", "1.3", "1MM", "abc"}) {
    EXPECT_FALSE(ParseSize(s).ok()) << s;
  }
}

TEST(FormatSize, RoundTrips) {
  EXPECT_EQ(FormatSize(100), "100");
  EXPECT_EQ(FormatSize(1 << 20), "1M");
  EXPECT_EQ(FormatSize(64u << 20), "64M");
  EXPECT_EQ(FormatSize(1536), "1.5K");
  EXPECT_EQ(*ParseSize(FormatSize(1u << 30)), 1u << 30);
}

WorkloadResult Sample() {
  WorkloadResult r;
  r.workload = "blob-pull";
  r.size = 1 << 20;
  r.concurrency = 4;
  r.ops = 100;
  r.bytes = 100u << 20;
  r.seconds = 2;
  r.ops_per_s = 50;
  r.mb_per_s = 52.4;
  r.latency.p50_ms = 10;
  r.latency.p99_ms = 20;
  r.latency.max_ms = 30;
  ServerUsage s;
  s.cpu_s = 0.5;
  s.cpu_s_per_gib = 5.12;
  s.cpu_ms_per_op = 5;
  s.vm_hwm_kib = 20480;
  s.vm_rss_kib = 10240;
  r.server = s;
  return r;
}

TEST(FormatJson, HasTheFieldsScriptsRead) {
  auto doc = boost::json::parse(FormatJson("http://x", {Sample()}));
  const auto& r = doc.at("results").at(0);
  EXPECT_EQ(r.at("workload").as_string(), "blob-pull");
  EXPECT_EQ(r.at("ops").to_number<uint64_t>(), 100u);
  EXPECT_DOUBLE_EQ(r.at("ops_per_s").to_number<double>(), 50);
  EXPECT_DOUBLE_EQ(r.at("latency_ms").at("p99").to_number<double>(), 20);
  EXPECT_DOUBLE_EQ(r.at("server").at("cpu_s_per_gib").to_number<double>(), 5.12);
  EXPECT_EQ(r.at("server").at("vm_hwm_kib").to_number<uint64_t>(), 20480u);
  EXPECT_EQ(doc.at("target").as_string(), "http://x");
}

TEST(FormatTable, OneLinePerWorkloadAndAHeader) {
  WorkloadResult plain = Sample();
  plain.workload = "ping";
  plain.server.reset();
  plain.bytes = 0;
  std::string t = FormatTable({Sample(), plain});
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 3);
  EXPECT_NE(t.find("blob-pull"), std::string::npos);
  EXPECT_NE(t.find("cpu s/GiB"), std::string::npos);
  EXPECT_NE(t.find("5.12"), std::string::npos);
}

}  // namespace
}  // namespace berth::bench
