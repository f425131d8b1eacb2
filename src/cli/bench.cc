#include "cli/bench.h"

#include <sys/resource.h>

#include <cstdio>
#include <memory>
#include <sstream>

#include "bench/report.h"
#include "bench/workloads.h"

namespace berth::cli {
namespace {

struct BenchFlags {
  bench::BenchOptions options;
  std::vector<std::string> workloads;
  std::string size = "1M";
  std::string chunk_size = "8M";
  bool no_verify = false;
  bool json = false;
};

// Exit codes: 0 all workloads ran cleanly; 1 a protocol error (the registry answered
// something a registry must not); 2 bad flags or a setup problem (cannot connect).
constexpr int kExitProtocol = 1;
constexpr int kExitUsage = 2;

std::vector<std::string> ExpandWorkloads(const std::vector<std::string>& given) {
  std::vector<std::string> out;
  for (const auto& item : given) {
    std::stringstream ss(item);
    std::string name;
    while (std::getline(ss, name, ',')) {
      if (name.empty()) continue;
      if (name == "all") {
        for (const auto& w : bench::WorkloadNames()) {
          if (w != "idle") out.push_back(w);
        }
      } else {
        out.push_back(name);
      }
    }
  }
  return out;
}

// Many connections need many descriptors: raise the soft limit to the hard one.
void RaiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int RunBench(BenchFlags& flags) {
  auto size = bench::ParseSize(flags.size);
  auto chunk = bench::ParseSize(flags.chunk_size);
  for (const auto* r : {&size, &chunk}) {
    if (!r->ok()) {
      std::fprintf(stderr, "berth bench: %s\n", r->status().message().c_str());
      return kExitUsage;
    }
  }
  if (*chunk == 0) {
    std::fprintf(stderr, "berth bench: --chunk-size must be > 0\n");
    return kExitUsage;
  }
  flags.options.size = *size;
  flags.options.chunk_size = *chunk;
  flags.options.verify = !flags.no_verify;
  auto names = ExpandWorkloads(flags.workloads);
  if (names.empty()) names = {"ping"};
  for (const auto& n : names) {
    if (!bench::IsWorkload(n)) {
      std::string known;
      for (const auto& w : bench::WorkloadNames()) known += " " + w;
      std::fprintf(stderr, "berth bench: unknown workload '%s'; known: all%s\n", n.c_str(),
                   known.c_str());
      return kExitUsage;
    }
  }
  RaiseFileLimit();
  bench::Runner runner(flags.options);
  if (Status st = runner.Init(); !st.ok()) {
    std::fprintf(stderr, "berth bench: %s\n", st.message().c_str());
    return kExitUsage;
  }
  std::vector<bench::WorkloadResult> results;
  for (const auto& name : names) {
    if (!flags.json) {
      std::fprintf(stderr, "berth bench: running %s against %s (repository %s)\n", name.c_str(),
                   flags.options.url.c_str(), runner.RepositoryFor(name).c_str());
    }
    auto r = runner.Run(name);
    if (!r.ok()) {
      if (!results.empty()) {
        std::fputs(flags.json ? bench::FormatJson(flags.options.url, results).c_str()
                              : bench::FormatTable(results).c_str(),
                   stdout);
      }
      std::fprintf(stderr, "berth bench: FAILED %s\n", r.status().message().c_str());
      return r.status().Is(Code::kUnavailable) && results.empty() ? kExitUsage : kExitProtocol;
    }
    results.push_back(std::move(*r));
  }
  std::fputs(flags.json ? bench::FormatJson(flags.options.url, results).c_str()
                        : bench::FormatTable(results).c_str(),
             stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

void AddBenchCommand(CLI::App& app) {
  auto flags = std::make_shared<BenchFlags>();
  auto& o = flags->options;
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Load-test an OCI registry: blob push/pull, manifests, tags, catalog, mixed traffic. "
      "Exits 1 on any protocol error");
  cmd->add_option("--url", o.url, "Registry base URL (http:// or https://)")->capture_default_str();
  cmd->add_option("-w,--workload", flags->workloads,
                  "Workloads, comma-separated or repeated: all, ping, blob-push, "
                  "blob-push-chunked, blob-pull, manifest-put, manifest-get-tag, "
                  "manifest-get-digest, manifest-head-tag, manifest-head-digest, index-push, "
                  "tags-list, catalog, mixed, idle (default: ping)");
  cmd->add_option("-s,--size", flags->size, "Blob size (512, 4K, 1M, 64M, 1G)")
      ->capture_default_str();
  cmd->add_option("--chunk-size", flags->chunk_size, "PATCH size for blob-push-chunked")
      ->capture_default_str();
  cmd->add_option("-n,--count", o.count,
                  "Operations per workload (default: ~1 GiB of blobs for blob workloads, "
                  "else --duration)");
  cmd->add_option("-d,--duration", o.duration_s,
                  "Seconds per workload instead of a count (default 5 when no --count; the "
                  "hold time for idle)");
  cmd->add_option("-c,--concurrency", o.concurrency, "Concurrent clients (connections)")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "I/O threads (default: one per core)");
  cmd->add_option("--repo", o.repo_prefix,
                  "Repository prefix; workload W uses PREFIX/W (default berth-bench/<random>)");
  cmd->add_option("--repository", o.repository, "Use this one repository for every workload");
  cmd->add_option("--tags", o.tags, "Tags created by setup for manifest reads and tags-list")
      ->capture_default_str();
  cmd->add_option("--hot", o.hot,
                  "manifest reads: only this many of the --tags images, spread over them "
                  "(0: any)")
      ->capture_default_str();
  cmd->add_option("--repos", o.repos, "Repositories created by the catalog setup")
      ->capture_default_str();
  cmd->add_option("--page", o.page, "n= for tags-list and catalog (0: none)")
      ->capture_default_str();
  cmd->add_option("--first-index", o.first_index,
                  "manifest-put: number images and tags from here (extend a repository)");
  cmd->add_option("--last", o.last, "tags-list and catalog: last= (list after this entry)");
  cmd->add_flag("--skip-setup", o.skip_setup,
                "Reuse tags/repositories/blobs an earlier run created (same --repository)");
  cmd->add_flag("--single-post", o.single_post,
                "blob-push: one POST ?digest= with the body instead of POST + PUT");
  cmd->add_flag("--no-verify", flags->no_verify, "Do not hash what is pulled");
  cmd->add_option("--server-pid", o.server_pid,
                  "Report this process's CPU seconds and memory (from /proc)");
  cmd->add_option("-u,--user", o.credentials.user, "User for Basic auth or the token realm");
  cmd->add_option("-p,--password", o.credentials.password, "Password");
  cmd->add_option("--token", o.credentials.token, "A bearer token to send on every request");
  cmd->add_flag("-k,--insecure", o.insecure, "TLS: do not verify the server certificate");
  cmd->add_option("--cacert", o.cacert, "TLS: CA bundle (PEM) to verify the server with");
  cmd->add_option("--timeout", o.timeout_s, "Seconds before an I/O operation times out")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "Print JSON instead of a table");
  cmd->callback([flags] { throw CLI::RuntimeError(RunBench(*flags)); });
}

}  // namespace berth::cli
