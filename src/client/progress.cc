#include "client/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace berth::client {

std::string HumanBytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

Progress::Mode Progress::Detect(bool quiet) {
  if (quiet) return Mode::kQuiet;
  const char* term = std::getenv("TERM");
  if (isatty(STDERR_FILENO) && (term == nullptr || std::strcmp(term, "dumb") != 0)) {
    return Mode::kTerminal;
  }
  return Mode::kLines;
}

Progress::Progress(Mode mode, std::FILE* out)
    : mode_(mode), out_(out), start_(std::chrono::steady_clock::now()) {
  if (mode_ == Mode::kTerminal) renderer_ = std::thread([this] { Loop(); });
}

Progress::~Progress() { Stop(); }

void Progress::Begin(const std::string& id, const std::string& label, uint64_t total) {
  if (mode_ == Mode::kQuiet) return;
  std::lock_guard lock(mu_);
  Item& it = active_[id];
  it.label = label;
  it.total = total;
  it.order = next_order_++;
  ++started_;
  bytes_total_ += total;
}

void Progress::Update(const std::string& id, uint64_t done) {
  if (mode_ != Mode::kTerminal) return;
  std::lock_guard lock(mu_);
  if (auto it = active_.find(id); it != active_.end()) it->second.done = done;
}

void Progress::Phase(const std::string& id, const std::string& phase) {
  if (mode_ != Mode::kTerminal) return;
  std::lock_guard lock(mu_);
  if (auto it = active_.find(id); it != active_.end()) {
    it->second.phase = phase;
    it->second.done = 0;
  }
}

void Progress::End(const std::string& id, const std::string& outcome) {
  if (mode_ == Mode::kQuiet) return;
  std::lock_guard lock(mu_);
  auto it = active_.find(id);
  if (it == active_.end()) return;
  ++finished_;
  bytes_done_ += it->second.total;
  std::string line = it->second.label + " (" + HumanBytes(it->second.total) + "): " + outcome;
  active_.erase(it);
  if (mode_ == Mode::kLines) {
    std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
  } else {
    pending_.push_back(std::move(line));
  }
}

void Progress::Line(const std::string& text) {
  if (mode_ == Mode::kQuiet) return;
  std::lock_guard lock(mu_);
  if (mode_ == Mode::kLines) {
    std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
  } else {
    pending_.push_back(text);
    RenderLocked(false);
  }
}

void Progress::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (renderer_.joinable()) renderer_.join();
  if (mode_ == Mode::kTerminal) {
    std::lock_guard lock(mu_);
    RenderLocked(true);
  }
}

void Progress::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    RenderLocked(false);
    cv_.wait_for(lock, std::chrono::milliseconds(200));
  }
}

void Progress::RenderLocked(bool final) {
  std::string s;
  // Erase the previous live area.
  if (drawn_lines_ > 0) s += "\x1b[" + std::to_string(drawn_lines_) + "A\x1b[J";
  for (const auto& l : pending_) s += l + "\n";
  pending_.clear();
  drawn_lines_ = 0;
  if (!final && (started_ > 0)) {
    std::vector<const std::pair<const std::string, Item>*> items;
    for (const auto& kv : active_) items.push_back(&kv);
    std::sort(items.begin(), items.end(),
              [](auto* a, auto* b) { return a->second.order < b->second.order; });
    uint64_t in_flight = 0;
    for (const auto* kv : items) {
      const Item& it = kv->second;
      in_flight += std::min(it.done, it.total);
      constexpr int kWidth = 24;
      int filled = it.total > 0 ? static_cast<int>(kWidth * std::min(it.done, it.total) / it.total)
                                : 0;
      std::string bar(static_cast<size_t>(filled), '=');
      if (filled < kWidth) bar += '>';
      bar.resize(kWidth, ' ');
      char line[256];
      std::snprintf(line, sizeof line, "%-28.28s %-11.11s [%s] %s / %s\n", it.label.c_str(),
                    it.phase.c_str(), bar.c_str(), HumanBytes(it.done).c_str(),
                    HumanBytes(it.total).c_str());
      s += line;
      ++drawn_lines_;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    uint64_t done = bytes_done_ + in_flight;
    char total[256];
    std::snprintf(total, sizeof total, "Total: %zu/%zu blobs, %s / %s, %s/s\n", finished_,
                  started_, HumanBytes(done).c_str(), HumanBytes(bytes_total_).c_str(),
                  HumanBytes(secs > 0 ? static_cast<uint64_t>(done / secs) : 0).c_str());
    s += total;
    ++drawn_lines_;
  }
  std::fputs(s.c_str(), out_);
  std::fflush(out_);
}

}  // namespace berth::client
