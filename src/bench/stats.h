// Latency statistics for `berth bench`: a log-linear histogram (HDR style) that
// records nanosecond durations in constant memory with < 0.8 % relative error, and
// the percentile summary the reports print.
//
// A LatencyHistogram is not thread-safe: keep one per thread and Merge() them.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace berth::bench {

class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(uint64_t nanos);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The smallest recorded value v such that at least q (0..1] of the samples are <= v,
  // to within the bucket resolution; exact for the min and max. 0 when empty.
  uint64_t Percentile(double q) const;

  // 7 sub-bucket bits: 128 buckets per power of two.
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSubCount = uint64_t{1} << kSubBits;
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSubCount;
  // Bucket index of a value and the range of values a bucket holds (exposed for tests).
  static size_t BucketOf(uint64_t v);
  static uint64_t BucketLow(size_t index);
  static uint64_t BucketHigh(size_t index);

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  unsigned __int128 sum_ = 0;
};

// What a report shows about a workload's latencies, in milliseconds.
struct LatencySummary {
  uint64_t count = 0;
  double mean_ms = 0;
  double min_ms = 0;
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

LatencySummary Summarize(const LatencyHistogram& h);

}  // namespace berth::bench
