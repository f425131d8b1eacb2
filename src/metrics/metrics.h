// Process-wide request metrics rendered in the Prometheus text format.
// Thread-safe: counters are sharded by a mutex per series map (requests are
// short; contention is measured in bench/, not guessed).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

namespace berth::metrics {

class Metrics {
 public:
  static constexpr std::array<double, 12> kLatencyBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

  // `route` and `method` must have static storage duration (route names and
  // beast's verb strings): they are kept as keys without copying, so the hot path
  // does not allocate.
  void ObserveRequest(std::string_view route, std::string_view method, int status,
                      double seconds, uint64_t bytes_in, uint64_t bytes_out);
  void ConnectionOpened() { connections_.fetch_add(1, std::memory_order_relaxed); }
  void ConnectionClosed() { connections_.fetch_sub(1, std::memory_order_relaxed); }

  // Renders every series; `extra` appends more lines (gauges owned elsewhere).
  std::string Render(const std::function<void(std::string&)>& extra = {}) const;

 private:
  struct Histogram {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string_view, std::string_view, int>, uint64_t> requests_;  // mu_
  std::map<std::string_view, Histogram> latency_;  // guarded by mu_
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<int64_t> connections_{0};
};

}  // namespace berth::metrics
