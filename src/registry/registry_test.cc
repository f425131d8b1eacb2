// The registry's rules over the real embedded backends (local files + SQLite).
#include "registry/registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "oci/media_types.h"
#include "storage/blob/fs/fs_blob_store.h"
#include "storage/meta/sqlite/sqlite_metadata_store.h"

namespace berth::registry {
namespace {

namespace fs = std::filesystem;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("berth-registry-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    blobs_ = std::move(storage::OpenFsBlobStore(dir_)).value();
    meta_ = std::move(storage::OpenSqliteMetadataStore(dir_ / "meta.db")).value();
    Reopen(true);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A fresh Registry over the same stores: what a restart (or another node) sees.
  void Reopen(bool create_on_push, size_t manifest_cache_bytes = Options().manifest_cache_bytes) {
    Options o;
    o.create_on_push = create_on_push;
    o.upload_expiry_ms = 1000;
    o.manifest_cache_bytes = manifest_cache_bytes;
    reg_ = std::make_unique<Registry>(*blobs_, *meta_, clock_, o);
  }

  // What a manifest GET does: the cache on the I/O thread, else the store on the pool.
  Result<std::shared_ptr<const storage::ManifestRecord>> Pull(const std::string& repo,
                                                               const oci::Reference& ref) {
    if (auto cached = reg_->CachedManifest(repo, ref)) return cached;
    return reg_->GetManifest(repo, ref);
  }

  oci::Digest PushBlob(const std::string& repo, const std::string& data) {
    auto up = reg_->StartUpload(repo);
    EXPECT_TRUE(up.ok()) << up.status().ToString();
    auto app = reg_->BeginAppend(repo, up->id, 0);
    EXPECT_TRUE(app.ok()) << app.status().ToString();
    EXPECT_TRUE((*app)->Write(data).ok());
    EXPECT_TRUE((*app)->Finish().ok());
    oci::Digest d = oci::Digest::Of(data);
    auto blob = reg_->CompleteUpload(repo, up->id, d);
    EXPECT_TRUE(blob.ok()) << blob.status().ToString();
    return d;
  }

  std::string ImageManifest(const oci::Digest& config, const oci::Digest& layer) {
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
           R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
           config.str() + R"(","size":2},"layers":[{"mediaType":)"
           R"("application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
           layer.str() + R"(","size":5}]})";
  }

  std::string Index(const oci::Digest& child, int64_t size) {
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
           R"("manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
           child.str() + R"(","size":)" + std::to_string(size) +
           R"(,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]})";
  }

  oci::Reference Tag(const std::string& t) { return *oci::ParseReference(t); }
  oci::Reference DigestRef(const std::string& manifest) {
    return oci::Reference{oci::Digest::Of(manifest)};
  }
  // An image manifest made distinct by an annotation.
  std::string Variant(const oci::Digest& config, const oci::Digest& layer, int i) {
    std::string m = ImageManifest(config, layer);
    m.insert(m.size() - 1, R"(,"annotations":{"variant":")" + std::to_string(i) + R"("})");
    return m;
  }

  fs::path dir_;
  ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<storage::BlobStore> blobs_;
  std::unique_ptr<storage::MetadataStore> meta_;
  std::unique_ptr<Registry> reg_;
};

TEST_F(RegistryTest, PushToMissingRepositoryIsNameUnknownWithoutCreateOnPush) {
  Reopen(false);
  auto up = reg_->StartUpload("team/app");
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.status().code(), Code::kNameUnknown);
  EXPECT_NE(up.status().message().find("team/app"), std::string::npos);
  auto cat = reg_->Catalog("", 10);
  ASSERT_TRUE(cat.ok());
  EXPECT_TRUE(cat->empty());
}

