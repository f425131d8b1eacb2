// Migrate between two embedded registries (files + SQLite): the copy is backend-neutral,
// so this proves what moves, resuming, and verification. tests/integration/
// test_migrate.py moves a registry to S3 + PostgreSQL and back with real clients.
#include "cli/migrate.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "auth/crypto.h"
#include "auth/identity_store.h"
#include "storage/blob/fs/fs_blob_store.h"
#include "storage/keys.h"
#include "storage/meta/sqlite/sqlite_metadata_store.h"

namespace berth::cli {
namespace {

namespace fs = std::filesystem;
using storage::BlobRecord;
using storage::ManifestRecord;
using storage::RepositoryRecord;

constexpr int64_t kT0 = 1700000000000;

// One embedded registry in a directory of its own.
struct Side {
  explicit Side(const fs::path& dir) : dir(dir), docs(dir.string()) {
    fs::create_directories(dir);
    auto b = storage::OpenFsBlobStore(dir, {.direct_io = false});
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    blobs = std::move(*b);
    auto m = storage::OpenSqliteMetadataStore(dir / "meta.db");
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    meta = std::move(*m);
  }
  MigrationEnd End() { return {blobs.get(), meta.get(), &docs, dir.string()}; }

  // Stores `content` as a blob and links it into `repo`.
  oci::Digest AddBlob(const std::string& repo, const std::string& content) {
    oci::Digest d = oci::Digest::Of(content);
    std::string id = storage::NewUploadId();
    auto cursor = blobs->CreateUpload(id);
    EXPECT_TRUE(cursor.ok());
    auto writer = blobs->AppendUpload(id, *cursor);
    EXPECT_TRUE(writer.ok());
    EXPECT_TRUE((*writer)->Write(content).ok());
    auto closed = (*writer)->Close();
    EXPECT_TRUE(closed.ok());
    EXPECT_TRUE(blobs->CommitUpload(id, *closed, d).ok());
    EXPECT_TRUE(meta->CommitBlob(repo, {d, content.size(), kT0 + 5}, "").ok());
    return d;
  }

  std::string ReadBlob(const oci::Digest& d) {
    auto reader = blobs->Open(d);
    if (!reader.ok()) return "<" + reader.status().ToString() + ">";
    std::string out((*reader)->size(), '\0');
    auto n = (*reader)->ReadAt(0, std::span<char>(out.data(), out.size()));
    EXPECT_TRUE(n.ok());
    return out;
  }

  fs::path dir;
  DataDirDocuments docs;
  std::unique_ptr<storage::BlobStore> blobs;
  std::unique_ptr<storage::MetadataStore> meta;
};

ManifestRecord Manifest(const std::string& repo, const std::string& bytes,
                        std::vector<oci::Digest> blob_refs, std::vector<oci::Digest> child_refs,
                        int64_t pushed_at) {
  ManifestRecord m;
  m.repository = repo;
  m.bytes = bytes;
  m.size = static_cast<int64_t>(bytes.size());
  m.digest = oci::Digest::Of(bytes);
  m.media_type = child_refs.empty() ? "application/vnd.oci.image.manifest.v1+json"
                                    : "application/vnd.oci.image.index.v1+json";
  m.pushed_at_ms = pushed_at;
  m.annotations_json = "{}";
  m.blob_refs = std::move(blob_refs);
  m.child_refs = std::move(child_refs);
  m.image_size = 1234;
  return m;
}

class MigrateTest : public ::testing::Test {
 protected:
  MigrateTest()
      : root_(fs::temp_directory_path() /
              ("berth-migrate-test-" + auth::HexEncode(auth::RandomBytes(8)))),
        src_(root_ / "src"),
        dst_(root_ / "dst") {}
  ~MigrateTest() override { fs::remove_all(root_); }

