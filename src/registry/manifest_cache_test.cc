// The manifest cache: served only under the epoch it was filled at, never from a read
// that raced with a write, within its memory cap.
#include "registry/manifest_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "storage/meta/sqlite/sqlite_metadata_store.h"

namespace berth::registry {
namespace {

namespace fs = std::filesystem;
using storage::ManifestRecord;

std::shared_ptr<const ManifestRecord> Record(std::string repo, std::string bytes) {
  ManifestRecord m;
  m.repository = std::move(repo);
  m.digest = oci::Digest::Of(bytes);
  m.media_type = "application/vnd.oci.image.manifest.v1+json";
  m.size = static_cast<int64_t>(bytes.size());
  m.bytes = std::move(bytes);
  m.annotations_json = "{}";
  return std::make_shared<const ManifestRecord>(std::move(m));
}

TEST(ManifestCacheTest, HitAfterFillUnderTheSameEpochOnly) {
  ManifestCache cache(1 << 20);
  ASSERT_TRUE(cache.enabled());
  auto rec = Record("app", "{\"one\":1}");
  EXPECT_EQ(cache.Find("app", "v1", 2), nullptr);
  cache.Insert("app", "v1", rec, 2);
  EXPECT_EQ(cache.Find("app", "v1", 2), rec);
  // Keys are (repository, reference).
  EXPECT_EQ(cache.Find("app", "v2", 2), nullptr);
  EXPECT_EQ(cache.Find("other", "v1", 2), nullptr);
  EXPECT_EQ(cache.Find("app/v1", "", 2), nullptr);
  // A write started (odd) or ended (a later even value) since: not served.
  EXPECT_EQ(cache.Find("app", "v1", 3), nullptr);
  EXPECT_EQ(cache.Find("app", "v1", 4), nullptr);
}

TEST(ManifestCacheTest, ReadsMadeDuringAWriteAreNotCached) {
  ManifestCache cache(1 << 20);
  cache.Insert("app", "v1", Record("app", "{}"), 3);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.Find("app", "v1", 3), nullptr);
}

TEST(ManifestCacheTest, ALateInsertFromAnOlderEpochIsDropped) {
  ManifestCache cache(1 << 20);
  auto old_rec = Record("app", "{\"old\":1}");
  auto new_rec = Record("app", "{\"new\":1}");
  // A slow reader read at epoch 2; a write then moved the tag (epoch 4) and a faster
  // reader cached the new manifest before the slow one got to insert.
  cache.Insert("app", "v1", new_rec, 4);
  cache.Insert("app", "v1", old_rec, 2);
  EXPECT_EQ(cache.Find("app", "v1", 4), new_rec);
  EXPECT_EQ(cache.Find("app", "v1", 2), nullptr);
}

TEST(ManifestCacheTest, MemoryCapIsRespected) {
  constexpr size_t kCap = 64 * 1024;
  ManifestCache cache(kCap);
  std::shared_ptr<const ManifestRecord> last;
  for (int i = 0; i < 1000; ++i) {
    last = Record("app", std::string(1024, 'x') + std::to_string(i));
    cache.Insert("app", "t" + std::to_string(i), last, 2);
    ASSERT_LE(cache.bytes(), kCap) << "after " << i + 1 << " inserts";
  }
  EXPECT_GT(cache.size(), 0u);
  EXPECT_LT(cache.size(), 64u);
  EXPECT_EQ(cache.Find("app", "t999", 2), last);
  // Larger than a shard's share of the cap: not cached at all.
  cache.Insert("app", "big", Record("app", std::string(kCap, 'x')), 2);
  EXPECT_EQ(cache.Find("app", "big", 2), nullptr);
  EXPECT_LE(cache.bytes(), kCap);
}

TEST(ManifestCacheTest, RecentlyUsedEntriesSurviveWhenFull) {
  // Many more manifests than fit, one of them pulled between every two others: a full
  // shard drops what was used least recently, never the entry pulled all along.
  constexpr size_t kCap = 64 * 1024;
  ManifestCache cache(kCap);
  auto hot = Record("app", std::string(1024, 'h'));
  cache.Insert("app", "hot", hot, 2);
  for (int i = 0; i < 1000; ++i) {
    cache.Insert("app", "t" + std::to_string(i),
                 Record("app", std::string(1024, 'x') + std::to_string(i)), 2);
    ASSERT_EQ(cache.Find("app", "hot", 2), hot) << "after " << i + 1 << " inserts";
    ASSERT_LE(cache.bytes(), kCap);
  }
  // The cold ones rotate through: the latest is there, the earliest long gone.
  EXPECT_NE(cache.Find("app", "t999", 2), nullptr);
  EXPECT_EQ(cache.Find("app", "t0", 2), nullptr);
}

TEST(ManifestCacheTest, EntriesOfAnOlderEpochAreDroppedOnInsert) {
  ManifestCache cache(1 << 20);
  for (int i = 0; i < 100; ++i) {
    cache.Insert("app", "t" + std::to_string(i), Record("app", std::to_string(i)), 2);
  }
  EXPECT_EQ(cache.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    cache.Insert("app", "u" + std::to_string(i), Record("app", std::to_string(i)), 4);
  }
  EXPECT_EQ(cache.size(), 100u);
}

TEST(ManifestCacheTest, ZeroCapDisablesIt) {
  ManifestCache cache(0);
  EXPECT_FALSE(cache.enabled());
  auto rec = Record("app", "{}");
  cache.Insert("app", "v1", rec, 2);
  EXPECT_EQ(cache.Find("app", "v1", 2), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

// With the SQLite store's epoch: what a write through the store does to entries.
class ManifestCacheStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("berth-manifest-cache-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    store_ = std::move(storage::OpenSqliteMetadataStore(dir_ / "meta.db")).value();
    ASSERT_TRUE(store_->CreateRepository({"app", 1}).ok());
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  ManifestRecord Manifest(const std::string& name) {
    ManifestRecord m = *Record("app", "{\"name\":\"" + name + "\"}");
    m.pushed_at_ms = 1;
    return m;
  }
  uint64_t Epoch() { return *store_->ReadEpoch(); }
  // What the registry does on a miss: the epoch, then the read, then the insert.
  std::shared_ptr<const ManifestRecord> ReadThrough(const std::string& tag) {
    uint64_t epoch = Epoch();
    auto got = store_->GetManifestByTag("app", tag);
    if (!got.ok()) return nullptr;
    auto rec = std::make_shared<const ManifestRecord>(std::move(got).value());
    cache_.Insert("app", tag, rec, epoch);
    return rec;
  }

  fs::path dir_;
  std::unique_ptr<storage::MetadataStore> store_;
  ManifestCache cache_{1 << 20};
};

TEST_F(ManifestCacheStoreTest, AWriteThroughTheStoreInvalidatesEntries) {
  ManifestRecord a = Manifest("a");
  ManifestRecord b = Manifest("b");
  ASSERT_TRUE(store_->PutManifest(a, "v1").ok());
  auto rec = ReadThrough("v1");
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(cache_.Find("app", "v1", Epoch()), rec);
  // Any write that may change manifests, even of another tag: a miss, then the new state.
  ASSERT_TRUE(store_->PutManifest(b, "v2").ok());
  EXPECT_EQ(cache_.Find("app", "v1", Epoch()), nullptr);
  ASSERT_NE(ReadThrough("v1"), nullptr);
  ASSERT_TRUE(store_->PutManifest(b, "v1").ok());
  EXPECT_EQ(cache_.Find("app", "v1", Epoch()), nullptr);
  EXPECT_EQ(ReadThrough("v1")->digest, b.digest);
  ASSERT_TRUE(store_->DeleteTag("app", "v1").ok());
  EXPECT_EQ(cache_.Find("app", "v1", Epoch()), nullptr);
  EXPECT_EQ(ReadThrough("v1"), nullptr);
}

TEST_F(ManifestCacheStoreTest, AReadThatRacedWithAWriteIsNeverServed) {
  ManifestRecord a = Manifest("a");
  ManifestRecord b = Manifest("b");
  ASSERT_TRUE(store_->PutManifest(a, "v1").ok());
  // The reader takes the epoch, a write moves the tag, the reader's lookup saw the old
  // state (it ran before the commit) and inserts it late.
  uint64_t epoch = Epoch();
  auto old_rec = std::make_shared<const ManifestRecord>(*store_->GetManifestByTag("app", "v1"));
  ASSERT_TRUE(store_->PutManifest(b, "v1").ok());
  cache_.Insert("app", "v1", old_rec, epoch);
  EXPECT_EQ(cache_.Find("app", "v1", Epoch()), nullptr);
  // The next miss caches the new manifest.
  EXPECT_EQ(ReadThrough("v1")->digest, b.digest);
  EXPECT_EQ(cache_.Find("app", "v1", Epoch())->digest, b.digest);
}

}  // namespace
}  // namespace berth::registry
