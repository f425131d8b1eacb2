// Digest streaming: the per-byte cost of hashing a blob as it arrives (1 MiB chunks,
// the size of the server's body reads), for sha256 and sha512; digest parsing; and
// the bench tool's own content generator (it must be far faster than the hash).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/content.h"
#include "oci/digest.h"

namespace {

using berth::oci::Digest;
using berth::oci::DigestAlgorithm;
using berth::oci::Hasher;

void BM_HasherUpdate1MiB(benchmark::State& state, DigestAlgorithm alg) {
  std::vector<char> chunk(1 << 20);
  berth::bench::RandomContent(1, chunk.size()).Read(chunk);
  Hasher h(alg);
  for (auto _ : state) h.Update(std::span<const char>(chunk));
  benchmark::DoNotOptimize(h.Peek());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * chunk.size());
}
BENCHMARK_CAPTURE(BM_HasherUpdate1MiB, sha256, DigestAlgorithm::kSha256);
BENCHMARK_CAPTURE(BM_HasherUpdate1MiB, sha512, DigestAlgorithm::kSha512);

// A whole small blob (a manifest-sized body): setup + update + final.
void BM_DigestOf(benchmark::State& state) {
  std::string bytes(static_cast<size_t>(state.range(0)), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(Digest::Of(bytes));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes.size());
}
BENCHMARK(BM_DigestOf)->Arg(1024)->Arg(64 * 1024);

void BM_DigestParse(benchmark::State& state) {
  const std::string s = Digest::Of("hello").str();
  for (auto _ : state) benchmark::DoNotOptimize(Digest::Parse(s));
}
BENCHMARK(BM_DigestParse);

void BM_RandomContent1MiB(benchmark::State& state) {
  std::vector<char> chunk(1 << 20);
  berth::bench::RandomContent content(7, UINT64_MAX / 2);
  for (auto _ : state) benchmark::DoNotOptimize(content.Read(chunk));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * chunk.size());
}
BENCHMARK(BM_RandomContent1MiB);

}  // namespace
