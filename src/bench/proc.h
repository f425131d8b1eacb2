// Reading another process's resource use from /proc: CPU seconds (user and system,
// /proc/PID/stat) and memory (VmHWM, the lifetime peak RSS, and VmRSS, the current
// RSS, from /proc/PID/status). Linux only. Pure parsers are split out for tests.
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"

namespace berth::bench {

struct ProcessCpu {
  double user_s = 0;
  double system_s = 0;
};

struct ProcessMemory {
  uint64_t vm_hwm_kib = 0;  // peak resident set since the process started
  uint64_t vm_rss_kib = 0;  // resident set now
};

struct ProcessSample {
  ProcessCpu cpu;
  ProcessMemory memory;
};

// Parses the text of /proc/PID/stat (utime and stime, fields 14 and 15, in clock ticks).
// The command name may contain spaces and parentheses, so fields are counted from the
// last ')'.
Result<ProcessCpu> ParseProcStat(std::string_view text, long ticks_per_second);
// Parses the text of /proc/PID/status (VmHWM and VmRSS lines, in kB).
Result<ProcessMemory> ParseProcStatus(std::string_view text);

// Reads both files of `pid`. kNotFound when the process is gone.
Result<ProcessSample> SampleProcess(int pid);
// Current VmRSS of `pid` in KiB, 0 when unreadable (for a cheap polling sampler).
uint64_t CurrentRssKib(int pid);

// This process's own CPU seconds (getrusage).
ProcessCpu SelfCpu();

}  // namespace berth::bench
