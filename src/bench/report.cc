#include "bench/report.h"

#include <boost/json.hpp>
#include <cmath>
#include <cstdio>

namespace berth::bench {
namespace {

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Three significant digits, for numbers of any magnitude.
std::string Sig(double v) {
  if (v == 0) return "0";
  double a = std::fabs(v);
  if (a >= 1000) return Fixed(v, 0);
  if (a >= 100) return Fixed(v, 1);
  if (a >= 10) return Fixed(v, 2);
  if (a >= 1) return Fixed(v, 2);
  if (a >= 0.01) return Fixed(v, 3);
  return Fixed(v, 4);
}

std::string Pad(std::string s, size_t width, bool left) {
  if (s.size() >= width) return s;
  return left ? s + std::string(width - s.size(), ' ') : std::string(width - s.size(), ' ') + s;
}

double Round(double v, int decimals) {
  double m = std::pow(10.0, decimals);
  return std::round(v * m) / m;
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  std::string_view s = text;
  auto bad = [&] {
    return Status::InvalidArgument("invalid size '" + std::string(text) +
                                   "': use a number with an optional K, M, G or T suffix");
  };
  if (s.empty()) return bad();
  size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  if (i == 0) return bad();
  double num = 0;
  try {
    size_t used = 0;
    num = std::stod(std::string(s.substr(0, i)), &used);
    if (used != i) return bad();
  } catch (...) {
    return bad();
  }
  std::string suffix(s.substr(i));
  for (char& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mult = 1;
  if (suffix.empty() || suffix == "B") {
    mult = 1;
  } else if (suffix == "K" || suffix == "KB" || suffix == "KIB") {
    mult = 1024.0;
  } else if (suffix == "M" || suffix == "MB" || suffix == "MIB") {
    mult = 1024.0 * 1024;
  } else if (suffix == "G" || suffix == "GB" || suffix == "GIB") {
    mult = 1024.0 * 1024 * 1024;
  } else if (suffix == "T" || suffix == "TB" || suffix == "TIB") {
    mult = 1024.0 * 1024 * 1024 * 1024;
  } else {
    return bad();
  }
  double v = num * mult;
  if (v > 9.2e18 || v != std::floor(v)) return bad();
  return static_cast<uint64_t>(v);
}

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"", "K", "M", "G", "T"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return std::to_string(bytes);
  std::string s = v == std::floor(v) ? Fixed(v, 0) : Fixed(v, 1);
  return s + kUnits[u];
}

std::string FormatTable(const std::vector<WorkloadResult>& results) {
  struct Col {
    const char* title;
    bool left;
  };
  static constexpr Col kCols[] = {
      {"workload", true},   {"size", false},    {"conc", false},      {"ops", false},
      {"ops/s", false},     {"MB/s", false},    {"p50 ms", false},    {"p90 ms", false},
      {"p99 ms", false},    {"max ms", false},  {"srv cpu s", false}, {"cpu s/GiB", false},
      {"cpu ms/op", false}, {"HWM MiB", false}, {"RSS MiB", false},   {"client cpu s", false}};
  constexpr size_t kN = sizeof(kCols) / sizeof(kCols[0]);
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : results) {
    std::vector<std::string> row;
    row.push_back(r.workload);
    row.push_back(r.size ? FormatSize(r.size) : "-");
    row.push_back(std::to_string(r.concurrency));
    row.push_back(std::to_string(r.ops));
    row.push_back(Sig(r.ops_per_s));
    row.push_back(r.bytes ? Sig(r.mb_per_s) : "-");
    row.push_back(Sig(r.latency.p50_ms));
    row.push_back(Sig(r.latency.p90_ms));
    row.push_back(Sig(r.latency.p99_ms));
    row.push_back(Sig(r.latency.max_ms));
    if (r.server) {
      row.push_back(Sig(r.server->cpu_s));
      row.push_back(r.server->cpu_s_per_gib ? Sig(*r.server->cpu_s_per_gib) : "-");
      row.push_back(Sig(r.server->cpu_ms_per_op));
      row.push_back(Fixed(r.server->vm_hwm_kib / 1024.0, 1));
      row.push_back(Fixed(r.server->vm_rss_kib / 1024.0, 1));
    } else {
      for (int i = 0; i < 5; ++i) row.push_back("-");
    }
    row.push_back(Sig(r.client_cpu_s));
    rows.push_back(std::move(row));
  }
  size_t width[kN];
  for (size_t c = 0; c < kN; ++c) {
    width[c] = std::string_view(kCols[c].title).size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (size_t c = 0; c < kN; ++c) {
    out += Pad(kCols[c].title, width[c], kCols[c].left);
    out += c + 1 < kN ? "  " : "\n";
  }
  for (const auto& row : rows) {
    for (size_t c = 0; c < kN; ++c) {
      out += Pad(row[c], width[c], kCols[c].left);
      out += c + 1 < kN ? "  " : "\n";
    }
  }
  return out;
}

std::string FormatJson(std::string_view url, const std::vector<WorkloadResult>& results) {
  boost::json::array arr;
  for (const auto& r : results) {
    boost::json::object o;
    o["workload"] = r.workload;
    o["repository"] = r.repository;
    o["size"] = r.size;
    o["concurrency"] = r.concurrency;
    o["threads"] = r.threads;
    o["ops"] = r.ops;
    o["bytes"] = r.bytes;
    o["seconds"] = Round(r.seconds, 4);
    o["ops_per_s"] = Round(r.ops_per_s, 2);
    o["mb_per_s"] = Round(r.mb_per_s, 2);
    o["setup_seconds"] = Round(r.setup_seconds, 3);
    o["client_cpu_s"] = Round(r.client_cpu_s, 3);
    boost::json::object lat;
    lat["mean"] = Round(r.latency.mean_ms, 4);
    lat["min"] = Round(r.latency.min_ms, 4);
    lat["p50"] = Round(r.latency.p50_ms, 4);
    lat["p90"] = Round(r.latency.p90_ms, 4);
    lat["p99"] = Round(r.latency.p99_ms, 4);
    lat["max"] = Round(r.latency.max_ms, 4);
    o["latency_ms"] = std::move(lat);
    if (r.server) {
      const auto& s = *r.server;
      boost::json::object so;
      so["pid"] = s.pid;
      so["cpu_user_s"] = Round(s.user_s, 3);
      so["cpu_system_s"] = Round(s.system_s, 3);
      so["cpu_s"] = Round(s.cpu_s, 3);
      if (s.cpu_s_per_gib) {
        so["cpu_s_per_gib"] = Round(*s.cpu_s_per_gib, 4);
      } else {
        so["cpu_s_per_gib"] = nullptr;
      }
      so["cpu_ms_per_op"] = Round(s.cpu_ms_per_op, 5);
      so["vm_hwm_kib"] = s.vm_hwm_kib;
      so["vm_rss_kib"] = s.vm_rss_kib;
      so["vm_rss_before_kib"] = s.vm_rss_before_kib;
      so["vm_rss_max_kib"] = s.vm_rss_max_kib;
      o["server"] = std::move(so);
    } else {
      o["server"] = nullptr;
    }
    arr.push_back(std::move(o));
  }
  boost::json::object root;
  root["target"] = url;
  root["results"] = std::move(arr);
  return boost::json::serialize(root) + "\n";
}

}  // namespace berth::bench
