// Progress: what a long command (copy, push, pack) shows while it works.
//
//   kTerminal  stderr is a TTY: a live area redrawn every 200 ms with one bar per
//              blob in flight and a total line (blobs, bytes, rate).
//   kLines     not a TTY (CI logs, pipes): one plain line per finished blob.
//   kQuiet     nothing (--quiet).
//
// Thread-safe: worker threads report; a renderer thread draws (terminal mode only).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace berth::client {

class Progress {
 public:
  enum class Mode { kQuiet, kLines, kTerminal };
  // kTerminal when stderr is a TTY and TERM is not "dumb", else kLines; kQuiet if quiet.
  static Mode Detect(bool quiet);

  explicit Progress(Mode mode, std::FILE* out = stderr);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // A blob (or other unit) with `total` bytes starts.
  void Begin(const std::string& id, const std::string& label, uint64_t total);
  void Update(const std::string& id, uint64_t done);
  // "downloading", "uploading", …
  void Phase(const std::string& id, const std::string& phase);
  // The unit finished: "done", "exists", "mounted", "failed".
  void End(const std::string& id, const std::string& outcome);
  // A message line (kept above the live area in terminal mode).
  void Line(const std::string& text);
  // Stops the renderer and leaves the final state on screen.
  void Stop();

  Mode mode() const { return mode_; }

 private:
  struct Item {
    std::string label;
    std::string phase;
    uint64_t total = 0;
    uint64_t done = 0;
    size_t order = 0;
  };
  void RenderLocked(bool final);
  void Loop();

  Mode mode_;
  std::FILE* out_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                    // guarded by mu_
  std::map<std::string, Item> active_;   // guarded by mu_
  std::vector<std::string> pending_;     // lines to print; guarded by mu_
  size_t drawn_lines_ = 0;               // guarded by mu_
  size_t next_order_ = 0;                // guarded by mu_
  size_t finished_ = 0;                  // guarded by mu_
  size_t started_ = 0;                   // guarded by mu_
  uint64_t bytes_done_ = 0;              // finished units; guarded by mu_
  uint64_t bytes_total_ = 0;             // guarded by mu_
  std::chrono::steady_clock::time_point start_;
  std::thread renderer_;
};

// "64.0 MiB".
std::string HumanBytes(uint64_t n);

}  // namespace berth::client
