// Routing: MatchRoute on the paths of the hot requests (manifest GET, blob GET, upload
// PATCH) and on a deep repository name.
#include <benchmark/benchmark.h>

#include <string>

#include "api/distribution/handlers.h"

namespace {

using berth::api::distribution::MatchRoute;

void BM_MatchRoute(benchmark::State& state, std::string path) {
  for (auto _ : state) benchmark::DoNotOptimize(MatchRoute(path));
}
BENCHMARK_CAPTURE(BM_MatchRoute, base, std::string("/v2/"));
BENCHMARK_CAPTURE(BM_MatchRoute, manifest_tag, std::string("/v2/library/ubuntu/manifests/22.04"));
BENCHMARK_CAPTURE(BM_MatchRoute, blob,
                  std::string("/v2/library/ubuntu/blobs/sha256:"
                              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
BENCHMARK_CAPTURE(BM_MatchRoute, upload,
                  std::string("/v2/team/app/blobs/uploads/0123456789abcdef0123456789abcdef"));
BENCHMARK_CAPTURE(BM_MatchRoute, tags, std::string("/v2/team/app/tags/list"));
BENCHMARK_CAPTURE(BM_MatchRoute, deep_name,
                  std::string("/v2/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/manifests/latest"));
BENCHMARK_CAPTURE(BM_MatchRoute, not_found, std::string("/v1/whatever"));

}  // namespace
