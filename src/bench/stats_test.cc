#include "bench/stats.h"

#include <gtest/gtest.h>

#include <random>

namespace berth::bench {
namespace {

TEST(LatencyHistogram, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  LatencySummary s = Summarize(h);
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p99_ms, 0.0);
}

TEST(LatencyHistogram, SingleValueIsExact) {
  LatencyHistogram h;
  h.Record(123456789);
  EXPECT_EQ(h.Percentile(0.0), 123456789u);
  EXPECT_EQ(h.Percentile(0.5), 123456789u);
  EXPECT_EQ(h.Percentile(1.0), 123456789u);
  EXPECT_EQ(h.min(), 123456789u);
  EXPECT_EQ(h.max(), 123456789u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(0.5), 50u);
  EXPECT_EQ(h.Percentile(0.9), 90u);
  EXPECT_EQ(h.Percentile(0.99), 99u);
  EXPECT_EQ(h.Percentile(1.0), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LatencyHistogram, BucketsCoverEveryValueWithBoundedError) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = rng() >> (rng() % 64);
    size_t b = LatencyHistogram::BucketOf(v);
    ASSERT_LT(b, LatencyHistogram::kBuckets);
    ASSERT_LE(LatencyHistogram::BucketLow(b), v);
    ASSERT_GE(LatencyHistogram::BucketHigh(b), v);
    double width =
        static_cast<double>(LatencyHistogram::BucketHigh(b) - LatencyHistogram::BucketLow(b));
    ASSERT_LE(width, static_cast<double>(v) / 128.0 + 1.0);
  }
  EXPECT_EQ(LatencyHistogram::BucketOf(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, UniformPercentilesWithinOnePercent) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 1000000; ++v) h.Record(v * 1000);  // 1 µs .. 1 s
  auto near = [](uint64_t got, double want) {
    return std::abs(static_cast<double>(got) - want) <= want * 0.01;
  };
  EXPECT_TRUE(near(h.Percentile(0.50), 500000000.0)) << h.Percentile(0.50);
  EXPECT_TRUE(near(h.Percentile(0.90), 900000000.0)) << h.Percentile(0.90);
  EXPECT_TRUE(near(h.Percentile(0.99), 990000000.0)) << h.Percentile(0.99);
  EXPECT_EQ(h.Percentile(1.0), 1000000000u);
  LatencySummary s = Summarize(h);
  EXPECT_NEAR(s.p50_ms, 500.0, 5.0);
  EXPECT_NEAR(s.max_ms, 1000.0, 1e-9);
  EXPECT_NEAR(s.min_ms, 0.001, 1e-12);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  std::mt19937_64 rng(42);
  for (int i = 0; i < 50000; ++i) {
    uint64_t v = 1000 + rng() % 10000000;
    (i % 2 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.Percentile(q), all.Percentile(q));
}

TEST(LatencyHistogram, MergingAnEmptyHistogramChangesNothing) {
  LatencyHistogram a, empty;
  a.Record(5000);
  a.Merge(empty);
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(a.min(), 5000u);
  EXPECT_EQ(a.max(), 5000u);
}

TEST(LatencyHistogram, TailIsNotHiddenByTheBulk) {
  LatencyHistogram h;
  for (int i = 0; i < 989; ++i) h.Record(1000000);   // 1 ms
  for (int i = 0; i < 11; ++i) h.Record(500000000);  // 500 ms
  EXPECT_NEAR(static_cast<double>(h.Percentile(0.50)), 1e6, 1e4);
  EXPECT_NEAR(static_cast<double>(h.Percentile(0.99)), 5e8, 5e6);
}

}  // namespace
}  // namespace berth::bench
