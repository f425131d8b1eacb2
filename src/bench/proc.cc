#include "bench/proc.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace berth::bench {
namespace {

Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    int err = errno;
    if (err == ENOENT || err == ESRCH) return Status::NotFound(path + ": no such process");
    return Status::FromErrno("reading " + path, err);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool ParseUint(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<ProcessCpu> ParseProcStat(std::string_view text, long ticks_per_second) {
  auto close = text.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) {
    return Status::InvalidArgument("malformed /proc/PID/stat: no ')' after the command name");
  }
  // After ")": field 3 (state) is the first; utime is field 14, stime field 15.
  std::string_view rest = text.substr(close + 1);
  int field = 2;
  uint64_t utime = 0, stime = 0;
  bool have_u = false, have_s = false;
  size_t i = 0;
  while (i < rest.size() && !(have_u && have_s)) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    size_t j = i;
    while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
    if (j == i) break;
    ++field;
    std::string_view tok = rest.substr(i, j - i);
    if (field == 14) have_u = ParseUint(tok, utime);
    if (field == 15) have_s = ParseUint(tok, stime);
    i = j;
  }
  if (!have_u || !have_s) {
    return Status::InvalidArgument("malformed /proc/PID/stat: utime/stime fields missing");
  }
  ProcessCpu cpu;
  cpu.user_s = static_cast<double>(utime) / static_cast<double>(ticks_per_second);
  cpu.system_s = static_cast<double>(stime) / static_cast<double>(ticks_per_second);
  return cpu;
}

Result<ProcessMemory> ParseProcStatus(std::string_view text) {
  ProcessMemory mem;
  bool hwm = false, rss = false;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto take = [&](std::string_view key, uint64_t& out) {
      if (!line.starts_with(key)) return false;
      std::string_view v = line.substr(key.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      auto sp = v.find(' ');
      return ParseUint(v.substr(0, sp), out);
    };
    if (take("VmHWM:", mem.vm_hwm_kib)) hwm = true;
    if (take("VmRSS:", mem.vm_rss_kib)) rss = true;
  }
  if (!hwm || !rss) {
    return Status::InvalidArgument("/proc/PID/status has no VmHWM/VmRSS lines (a kernel thread?)");
  }
  return mem;
}

Result<ProcessSample> SampleProcess(int pid) {
  std::string base = "/proc/" + std::to_string(pid);
  BERTH_ASSIGN_OR_RETURN(std::string stat, ReadSmallFile(base + "/stat"));
  BERTH_ASSIGN_OR_RETURN(std::string status, ReadSmallFile(base + "/status"));
  ProcessSample s;
  BERTH_ASSIGN_OR_RETURN(s.cpu, ParseProcStat(stat, sysconf(_SC_CLK_TCK)));
  BERTH_ASSIGN_OR_RETURN(s.memory, ParseProcStatus(status));
  return s;
}

uint64_t CurrentRssKib(int pid) {
  auto text = ReadSmallFile("/proc/" + std::to_string(pid) + "/status");
  if (!text.ok()) return 0;
  auto mem = ParseProcStatus(*text);
  return mem.ok() ? mem->vm_rss_kib : 0;
}

ProcessCpu SelfCpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  ProcessCpu c;
  c.user_s = static_cast<double>(ru.ru_utime.tv_sec) + ru.ru_utime.tv_usec / 1e6;
  c.system_s = static_cast<double>(ru.ru_stime.tv_sec) + ru.ru_stime.tv_usec / 1e6;
  return c;
}

}  // namespace berth::bench