TEST_F(RegistryTest, ChunkedUploadVerifiesDigestAndIsVisibleOnlyInItsRepository) {
  auto up = reg_->StartUpload("a");
  ASSERT_TRUE(up.ok());
  {
    auto app = reg_->BeginAppend("a", up->id, 0);
    ASSERT_TRUE(app.ok());
    ASSERT_TRUE((*app)->Write(std::string_view("hello ")).ok());
    EXPECT_EQ(*(*app)->Finish(), 6u);
  }
  auto wrong = reg_->BeginAppend("a", up->id, 3);
  EXPECT_EQ(wrong.status().code(), Code::kRangeInvalid);
  {
    auto app = reg_->BeginAppend("a", up->id, 6);
    ASSERT_TRUE(app.ok());
    ASSERT_TRUE((*app)->Write(std::string_view("world")).ok());
    EXPECT_EQ(*(*app)->Finish(), 11u);
  }
  auto bad = reg_->CompleteUpload("a", up->id, oci::Digest::Of("something else"));
  EXPECT_EQ(bad.status().code(), Code::kDigestInvalid);
  EXPECT_EQ(reg_->StatBlob("a", oci::Digest::Of("something else")).status().code(),
            Code::kBlobUnknown);
  // The session survives a wrong digest.
  oci::Digest d = oci::Digest::Of("hello world");
  auto ok = reg_->CompleteUpload("a", up->id, d);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(reg_->StatBlob("a", d)->size, 11u);
  ASSERT_TRUE(reg_->StartUpload("b").ok());
  EXPECT_EQ(reg_->StatBlob("b", d).status().code(), Code::kBlobUnknown);
  EXPECT_EQ(reg_->GetUpload("a", up->id).status().code(), Code::kUploadUnknown);
}

TEST_F(RegistryTest, UploadResumesAfterRestartByRehashingReceivedBytes) {
  auto up = reg_->StartUpload("a");
  ASSERT_TRUE(up.ok());
  {
    auto app = reg_->BeginAppend("a", up->id, std::nullopt);
    ASSERT_TRUE((*app)->Write(std::string(100000, 'x')).ok());
    ASSERT_TRUE((*app)->Finish().ok());
  }
  Reopen(true);  // in-memory hash state is gone
  auto st = reg_->GetUpload("a", up->id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->offset, 100000u);
  {
    auto app = reg_->BeginAppend("a", up->id, 100000);
    ASSERT_TRUE(app.ok());
    ASSERT_TRUE((*app)->Write(std::string_view("tail")).ok());
    ASSERT_TRUE((*app)->Finish().ok());
  }
  std::string all = std::string(100000, 'x') + "tail";
  EXPECT_TRUE(reg_->CompleteUpload("a", up->id, oci::Digest::Of(all)).ok());
}

TEST_F(RegistryTest, Sha512DigestsAreVerified) {
  auto up = reg_->StartUpload("a");
  auto app = reg_->BeginAppend("a", up->id, 0);
  ASSERT_TRUE((*app)->Write(std::string_view("data")).ok());
  ASSERT_TRUE((*app)->Finish().ok());
  oci::Digest d = oci::Digest::Of("data", oci::DigestAlgorithm::kSha512);
  ASSERT_TRUE(reg_->CompleteUpload("a", up->id, d).ok());
  EXPECT_EQ(reg_->StatBlob("a", d)->size, 4u);
}

TEST_F(RegistryTest, MountLinksOnlyWhenTheSourceHoldsTheBlob) {
  oci::Digest d = PushBlob("src", "layer");
  EXPECT_EQ(reg_->Mount("dst", "missing", d).status().code(), Code::kNameUnknown);
  PushBlob("other", "unrelated");
  EXPECT_EQ(reg_->Mount("dst", "other", d).status().code(), Code::kBlobUnknown);
  EXPECT_EQ(reg_->StatBlob("dst", d).status().code(), Code::kBlobUnknown);
  ASSERT_TRUE(reg_->Mount("dst", "src", d).ok());
  EXPECT_TRUE(reg_->StatBlob("dst", d).ok());
}

