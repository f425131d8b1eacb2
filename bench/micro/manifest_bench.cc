// Manifest parsing and validation (oci::ParseManifest), which every manifest PUT runs:
// a typical image (config + 4 layers), a big image (100 layers) and a multi-arch index.
#include <benchmark/benchmark.h>

#include <string>

#include "oci/digest.h"
#include "oci/manifest.h"

namespace {

constexpr std::string_view kImageType = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kIndexType = "application/vnd.oci.image.index.v1+json";

std::string D(int i) { return berth::oci::Digest::Of(std::to_string(i)).str(); }

std::string Image(int layers) {
  std::string m = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                  R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                  D(-1) + R"(","size":1470},"layers":[)";
  for (int i = 0; i < layers; ++i) {
    if (i) m += ',';
    m += R"({"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" + D(i) +
         R"(","size":)" + std::to_string(1000000 + i) + "}";
  }
  m += R"(],"annotations":{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}})";
  return m;
}

std::string Index(int platforms) {
  std::string m =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)";
  for (int i = 0; i < platforms; ++i) {
    if (i) m += ',';
    m += R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + D(i) +
         R"(","size":1024,"platform":{"architecture":"arch)" + std::to_string(i) +
         R"(","os":"linux","variant":"v8"}})";
  }
  m += "]}";
  return m;
}

void BM_ParseImage(benchmark::State& state) {
  std::string bytes = Image(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto parsed = berth::oci::ParseManifest(bytes, kImageType);
    if (!parsed.ok()) state.SkipWithError(parsed.status().message().c_str());
    benchmark::DoNotOptimize(parsed);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes.size());
  state.counters["bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_ParseImage)->Arg(4)->Arg(100);

void BM_ParseIndex(benchmark::State& state) {
  std::string bytes = Index(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto parsed = berth::oci::ParseManifest(bytes, kIndexType);
    if (!parsed.ok()) state.SkipWithError(parsed.status().message().c_str());
    benchmark::DoNotOptimize(parsed);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes.size());
}
BENCHMARK(BM_ParseIndex)->Arg(2)->Arg(16);

// Parse + digest: the CPU a manifest PUT spends before touching storage.
void BM_ParseAndDigestImage(benchmark::State& state) {
  std::string bytes = Image(4);
  for (auto _ : state) {
    benchmark::DoNotOptimize(berth::oci::ParseManifest(bytes, kImageType));
    benchmark::DoNotOptimize(berth::oci::Digest::Of(bytes));
  }
}
BENCHMARK(BM_ParseAndDigestImage);

}  // namespace
