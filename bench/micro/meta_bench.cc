// Metadata lookups on the SQLite store: GetManifestByTag and a ListTags page with 1k
// and 100k tags in one repository. The database is filled once per tag count (in a
// temp dir) by many concurrent writers so that group commit batches the fsyncs.
#include <benchmark/benchmark.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "oci/digest.h"
#include "storage/meta/sqlite/sqlite_metadata_store.h"

namespace {

namespace fs = std::filesystem;
using berth::storage::ManifestRecord;
using berth::storage::MetadataStore;

constexpr const char* kRepo = "bench/app";

std::string Tag(int64_t i) { return "t" + std::to_string(i); }

struct Db {
  fs::path dir;
  std::unique_ptr<MetadataStore> store;
  ~Db() {
    store.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// One database per tag count, built on first use and kept for the process.
MetadataStore& StoreWithTags(int64_t tags) {
  static std::map<int64_t, std::unique_ptr<Db>> dbs;
  auto& slot = dbs[tags];
  if (slot) return *slot->store;
  slot = std::make_unique<Db>();
  slot->dir = fs::temp_directory_path() /
              ("berth-micro-meta-" + std::to_string(::getpid()) + "-" + std::to_string(tags));
  fs::create_directories(slot->dir);
  auto store = berth::storage::OpenSqliteMetadataStore(slot->dir / "meta.db");
  if (!store.ok()) std::abort();
  slot->store = std::move(*store);
  MetadataStore& s = *slot->store;
  berth::storage::RepositoryRecord repo;
  repo.name = kRepo;
  repo.created_at_ms = 1;
  if (!s.CreateRepository(repo).ok()) std::abort();
  std::atomic<int64_t> next{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 64; ++t) {
    writers.emplace_back([&] {
      for (int64_t i; (i = next.fetch_add(1)) < tags;) {
        ManifestRecord m;
        m.repository = kRepo;
        m.media_type = "application/vnd.oci.image.manifest.v1+json";
        m.bytes = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                  R"("config":{},"layers":[],"annotations":{"i":")" +
                  std::to_string(i) + "\"}}";
        m.size = static_cast<int64_t>(m.bytes.size());
        m.digest = berth::oci::Digest::Of(m.bytes);
        m.pushed_at_ms = 1;
        m.annotations_json = "{}";
        if (!s.PutManifest(m, Tag(i)).ok()) std::abort();
      }
    });
  }
  for (auto& w : writers) w.join();
  return s;
}

void BM_GetManifestByTag(benchmark::State& state) {
  int64_t tags = state.range(0);
  MetadataStore& s = StoreWithTags(tags);
  std::mt19937_64 rng(1);
  for (auto _ : state) {
    auto m = s.GetManifestByTag(kRepo, Tag(static_cast<int64_t>(rng() % tags)));
    if (!m.ok()) state.SkipWithError(m.status().message().c_str());
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_GetManifestByTag)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

// A page of 100 tags, from the start and from the middle of the list.
void BM_ListTagsPage(benchmark::State& state) {
  int64_t tags = state.range(0);
  bool middle = state.range(1) != 0;
  MetadataStore& s = StoreWithTags(tags);
  std::string after = middle ? Tag(tags / 2) : "";
  for (auto _ : state) {
    auto page = s.ListTags(kRepo, after, 100);
    if (!page.ok() || page->empty()) state.SkipWithError("empty page");
    benchmark::DoNotOptimize(page);
  }
}
BENCHMARK(BM_ListTagsPage)
    ->Args({1000, 0})
    ->Args({1000, 1})
    ->Args({100000, 0})
    ->Args({100000, 1})
    ->Unit(benchmark::kMicrosecond);

// The whole list of 1000 tags (what an unpaginated client asks for).
void BM_ListTagsAll1k(benchmark::State& state) {
  MetadataStore& s = StoreWithTags(1000);
  for (auto _ : state) benchmark::DoNotOptimize(s.ListTags(kRepo, "", 1000));
}
BENCHMARK(BM_ListTagsAll1k)->Unit(benchmark::kMicrosecond);

}  // namespace