TEST_F(RegistryTest, IndexChildrenMustBeInTheRepository) {
  oci::Digest cfg = PushBlob("a", "{}");
  oci::Digest layer = PushBlob("a", "layer");
  std::string image = ImageManifest(cfg, layer);
  auto put = reg_->PutManifest("a", Tag("arm64"), oci::kOciManifest, image);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  // Repository b has neither the child nor its blobs.
  ASSERT_TRUE(reg_->StartUpload("b").ok());
  auto list = reg_->PutManifest("b", Tag("multi"), oci::kOciIndex,
                                Index(put->digest, static_cast<int64_t>(image.size())));
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().code(), Code::kManifestBlobUnknown);
  EXPECT_EQ(list.status().detail(), put->digest.str());
  EXPECT_EQ(reg_->GetManifest("b", Tag("multi")).status().code(), Code::kManifestUnknown);
  // In repository a it is accepted, and the child cannot be deleted while listed.
  auto ok = reg_->PutManifest("a", Tag("multi"), oci::kOciIndex,
                              Index(put->digest, static_cast<int64_t>(image.size())));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  oci::Reference child{put->digest};
  EXPECT_EQ(reg_->DeleteManifest("a", child).code(), Code::kManifestReferenced);
  EXPECT_TRUE(reg_->GetManifest("a", child).ok());
  ASSERT_TRUE(reg_->DeleteManifest("a", oci::Reference{ok->digest}).ok());
  EXPECT_TRUE(reg_->DeleteManifest("a", child).ok());
  EXPECT_EQ(reg_->GetManifest("a", Tag("arm64")).status().code(), Code::kManifestUnknown);
}

TEST_F(RegistryTest, ManifestBlobsMustBeInTheRepository) {
  oci::Digest cfg = PushBlob("a", "{}");
  oci::Digest missing = oci::Digest::Of("never pushed");
  auto put = reg_->PutManifest("a", Tag("v1"), oci::kOciManifest, ImageManifest(cfg, missing));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kManifestBlobUnknown);
  EXPECT_EQ(put.status().detail(), missing.str());
}

TEST_F(RegistryTest, ManifestByDigestMustMatchContent) {
  oci::Digest cfg = PushBlob("a", "{}");
  oci::Digest layer = PushBlob("a", "layer");
  auto put = reg_->PutManifest("a", oci::Reference{oci::Digest::Of("x")}, oci::kOciManifest,
                               ImageManifest(cfg, layer));
  EXPECT_EQ(put.status().code(), Code::kDigestInvalid);
}

TEST_F(RegistryTest, ManifestOverTheLimitIsTooLarge) {
  std::string big(5 * 1024 * 1024, ' ');
  auto put = reg_->PutManifest("a", Tag("big"), oci::kOciManifest, big);
  EXPECT_EQ(put.status().code(), Code::kTooLarge);
}

TEST_F(RegistryTest, PullAfterATagMovedGetsTheNewManifest) {
  oci::Digest cfg = PushBlob("a", "{}");
  oci::Digest layer = PushBlob("a", "layer");
  std::string one = Variant(cfg, layer, 1);
  std::string two = Variant(cfg, layer, 2);
  ASSERT_TRUE(reg_->PutManifest("a", Tag("v1"), oci::kOciManifest, one).ok());
  EXPECT_EQ(reg_->CachedManifest("a", Tag("v1")), nullptr);
  ASSERT_EQ((*Pull("a", Tag("v1")))->bytes, one);
  // The pull filled the cache, by tag and by digest.
  auto cached = reg_->CachedManifest("a", Tag("v1"));
  ASSERT_NE(cached, nullptr);
  EXPECT_EQ(cached->bytes, one);
  EXPECT_EQ(reg_->CachedManifest("a", DigestRef(one)), cached);

  ASSERT_TRUE(reg_->PutManifest("a", Tag("v1"), oci::kOciManifest, two).ok());
  EXPECT_EQ(reg_->CachedManifest("a", Tag("v1")), nullptr);
  auto pulled = Pull("a", Tag("v1"));
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  EXPECT_EQ((*pulled)->digest, oci::Digest::Of(two));
  EXPECT_EQ((*pulled)->bytes, two);
  ASSERT_NE(reg_->CachedManifest("a", Tag("v1")), nullptr);
  EXPECT_EQ(reg_->CachedManifest("a", Tag("v1"))->bytes, two);
  // The old manifest is still there by digest.
  EXPECT_EQ((*Pull("a", DigestRef(one)))->bytes, one);
}