  // A registry with something of everything: attributes, a policy, resource tags, blobs
  // shared between repositories, images, an index over two of them, a referrer, tags,
  // pull times, identities and a token key.
  void Populate() {
    RepositoryRecord app("team/app", kT0);
    app.account_id = "123456789012";
    app.tag_mutability = {storage::TagMutability::kImmutableWithExclusion, {"dev-*"}};
    app.scan_on_push = true;
    app.encryption_type = "KMS";
    app.kms_key = "arn:aws:kms:us-east-1:123456789012:key/k";
    app.tags = {{"env", "prod"}, {"team", "a"}};
    app.policy = R"({"Version":"2012-10-17","Statement":[]})";
    ASSERT_TRUE(src_.meta->CreateRepository(app).ok());
    ASSERT_TRUE(src_.meta->CreateRepository({"empty", kT0 + 1}).ok());
    ASSERT_TRUE(src_.meta->CreateRepository({"other", kT0 + 2}).ok());

    config_ = src_.AddBlob("team/app", "config");
    std::string big(3 << 20, 'x');  // several copy chunks
    for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + i % 26);
    layer_ = src_.AddBlob("team/app", big);
    arm_layer_ = src_.AddBlob("team/app", "arm layer");
    ASSERT_TRUE(src_.meta->LinkBlob("other", layer_).ok());  // mounted
    loose_ = src_.AddBlob("team/app", "pushed, no manifest yet");

    amd_ = Manifest("team/app", R"({"amd64":1})", {config_, layer_}, {}, kT0 + 10);
    arm_ = Manifest("team/app", R"({"arm64":1})", {config_, arm_layer_}, {}, kT0 + 11);
    index_ = Manifest("team/app", R"({"index":1})", {}, {amd_.digest, arm_.digest}, kT0 + 12);
    sig_ = Manifest("team/app", R"({"signature":1})", {config_}, {}, kT0 + 13);
    sig_.subject = index_.digest;
    sig_.artifact_type = "application/vnd.example.signature";
    ASSERT_TRUE(src_.meta->PutManifest(amd_, "amd").ok());
    ASSERT_TRUE(src_.meta->PutManifest(arm_, "").ok());
    ASSERT_TRUE(src_.meta->PutManifest(index_, "1.0").ok());
    ASSERT_TRUE(src_.meta->PutManifest(index_, "latest").ok());
    ASSERT_TRUE(src_.meta->PutManifest(sig_, "").ok());
    other_ = Manifest("other", R"({"other":1})", {layer_}, {}, kT0 + 14);
    ASSERT_TRUE(src_.meta->PutManifest(other_, "v1").ok());
    ASSERT_TRUE(src_.meta->RecordPulls({{"team/app", index_.digest, kT0 + 100},
                                        {"other", other_.digest, kT0 + 200}})
                    .ok());

    auto ids = auth::OpenFileIdentityStore(src_.dir / auth::kIdentitiesFileName);
    ASSERT_TRUE(ids.ok());
    auth::NewIdentity spec;
    spec.account_id = "123456789012";
    spec.user_name = "ci";
    spec.policy_documents = {std::string(auth::kAdministratorPolicy)};
    auto made = (*ids)->Create(spec);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    key_id_ = made->access_key_id;
    ASSERT_TRUE(src_.docs.Swap(auth::kSharedTokenKeyName, std::nullopt, std::string(64, 'a')).ok());
  }

  Result<MigrateReport> Run(MigrateOptions options = {}) {
    MigrationEnd from = src_.End(), to = dst_.End();
    return Migrate(from, to, options);
  }

  fs::path root_;
  Side src_, dst_;
  oci::Digest config_, layer_, arm_layer_, loose_;
  ManifestRecord amd_, arm_, index_, sig_, other_;
  std::string key_id_;
};

TEST_F(MigrateTest, EverythingMovesAndIsVerified) {
  Populate();
  auto report = Run();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->repositories, 3u);
  EXPECT_EQ(report->repositories_created, 3u);
  EXPECT_EQ(report->blobs_copied, 4u);  // one copy of each digest
  EXPECT_EQ(report->blobs_linked, 1u);  // the mount into "other"
  EXPECT_EQ(report->manifests_copied, 5u);
  EXPECT_EQ(report->tags_set, 4u);
  EXPECT_EQ(report->pulls_recorded, 2u);
  EXPECT_EQ(report->identities_added, 1u);
  EXPECT_TRUE(report->token_key_copied);
  EXPECT_EQ(report->blobs_verified, 4u);
  EXPECT_EQ(report->manifests_verified, 5u);
  EXPECT_EQ(report->tags_verified, 4u);

