#include "bench/stats.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace berth::bench {

LatencyHistogram::LatencyHistogram() : buckets_(kBuckets, 0) {}

size_t LatencyHistogram::BucketOf(uint64_t v) {
  if (v < kSubCount) return static_cast<size_t>(v);
  int e = 63 - std::countl_zero(v);  // >= kSubBits
  int shift = e - kSubBits;
  uint64_t sub = (v >> shift) - kSubCount;  // 0..kSubCount-1
  return static_cast<size_t>((shift + 1) * kSubCount + sub);
}

uint64_t LatencyHistogram::BucketLow(size_t index) {
  if (index < kSubCount) return index;
  uint64_t band = index / kSubCount;  // >= 1
  uint64_t sub = index % kSubCount;
  return (kSubCount + sub) << (band - 1);
}

uint64_t LatencyHistogram::BucketHigh(size_t index) {
  if (index < kSubCount) return index;
  uint64_t band = index / kSubCount;
  uint64_t width = uint64_t{1} << (band - 1);
  return BucketLow(index) + (width - 1);
}

void LatencyHistogram::Record(uint64_t nanos) {
  ++buckets_[BucketOf(nanos)];
  ++count_;
  min_ = std::min(min_, nanos);
  max_ = std::max(max_, nanos);
  sum_ += nanos;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

uint64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  if (rank == count_) return max_;
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      // The middle of the bucket, kept inside what was actually recorded.
      uint64_t lo = BucketLow(i), hi = BucketHigh(i);
      uint64_t mid = lo + (hi - lo) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

LatencySummary Summarize(const LatencyHistogram& h) {
  constexpr double kMs = 1e6;
  LatencySummary s;
  s.count = h.count();
  s.mean_ms = h.mean() / kMs;
  s.min_ms = static_cast<double>(h.min()) / kMs;
  s.p50_ms = static_cast<double>(h.Percentile(0.50)) / kMs;
  s.p90_ms = static_cast<double>(h.Percentile(0.90)) / kMs;
  s.p99_ms = static_cast<double>(h.Percentile(0.99)) / kMs;
  s.max_ms = static_cast<double>(h.max()) / kMs;
  return s;
}

}  // namespace berth::bench
