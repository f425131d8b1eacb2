// `berth bench` workloads and the runner that drives them: N keep-alive clients
// spread over one io_context thread per core, each running operations back to back;
// latency per operation into per-thread histograms; the server's CPU and memory
// sampled from /proc around the timed phase.
//
// A workload has an untimed Setup (push what the timed phase reads) and an Op, one
// registry operation (or one short sequence, such as POST + PUT for a blob push),
// which checks everything it receives: status codes, Docker-Content-Digest, lengths,
// body digests (unless --no-verify). The first failure stops the workload and is
// reported as a protocol error.
//
// Not thread-safe: one Runner per process, used from one thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/http_client.h"
#include "bench/stats.h"

namespace berth::bench {

struct BenchOptions {
  // Registry base URL. Default: http://127.0.0.1:5000.
  std::string url = "http://127.0.0.1:5000";
  // Blob size for the blob workloads and the mixed workload's blobs. Default: 1 MiB.
  uint64_t size = 1 << 20;
  // PATCH size for blob-push-chunked. Default: 8 MiB.
  uint64_t chunk_size = 8 << 20;
  // Operations per workload; 0 = the default (blob workloads: about 1 GiB of data,
  // 2..1024 blobs; others: run for `duration_s`). Default: 0.
  uint64_t count = 0;
  // Run each workload this long (seconds) instead of a count; 0 = by count. Default: 0
  // (5 s for non-blob workloads when no count is given; the hold time for `idle`).
  double duration_s = 0;
  // Concurrent clients (one keep-alive connection each). Default: 8.
  int concurrency = 8;
  // io_context threads; 0 = one per core. Default: 0.
  int threads = 0;
  // Repository prefix: workload W uses PREFIX/W. Default: berth-bench/<random>.
  std::string repo_prefix;
  // One repository for every workload (overrides the prefix), e.g. for scale runs.
  std::string repository;
  // Check digests of what is read. Default: true.
  bool verify = true;
  // Per-I/O timeout in seconds. Default: 120.
  int timeout_s = 120;
  // Tags created by setup (manifest-get/head, tags-list, mixed). Default: 100.
  uint64_t tags = 100;
  // manifest-get/head by tag or digest: read only this many of the --tags images,
  // spread evenly over them (a hot set of a fixed size however big the repository is);
  // 0 = any of them. Default: 0.
  uint64_t hot = 0;
  // Repositories created by the catalog setup. Default: 100.
  uint64_t repos = 100;
  // `n` for tags-list and catalog; 0 = none (server default). Default: 100.
  uint64_t page = 100;
  // manifest-put: operation i puts image first_index + i as tag t<first_index + i>, so
  // a later run can extend a repository. Default: 0.
  uint64_t first_index = 0;
  // tags-list and catalog: `last=` (start the page after this entry); empty = from the
  // start. Default: empty.
  std::string last;
  // Assume an earlier run created the tags / repositories / blobs. Default: false.
  bool skip_setup = false;
  // Push a monolithic blob in one POST ?digest= instead of POST + PUT. Default: false.
  bool single_post = false;
  // Measure this server process (CPU and memory from /proc); 0 = none. Default: 0.
  int server_pid = 0;
  Credentials credentials;
  // TLS: skip certificate verification; extra CA file. Default: verify, system CAs.
  bool insecure = false;
  std::string cacert;
};

struct ServerUsage {
  int pid = 0;
  double user_s = 0;
  double system_s = 0;
  double cpu_s = 0;
  std::optional<double> cpu_s_per_gib;  // for workloads that move blobs
  double cpu_ms_per_op = 0;
  uint64_t vm_hwm_kib = 0;         // lifetime peak RSS, after the workload
  uint64_t vm_rss_kib = 0;         // RSS after the workload
  uint64_t vm_rss_max_kib = 0;     // highest RSS seen while it ran (sampled every 50 ms)
  uint64_t vm_rss_before_kib = 0;  // RSS before it opened its connections
};

struct WorkloadResult {
  std::string workload;
  std::string repository;
  uint64_t size = 0;  // blob size, for workloads that move blobs
  int concurrency = 0;
  int threads = 0;
  uint64_t ops = 0;
  uint64_t bytes = 0;  // payload bytes sent + received
  double seconds = 0;
  double ops_per_s = 0;
  double mb_per_s = 0;  // 10^6 bytes per second
  LatencySummary latency;
  double setup_seconds = 0;
  double client_cpu_s = 0;  // this process, during the timed phase
  std::optional<ServerUsage> server;
};

// Every workload name, in the order `all` runs them (idle is not part of `all`).
const std::vector<std::string>& WorkloadNames();
bool IsWorkload(std::string_view name);

class Workload;

class Runner {
 public:
  explicit Runner(BenchOptions options);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Parses and resolves the URL, sets up TLS and the threads.
  Status Init();
  // Runs one workload: setup, warm connections, timed phase. A protocol error is a
  // non-OK Status saying what failed.
  Result<WorkloadResult> Run(std::string_view workload);

  // For workloads: runs `fn(client, i)` for i in [0, count) — or until `duration_s`
  // passes when count is 0 — on `concurrency` clients. `fn` returns the payload bytes
  // moved. Records latencies when `hist` is given.
  using OpFn = std::function<asio::awaitable<Result<uint64_t>>(Client&, uint64_t)>;
  struct PhaseResult {
    uint64_t ops = 0;
    uint64_t bytes = 0;
    double seconds = 0;
    LatencyHistogram hist;
  };
  Result<PhaseResult> RunPhase(uint64_t count, double duration_s, int concurrency, const OpFn& fn);
  // Opens (and pings) the first `concurrency` connections.
  Status Warm(int concurrency);
  // Runs `fn(i)` for i in [0, count) on the runner's threads (CPU work, no I/O).
  void ParallelCpu(uint64_t count, const std::function<void(uint64_t)>& fn);

  const BenchOptions& options() const { return options_; }
  int threads() const { return static_cast<int>(iocs_.size()); }
  uint64_t run_seed() const { return run_seed_; }
  std::string RepositoryFor(std::string_view workload) const;

 private:
  Client& ClientAt(int index);

  BenchOptions options_;
  Endpoint endpoint_;
  std::unique_ptr<asio::ssl::context> tls_;
  std::unique_ptr<Authenticator> auth_;
  std::vector<std::unique_ptr<asio::io_context>> iocs_;
  std::vector<std::unique_ptr<Client>> clients_;
  uint64_t run_seed_ = 0;
};

}  // namespace berth::bench