// Tag pages are cached like manifests: a page is served from memory until a push or a
// delete moves the epoch, and the next read sees the change.
TEST_F(RegistryTest, TagPagesFollowPushesAndDeletes) {
  oci::Digest cfg = PushBlob("a", "{}");
  oci::Digest layer = PushBlob("a", "layer");
  ASSERT_TRUE(reg_->PutManifest("a", Tag("v1"), oci::kOciManifest, Variant(cfg, layer, 1)).ok());
  EXPECT_EQ(reg_->CachedTags("a", "", 10), nullptr);
  auto page = reg_->ListTags("a", "", 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(**page, std::vector<std::string>{"v1"});
  ASSERT_NE(reg_->CachedTags("a", "", 10), nullptr);
  EXPECT_EQ(*reg_->CachedTags("a", "", 10), std::vector<std::string>{"v1"});
  // Another page (other `last` or `n`) is another entry.
  EXPECT_EQ(reg_->CachedTags("a", "", 11), nullptr);
  EXPECT_EQ(reg_->CachedTags("a", "v0", 10), nullptr);

  ASSERT_TRUE(reg_->PutManifest("a", Tag("v2"), oci::kOciManifest, Variant(cfg, layer, 2)).ok());
  EXPECT_EQ(reg_->CachedTags("a", "", 10), nullptr);
  EXPECT_EQ(**reg_->ListTags("a", "", 10), (std::vector<std::string>{"v1", "v2"}));

  ASSERT_TRUE(reg_->DeleteManifest("a", Tag("v1")).ok());
  EXPECT_EQ(reg_->CachedTags("a", "", 10), nullptr);
  EXPECT_EQ(**reg_->ListTags("a", "", 10), std::vector<std::string>{"v2"});
  // An error is not cached.
  EXPECT_FALSE(reg_->ListTags("nosuch", "", 10).ok());
  EXPECT_EQ(reg_->CachedTags("nosuch", "", 10), nullptr);
}

TEST_F(RegistryTest, PullAfterADeleteIsManifestUnknown) {
  oci::Digest cfg = PushBlob("a", "{}");
  oci::Digest layer = PushBlob("a", "layer");
  std::string one = Variant(cfg, layer, 1);
  std::string two = Variant(cfg, layer, 2);
  ASSERT_TRUE(reg_->PutManifest("a", Tag("v1"), oci::kOciManifest, one).ok());
  ASSERT_TRUE(reg_->PutManifest("a", Tag("v2"), oci::kOciManifest, two).ok());
  ASSERT_TRUE(Pull("a", Tag("v1")).ok());
  ASSERT_TRUE(Pull("a", DigestRef(one)).ok());
  ASSERT_TRUE(Pull("a", Tag("v2")).ok());
  ASSERT_NE(reg_->CachedManifest("a", DigestRef(one)), nullptr);

  // Deleting the manifest (by digest) takes its tag with it.
  ASSERT_TRUE(reg_->DeleteManifest("a", DigestRef(one)).ok());
  EXPECT_EQ(reg_->CachedManifest("a", DigestRef(one)), nullptr);
  EXPECT_EQ(reg_->CachedManifest("a", Tag("v1")), nullptr);
  EXPECT_EQ(Pull("a", DigestRef(one)).status().code(), Code::kManifestUnknown);
  EXPECT_EQ(Pull("a", Tag("v1")).status().code(), Code::kManifestUnknown);
  // Errors are not cached: a push makes it pullable at once.
  ASSERT_TRUE(reg_->PutManifest("a", Tag("v1"), oci::kOciManifest, one).ok());
  EXPECT_EQ((*Pull("a", Tag("v1")))->bytes, one);

  // Deleting a tag leaves the manifest.
  ASSERT_TRUE(Pull("a", Tag("v2")).ok());
  ASSERT_TRUE(reg_->DeleteManifest("a", Tag("v2")).ok());
  EXPECT_EQ(Pull("a", Tag("v2")).status().code(), Code::kManifestUnknown);
  EXPECT_EQ((*Pull("a", DigestRef(two)))->bytes, two);
}

TEST_F(RegistryTest, ManifestCacheCanBeTurnedOff) {
  Reopen(true, 0);
  oci::Digest cfg = PushBlob("a", "{}");
  std::string one = ImageManifest(cfg, PushBlob("a", "layer"));
  ASSERT_TRUE(reg_->PutManifest("a", Tag("v1"), oci::kOciManifest, one).ok());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ((*Pull("a", Tag("v1")))->bytes, one);
    EXPECT_EQ(reg_->CachedManifest("a", Tag("v1")), nullptr);
  }
}

