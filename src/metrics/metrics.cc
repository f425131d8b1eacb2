#include "metrics/metrics.h"

#include <cstdio>

namespace berth::metrics {

void Metrics::ObserveRequest(std::string_view route, std::string_view method, int status,
                             double seconds, uint64_t bytes_in, uint64_t bytes_out) {
  bytes_in_.fetch_add(bytes_in, std::memory_order_relaxed);
  bytes_out_.fetch_add(bytes_out, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  ++requests_[{route, method, status}];
  Histogram& h = latency_[route];
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

std::string Metrics::Render(const std::function<void(std::string&)>& extra) const {
  std::string out;
  char line[512];
  out +=
      "# HELP berth_http_requests_total HTTP requests by route, method and status.\n"
      "# TYPE berth_http_requests_total counter\n";
  std::lock_guard lock(mu_);
  for (const auto& [key, n] : requests_) {
    const auto& [route, method, status] = key;
    std::snprintf(line, sizeof line,
                  "berth_http_requests_total{route=\"%.*s\",method=\"%.*s\",status=\"%d\"} %llu\n",
                  static_cast<int>(route.size()), route.data(), static_cast<int>(method.size()),
                  method.data(), status, static_cast<unsigned long long>(n));
    out += line;
  }
  out +=
      "# HELP berth_http_request_duration_seconds Request latency by route.\n"
      "# TYPE berth_http_request_duration_seconds histogram\n";
  for (const auto& [route_view, h] : latency_) {
    std::string route(route_view);
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      std::snprintf(line, sizeof line,
                    "berth_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    route.c_str(), kLatencyBuckets[i],
                    static_cast<unsigned long long>(h.buckets[i]));
      out += line;
    }
    std::snprintf(line, sizeof line,
                  "berth_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                  "berth_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                  "berth_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  route.c_str(), static_cast<unsigned long long>(h.count), route.c_str(), h.sum,
                  route.c_str(), static_cast<unsigned long long>(h.count));
    out += line;
  }
  std::snprintf(line, sizeof line,
                "# HELP berth_http_received_bytes_total Request body bytes received.\n"
                "# TYPE berth_http_received_bytes_total counter\n"
                "berth_http_received_bytes_total %llu\n"
                "# HELP berth_http_sent_bytes_total Response body bytes sent.\n"
                "# TYPE berth_http_sent_bytes_total counter\n"
                "berth_http_sent_bytes_total %llu\n"
                "# HELP berth_http_connections Open client connections.\n"
                "# TYPE berth_http_connections gauge\n"
                "berth_http_connections %lld\n",
                static_cast<unsigned long long>(bytes_in_.load()),
                static_cast<unsigned long long>(bytes_out_.load()),
                static_cast<long long>(connections_.load()));
  out += line;
  if (extra) extra(out);
  return out;
}

}  // namespace berth::metrics