  // Attributes, byte for byte.
  auto app = dst_.meta->GetRepository("team/app");
  ASSERT_TRUE(app.ok());
  auto want = src_.meta->GetRepository("team/app");
  EXPECT_EQ(app->created_at_ms, kT0);
  EXPECT_EQ(app->account_id, "123456789012");
  EXPECT_TRUE(app->tag_mutability == want->tag_mutability);
  EXPECT_TRUE(app->scan_on_push);
  EXPECT_EQ(app->kms_key, want->kms_key);
  EXPECT_EQ(app->tags, want->tags);
  EXPECT_EQ(app->policy, want->policy);
  EXPECT_TRUE(dst_.meta->GetRepository("empty").ok());

  EXPECT_EQ(dst_.ReadBlob(layer_), src_.ReadBlob(layer_));
  EXPECT_TRUE(dst_.meta->GetLinkedBlob("team/app", loose_).ok());  // linked, no manifest
  EXPECT_TRUE(dst_.meta->GetLinkedBlob("other", layer_).ok());
  EXPECT_EQ(dst_.meta->GetLinkedBlob("other", config_).status().code(), Code::kBlobUnknown);

  auto index = dst_.meta->GetManifestByTag("team/app", "latest");
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->bytes, index_.bytes);
  EXPECT_EQ(index->pushed_at_ms, kT0 + 12);
  EXPECT_EQ(index->child_refs, index_.child_refs);
  auto refs = dst_.meta->ListReferrers("team/app", index_.digest, "", "", 10);
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_EQ((*refs)[0].artifact_type, "application/vnd.example.signature");
  auto pulled = dst_.meta->GetImage("other", other_.digest);
  ASSERT_TRUE(pulled.ok());
  EXPECT_EQ(pulled->last_pulled_at_ms, kT0 + 200);
  auto untagged = dst_.meta->GetImage("team/app", arm_.digest);
  ASSERT_TRUE(untagged.ok());
  EXPECT_TRUE(untagged->tags.empty());

  // The access key and the token key work at the destination.
  auto ids = auth::OpenFileIdentityStore(dst_.dir / auth::kIdentitiesFileName);
  ASSERT_TRUE(ids.ok());
  auto found = (*ids)->Lookup(key_id_);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ((*found)->user_name, "ci");
  auto key = dst_.docs.Get(auth::kSharedTokenKeyName);
  ASSERT_TRUE(key.ok() && key->has_value());
  EXPECT_EQ(**key, std::string(64, 'a') + "\n");

  // A second run finds everything there and copies nothing.
  auto again = Run();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->repositories_created, 0u);
  EXPECT_EQ(again->blobs_copied, 0u);
  EXPECT_EQ(again->blobs_present, 5u);
  EXPECT_EQ(again->manifests_copied, 0u);
  EXPECT_EQ(again->manifests_present, 5u);
  EXPECT_EQ(again->tags_set, 0u);
  EXPECT_EQ(again->identities_added + again->identities_replaced, 0u);
  EXPECT_FALSE(again->token_key_copied);
}

