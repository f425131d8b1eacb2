// Output of `berth bench`: a table for people and JSON for scripts, plus the size
// syntax of the flags ("1M", "64M", "1G"). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "bench/workloads.h"

namespace berth::bench {

// "512", "4K", "1M", "64MiB", "1G", "1.5G": binary multiples (K = 1024). kInvalidArgument
// otherwise.
Result<uint64_t> ParseSize(std::string_view text);
// 1048576 → "1M", 1536 → "1.5K", 100 → "100".
std::string FormatSize(uint64_t bytes);

std::string FormatTable(const std::vector<WorkloadResult>& results);
// {"target": url, "results": [ {workload, ops, ops_per_s, mb_per_s, latency_ms:{...},
//   server:{cpu_s, cpu_s_per_gib, cpu_ms_per_op, vm_hwm_kib, vm_rss_kib, ...}} ]}
std::string FormatJson(std::string_view url, const std::vector<WorkloadResult>& results);

}  // namespace berth::bench