TEST_F(RegistryTest, ConcurrentPullsNeverSeeATagOlderThanTheLastAcknowledgedPush) {
  constexpr int kVersions = 40;
  oci::Digest cfg = PushBlob("a", "{}");
  oci::Digest layer = PushBlob("a", "layer");
  std::vector<std::string> versions;
  std::map<oci::Digest, int> version_of;
  for (int i = 0; i < kVersions; ++i) {
    versions.push_back(Variant(cfg, layer, i));
    version_of[oci::Digest::Of(versions.back())] = i;
  }
  // Each PUT of `latest` is acknowledged (returns) before `acknowledged` moves on; a
  // pull that starts after that must get that version or a later one.
  std::atomic<int> acknowledged{-1};
  std::atomic<bool> done{false};
  std::atomic<int> stale{0}, errors{0}, cache_hits{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        int floor = acknowledged.load();
        if (reg_->CachedManifest("a", Tag("latest")) != nullptr) ++cache_hits;
        auto got = Pull("a", Tag("latest"));
        if (floor < 0) continue;
        if (!got.ok()) {
          ++errors;
        } else if (version_of.at((*got)->digest) < floor) {
          ++stale;
        }
      }
    });
  }
  for (int i = 0; i < kVersions; ++i) {
    auto put = reg_->PutManifest("a", Tag("latest"), oci::kOciManifest, versions[i]);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    if (!put.ok()) break;
    acknowledged = i;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(stale.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(cache_hits.load(), 0) << "the cache was never used";
}

TEST_F(RegistryTest, StaleUploadsAreSweptWithTheirBytes) {
  auto up = reg_->StartUpload("a");
  ASSERT_TRUE(up.ok());
  EXPECT_TRUE(fs::exists(dir_ / "uploads" / up->id));
  EXPECT_EQ(*reg_->SweepStaleUploads(), 0u);
  clock_.Advance(5000);
  EXPECT_EQ(*reg_->SweepStaleUploads(), 1u);
  EXPECT_FALSE(fs::exists(dir_ / "uploads" / up->id));
  EXPECT_EQ(reg_->GetUpload("a", up->id).status().code(), Code::kUploadUnknown);
}

TEST_F(RegistryTest, UploadIdsOfAnotherRepositoryAreUnknown) {
  auto up = reg_->StartUpload("a");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(reg_->GetUpload("b", up->id).status().code(), Code::kUploadUnknown);
  EXPECT_EQ(reg_->GetUpload("a", "../../etc/passwd").status().code(), Code::kUploadUnknown);
}

}  // namespace
}  // namespace berth::registry