TEST_F(MigrateTest, AnInterruptedRunResumesWithoutCopyingAnyBlobTwice) {
  Populate();
  int copies = 0;
  MigrateOptions stop;
  stop.before_blob_copy = [&](const oci::Digest&) -> Status {
    if (++copies > 2) return Status::Unavailable("interrupted for the test");
    return Status::Ok();
  };
  auto first = Run(stop);
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.status().message().find("interrupted for the test"), std::string::npos);

  std::vector<oci::Digest> copied;
  MigrateOptions count;
  count.before_blob_copy = [&](const oci::Digest& d) {
    copied.push_back(d);
    return Status::Ok();
  };
  auto second = Run(count);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->blobs_copied, 2u);  // the 4 distinct blobs, less the 2 already copied
  EXPECT_EQ(copied.size(), 2u);
  // Every one of the 5 links is there in the end, each made once.
  EXPECT_EQ(second->blobs_present + second->blobs_linked + second->blobs_copied, 5u);
  EXPECT_GE(second->blobs_present, 2u);
  EXPECT_EQ(second->blobs_verified, 4u);
  EXPECT_EQ(second->manifests_verified, 5u);
}

TEST_F(MigrateTest, NewPushesToTheSourceAreCopiedByTheNextRun) {
  Populate();
  ASSERT_TRUE(Run().ok());
  oci::Digest fresh = src_.AddBlob("other", "pushed after the first run");
  ManifestRecord v2 = Manifest("other", R"({"other":2})", {fresh}, {}, kT0 + 50);
  ASSERT_TRUE(src_.meta->PutManifest(v2, "v1").ok());  // the tag moves
  ASSERT_TRUE(src_.meta->SetRepositoryPolicy("other", R"({"Statement":[]})").ok());
  auto again = Run();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->blobs_copied, 1u);
  EXPECT_EQ(again->manifests_copied, 1u);
  EXPECT_EQ(again->tags_set, 1u);
  auto moved = dst_.meta->GetManifestByTag("other", "v1");
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->digest, v2.digest);
  EXPECT_EQ(dst_.meta->GetRepository("other")->policy, R"({"Statement":[]})");
}

TEST_F(MigrateTest, ANextRunRestoresBytesMissingAtTheDestination) {
  Populate();
  ASSERT_TRUE(Run().ok());
  // Bytes lost behind the migration's back (a bucket lifecycle rule, a bad disk).
  ASSERT_TRUE(dst_.blobs->Delete(layer_).ok());
  auto again = Run();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->blobs_copied, 1u);
  EXPECT_EQ(dst_.ReadBlob(layer_), src_.ReadBlob(layer_));
}

TEST_F(MigrateTest, VerificationFindsBytesThatDoNotMatchTheirDigest) {
  Populate();
  ASSERT_TRUE(Run().ok());
  // Same size, other bytes: only re-hashing can tell.
  fs::path file = dst_.dir / storage::BlobKey(config_);
  fs::permissions(file, fs::perms::owner_write, fs::perm_options::add);
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << "CONFIG";
  }
  auto report = Run();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kCorruption);
  EXPECT_NE(report.status().message().find(config_.str()), std::string::npos)
      << report.status().message();
  EXPECT_NE(report.status().message().find("digest is"), std::string::npos)
      << report.status().message();
}

TEST_F(MigrateTest, DestinationIdentitiesAreKeptAndMerged) {
  Populate();
  auto dst_ids = auth::OpenFileIdentityStore(dst_.dir / auth::kIdentitiesFileName);
  ASSERT_TRUE(dst_ids.ok());
  auth::NewIdentity spec;
  spec.account_id = "123456789012";
  spec.user_name = "already-there";
  auto there = (*dst_ids)->Create(spec);
  ASSERT_TRUE(there.ok());
  auto report = Run();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->identities_added, 1u);
  auto merged = auth::OpenFileIdentityStore(dst_.dir / auth::kIdentitiesFileName);
  ASSERT_TRUE(merged.ok());
  EXPECT_TRUE((*merged)->Lookup(there->access_key_id).ok());
  EXPECT_TRUE((*merged)->Lookup(key_id_).ok());
}

TEST_F(MigrateTest, ARepositoryThatDiffersAtTheDestinationStopsWithItsName) {
  Populate();
  ASSERT_TRUE(dst_.meta->CreateRepository({"team/app", kT0 + 999}).ok());
  auto report = Run();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(report.status().message().find("team/app"), std::string::npos);
  EXPECT_NE(report.status().message().find("creation time"), std::string::npos);
}

}  // namespace
}  // namespace berth::cli
