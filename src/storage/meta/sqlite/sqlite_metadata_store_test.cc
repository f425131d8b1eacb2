#include "storage/meta/sqlite/sqlite_metadata_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "oci/digest.h"
#include "storage/keys.h"
#include "storage/meta/metadata_store_conformance.h"

namespace berth::storage {
namespace {

const RemoveTagOptions kUntagDeletesImage{.delete_untagged_manifest = true};

Status AdvanceTo(MetadataStore& s, std::string_view id, uint64_t offset, int64_t now) {
  BERTH_ASSIGN_OR_RETURN(UploadRecord u, s.LeaseUpload(id, "advance-to", now, 60'000));
  UploadProgress p;
  p.offset = offset;
  p.updated_at_ms = now;
  return s.AdvanceUpload(id, "advance-to", u.offset, p);
}

namespace fs = std::filesystem;
using testing::MetadataStoreBackend;
using testing::MetadataStoreBackendName;
using testing::MetadataStoreConformance;

INSTANTIATE_TEST_SUITE_P(Sqlite, MetadataStoreConformance,
                         ::testing::Values(MetadataStoreBackend{
                             "sqlite",
                             [](const fs::path& scratch) {
                               return OpenSqliteMetadataStore(scratch / "meta" / "berth.db");
                             }}),
                         MetadataStoreBackendName);

constexpr int64_t kT0 = 1'700'000'000'000;

// A raw SQLite connection to inspect the file behind the store's back.
class RawDb {
 public:
  explicit RawDb(const fs::path& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  // First column of the first row, as text ("" when none).
  std::string Query(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }
  int Exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteMetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth-sqlite-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "berth.db";
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Reopen(SqliteOptions options = {}) {
    store_.reset();
    auto store = OpenSqliteMetadataStore(path_, options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  // Pushes an image with one layer; returns its manifest.
  ManifestRecord Push(std::string_view repo, std::string_view name, std::string_view tag) {
    oci::Digest layer = oci::Digest::Of(std::string("layer ") + std::string(name));
    EXPECT_TRUE(store_->CommitBlob(repo, {layer, 10, kT0}, "").ok());
    ManifestRecord m;
    m.repository = std::string(repo);
    m.bytes = "{\"name\":\"" + std::string(name) + "\"}";
    m.digest = oci::Digest::Of(m.bytes);
    m.size = static_cast<int64_t>(m.bytes.size());
    m.media_type = "application/vnd.oci.image.manifest.v1+json";
    m.pushed_at_ms = kT0;
    m.annotations_json = "{}";
    m.blob_refs = {layer};
    Status st = store_->PutManifest(m, tag).status();
    EXPECT_TRUE(st.ok()) << st.ToString();
    return m;
  }

  fs::path dir_;
  fs::path path_;
  std::unique_ptr<MetadataStore> store_;
};

TEST_F(SqliteMetadataStoreTest, DataSurvivesCloseAndReopen) {
  ASSERT_TRUE(store_->CreateRepository({"app", kT0}).ok());
  ManifestRecord m = Push("app", "one", "latest");
  std::string upload = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload({upload, "app", 123, kT0, kT0 + 1}).ok());

  Reopen();
  auto repo = store_->GetRepository("app");
  ASSERT_TRUE(repo.ok());
  EXPECT_EQ(repo->created_at_ms, kT0);
  auto got = store_->GetManifestByTag("app", "latest");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->digest, m.digest);
  EXPECT_EQ(got->bytes, m.bytes);
  EXPECT_EQ(got->blob_refs, m.blob_refs);
  EXPECT_TRUE(store_->GetLinkedBlob("app", m.blob_refs[0]).ok());
  auto u = store_->GetUpload(upload);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->offset, 123u);
  // And it keeps working after the reopen.
  Push("app", "two", "latest");
  EXPECT_NE(store_->GetManifestByTag("app", "latest")->digest, m.digest);
}

TEST_F(SqliteMetadataStoreTest, MigrationsAreRecordedAndIdempotent) {
  ASSERT_TRUE(store_->CreateRepository({"app", kT0}).ok());
  Reopen();
  Reopen();
  store_.reset();
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT count(*) FROM schema_migrations"),
            raw.Query("SELECT count(DISTINCT version) FROM schema_migrations"));
  EXPECT_EQ(raw.Query("SELECT min(version) FROM schema_migrations"), "1");
  EXPECT_EQ(raw.Query("SELECT count(*) FROM repositories"), "1");
  for (const char* table : {"repositories", "blobs", "repo_blobs", "manifests", "manifest_blobs",
                            "manifest_children", "tags", "uploads"}) {
    EXPECT_EQ(raw.Query(std::string("SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                                    "AND name = '") +
                        table + "'"),
              "1")
        << table;
  }
}

TEST_F(SqliteMetadataStoreTest, DatabaseFromANewerBinaryIsRefused) {
  store_.reset();
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("INSERT INTO schema_migrations(version, applied_at) VALUES(9999, 0)"),
              SQLITE_OK);
  }
  auto store = OpenSqliteMetadataStore(path_);
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition) << store.status().ToString();
}

TEST_F(SqliteMetadataStoreTest, UsesWalAndForeignKeys) {
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Query("PRAGMA foreign_key_check"), "");  // no violations
}

TEST_F(SqliteMetadataStoreTest, NotADatabaseIsCorruption) {
  store_.reset();
  fs::path bogus = dir_ / "bogus.db";
  {
    std::ofstream out(bogus, std::ios::binary);
    out << std::string(8192, 'x');
  }
  auto store = OpenSqliteMetadataStore(bogus);
  EXPECT_EQ(store.status().code(), Code::kCorruption) << store.status().ToString();
}

TEST_F(SqliteMetadataStoreTest, UnwritableLocationIsIoError) {
  store_.reset();
  fs::path file = dir_ / "a-file";
  { std::ofstream out(file); }
  auto store = OpenSqliteMetadataStore(file / "sub" / "berth.db");
  EXPECT_FALSE(store.ok());
}

TEST_F(SqliteMetadataStoreTest, WritersWaitForAnotherProcessesLock) {
  ASSERT_TRUE(store_->CreateRepository({"app", kT0}).ok());
  RawDb raw(path_);
  ASSERT_EQ(raw.Exec("BEGIN IMMEDIATE"), SQLITE_OK);
  std::atomic<bool> done{false};
  Status st;
  std::thread writer([&] {
    st = store_->CreateRepository({"waited", kT0});
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(done.load());  // blocked on the lock, not failed
  // Reads are not blocked by a writer (WAL).
  EXPECT_TRUE(store_->GetRepository("app").ok());
  ASSERT_EQ(raw.Exec("COMMIT"), SQLITE_OK);
  writer.join();
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(store_->GetRepository("waited").ok());
}

// Checkpoints run off the commit path, and under a steady stream of commits the WAL
// still starts over instead of growing without bound (here: 16-frame checkpoints, so
// the writer steps in at 128 frames; ~1,000 commits would otherwise leave 1,000+).
TEST_F(SqliteMetadataStoreTest, WalStaysBoundedUnderSteadyWrites) {
  Reopen({.checkpoint_frames = 16});
  fs::path wal = path_.string() + "-wal";
  uintmax_t largest = 0;
  constexpr int kRepos = 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kRepos; i += 4) {
        EXPECT_TRUE(store_->CreateRepository({"r" + std::to_string(i), kT0}).ok());
      }
    });
  }
  while (true) {
    std::error_code ec;
    largest = std::max(largest, fs::file_size(wal, ec));
    auto repos = store_->ListRepositories("", kRepos + 1);
    if (repos.ok() && repos->size() == kRepos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& th : threads) th.join();
  // 128 frames of 4 KiB pages (+24-byte frame headers), plus slack for commits that
  // land while a reader holds an old snapshot. SQLite's default would reach 1,000.
  EXPECT_LT(largest, 400u * (4096 + 24));
  Reopen();
  auto repos = store_->ListRepositories("", kRepos + 1);
  ASSERT_TRUE(repos.ok());
  EXPECT_EQ(repos->size(), static_cast<size_t>(kRepos));
}

TEST_F(SqliteMetadataStoreTest, FailedWriteInABatchDoesNotUndoTheOthers) {
  // Many concurrent writers end up in shared commits; the failing ones must roll back
  // alone.
  ASSERT_TRUE(store_->CreateRepository({"app", kT0}).ok());
  constexpr int kThreads = 16;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        std::string name = "r" + std::to_string(t) + "-" + std::to_string(i);
        if (!store_->CreateRepository({name, kT0}).ok()) ++wrong;
        // Always fails: already exists.
        if (store_->CreateRepository({name, kT0}).code() != Code::kAlreadyExists) ++wrong;
        // Always fails: the repository is missing.
        if (store_->CreateUpload({NewUploadId(), "missing-" + name, 0, kT0, kT0}).code() !=
            Code::kNameUnknown) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  auto repos = store_->ListRepositories("", 1000);
  ASSERT_TRUE(repos.ok());
  EXPECT_EQ(repos->size(), static_cast<size_t>(kThreads * 20 + 1));
  EXPECT_TRUE(store_->ListStaleUploads(kT0 + 1, 10)->empty());
}

TEST_F(SqliteMetadataStoreTest, MigrationTwoKeepsVersionOneDataAndBackfillsImageSizes) {
  // A database as version 1 left it: build one, then undo migration 2.
  store_.reset();
  std::string image = oci::Digest::Of("image").str();
  std::string index = oci::Digest::Of("index").str();
  std::string odd = oci::Digest::Of("odd").str();
  {
    RawDb raw(path_);
    for (const char* sql : {
             // Undo migration 3 first (it builds on 2).
             "ALTER TABLE uploads DROP COLUMN hash_state",
             "ALTER TABLE uploads DROP COLUMN blob_state",
             "ALTER TABLE uploads DROP COLUMN lease_token",
             "ALTER TABLE uploads DROP COLUMN lease_expires_at",
             "DROP TABLE settings",
             "DROP TABLE leases",
             "DELETE FROM schema_migrations WHERE version = 3",
             "DROP INDEX repositories_by_account",
             "DROP TABLE repository_tags",
             "ALTER TABLE repositories DROP COLUMN account_id",
             "ALTER TABLE repositories DROP COLUMN tag_mutability",
             "ALTER TABLE repositories DROP COLUMN tag_mutability_exclusions",
             "ALTER TABLE repositories DROP COLUMN scan_on_push",
             "ALTER TABLE repositories DROP COLUMN encryption_type",
             "ALTER TABLE repositories DROP COLUMN kms_key",
             "ALTER TABLE repositories DROP COLUMN policy",
             "ALTER TABLE manifests DROP COLUMN image_size",
             "ALTER TABLE manifests DROP COLUMN last_pulled_at",
             "DELETE FROM schema_migrations WHERE version = 2",
             "INSERT INTO repositories(name, created_at) VALUES('app', 7)",
         }) {
      ASSERT_EQ(raw.Exec(sql), SQLITE_OK) << sql;
    }
    auto insert = [&](const std::string& digest, const std::string& media_type,
                      const std::string& bytes) {
      std::string sql =
          "INSERT INTO manifests(repo_id, digest, media_type, bytes, size, pushed_at) "
          "VALUES(1, '" +
          digest + "', '" + media_type + "', CAST('" + bytes + "' AS BLOB), " +
          std::to_string(bytes.size()) + ", 1)";
      ASSERT_EQ(raw.Exec(sql), SQLITE_OK) << sql;
    };
    insert(image, "application/vnd.oci.image.manifest.v1+json",
           R"({"config":{"size":9},"layers":[{"size":100},{"size":23}]})");
    insert(index, "application/vnd.oci.image.index.v1+json", R"({"manifests":[]})");
    insert(odd, "application/vnd.oci.image.manifest.v1+json", "not json");
    ASSERT_EQ(raw.Exec("INSERT INTO manifest_children(repo_id, index_digest, child_digest) "
                       "VALUES(1, '" +
                       index + "', '" + image + "')"),
              SQLITE_OK);
  }
  Reopen();
  EXPECT_TRUE(store_->Check().ok());
  auto repo = store_->GetRepository("app");
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  EXPECT_EQ(repo->created_at_ms, 7);
  EXPECT_EQ(repo->account_id, "");
  EXPECT_EQ(repo->tag_mutability.mode, TagMutability::kMutable);
  EXPECT_EQ(repo->encryption_type, "AES256");
  auto size = [&](const std::string& d) {
    return store_->GetImage("app", *oci::Digest::Parse(d))->manifest.image_size;
  };
  EXPECT_EQ(size(image), 123);  // the layers, not the config
  EXPECT_EQ(size(index), 123);  // its largest child
  EXPECT_EQ(size(odd), 0);
  EXPECT_EQ(store_->GetImage("app", *oci::Digest::Parse(image))->last_pulled_at_ms, 0);
}

TEST_F(SqliteMetadataStoreTest, ReadEpochIgnoresReadsUploadSessionsBlobLinksAndPulls) {
  // What a blob push or a pull writes changes no manifest, tag or repository: it must
  // not invalidate the manifest cache (pushes of layers would otherwise keep it cold).
  ASSERT_TRUE(store_->CreateRepository({"app", kT0}).ok());
  ManifestRecord m = Push("app", "one", "latest");
  ASSERT_TRUE(store_->ReadEpoch().has_value());
  const uint64_t epoch = *store_->ReadEpoch();
  EXPECT_EQ(epoch % 2, 0u);

  EXPECT_TRUE(store_->GetRepository("app").ok());
  EXPECT_TRUE(store_->GetManifest("app", m.digest).ok());
  EXPECT_TRUE(store_->GetManifestByTag("app", "latest").ok());
  EXPECT_TRUE(store_->ListTags("app", "", 10).ok());
  EXPECT_TRUE(store_->GetImage("app", m.digest).ok());
  EXPECT_TRUE(store_->ListImages("app", TagFilter::kAny, "", 10).ok());
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload({id, "app", 0, kT0, kT0}).ok());
  ASSERT_TRUE(AdvanceTo(*store_, id, 5, kT0 + 1).ok());
  EXPECT_TRUE(store_->GetUpload(id).ok());
  ASSERT_TRUE(store_->DeleteUpload(id).ok());
  std::string committed = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload({committed, "app", 0, kT0, kT0}).ok());
  oci::Digest blob = oci::Digest::Of(std::string("a new layer"));
  ASSERT_TRUE(store_->CommitBlob("app", {blob, 11, kT0}, committed).ok());
  ASSERT_TRUE(store_->CreateRepository({"other", kT0}).ok());
  const uint64_t after_create = *store_->ReadEpoch();
  ASSERT_TRUE(store_->LinkBlob("other", blob).ok());
  ASSERT_TRUE(store_->UnlinkBlob("other", blob).ok());
  ASSERT_TRUE(store_->RecordPulls({{"app", m.digest, kT0 + 5}}).ok());
  EXPECT_NE(after_create, epoch);
  EXPECT_EQ(*store_->ReadEpoch(), after_create);
  // Failed writes of those kinds neither.
  EXPECT_FALSE(AdvanceTo(*store_, id, 1, kT0).ok());
  EXPECT_EQ(*store_->ReadEpoch(), after_create);
}

TEST_F(SqliteMetadataStoreTest, ReadEpochIsOddWhileAWriteIsInProgress) {
  ASSERT_TRUE(store_->CreateRepository({"app", kT0}).ok());
  Push("app", "one", "latest");
  const uint64_t before = *store_->ReadEpoch();
  // Another connection holds the write lock: the store's next write waits in BEGIN
  // IMMEDIATE, and must already show as in progress.
  RawDb raw(path_);
  ASSERT_EQ(raw.Exec("BEGIN IMMEDIATE"), SQLITE_OK);
  Status st;
  std::thread writer([&] { st = store_->DeleteTag("app", "latest"); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (*store_->ReadEpoch() == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(*store_->ReadEpoch(), before + 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(*store_->ReadEpoch(), before + 1) << "the write cannot have ended";
  EXPECT_TRUE(store_->GetManifestByTag("app", "latest").ok()) << "not committed yet";
  ASSERT_EQ(raw.Exec("COMMIT"), SQLITE_OK);
  writer.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  // Even again, and new, by the time the writer returns.
  EXPECT_EQ(*store_->ReadEpoch(), before + 2);

  // An upload write waiting the same way does not touch it.
  ASSERT_EQ(raw.Exec("BEGIN IMMEDIATE"), SQLITE_OK);
  std::thread uploader([&] { st = store_->CreateUpload({NewUploadId(), "app", 0, kT0, kT0}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(*store_->ReadEpoch(), before + 2);
  ASSERT_EQ(raw.Exec("COMMIT"), SQLITE_OK);
  uploader.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(*store_->ReadEpoch(), before + 2);
}

TEST_F(SqliteMetadataStoreTest, PullReadsSkipReferences) {
  // A pull serves the bytes only: the references (a lookup in another table each) are
  // not read, while the full reads still return them.
  ASSERT_TRUE(store_->CreateRepository({"app", kT0}).ok());
  ManifestRecord m = Push("app", "one", "v1");
  for (auto got : {store_->GetManifestForPull("app", m.digest),
                   store_->GetManifestByTagForPull("app", "v1")}) {
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->bytes, m.bytes);
    EXPECT_TRUE(got->blob_refs.empty());
    EXPECT_TRUE(got->child_refs.empty());
  }
  EXPECT_EQ(store_->GetManifestByTag("app", "v1")->blob_refs, m.blob_refs);
}

TEST_F(SqliteMetadataStoreTest, HotPathQueriesUseIndexes) {
  // The same statements the store runs on the hot path, checked against the schema
  // the migrations create: no full scans.
  ASSERT_TRUE(store_->CreateRepository({"app", kT0}).ok());
  store_.reset();
  auto plan = [&](const std::string& sql) {
    std::string all;
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &stmt, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      all += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
      all += "\n";
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return all;
  };
  for (const std::string& sql : {
           std::string("SELECT m.bytes FROM repositories r "
                       "LEFT JOIN tags t ON t.repo_id = r.id AND t.tag = ?2 "
                       "LEFT JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest "
                       "WHERE r.name = ?1"),
           std::string("SELECT b.size FROM repositories r "
                       "LEFT JOIN repo_blobs rb ON rb.repo_id = r.id AND rb.digest = ?2 "
                       "LEFT JOIN blobs b ON b.digest = rb.digest WHERE r.name = ?1"),
           std::string("SELECT index_digest FROM manifest_children WHERE repo_id = ?1 AND "
                       "child_digest = ?2 ORDER BY index_digest LIMIT 1"),
           std::string("SELECT digest FROM manifests WHERE repo_id = ?1 AND subject = ?2 "
                       "ORDER BY digest"),
           std::string("SELECT id FROM uploads WHERE updated_at < ?1 ORDER BY updated_at, id "
                       "LIMIT ?2"),
           // Image listings (ECR): a page by digest, then its tags by digest range.
           std::string("SELECT m.digest FROM manifests m WHERE m.repo_id = ?1 AND m.digest > ?2 "
                       "AND (?3 = 0 OR (?3 = 1) = EXISTS (SELECT 1 FROM tags t "
                       "WHERE t.repo_id = m.repo_id AND t.digest = m.digest)) "
                       "ORDER BY m.digest LIMIT ?4"),
           std::string("SELECT digest, tag FROM tags WHERE repo_id = ?1 AND digest > ?2 "
                       "AND digest <= ?3 ORDER BY digest, tag"),
           // Repositories of an account, by name.
           std::string("SELECT r.name FROM repositories r WHERE r.account_id = ?1 AND "
                       "r.name > ?2 ORDER BY r.name LIMIT ?3"),
       }) {
    std::string p = plan(sql);
    EXPECT_EQ(p.find("SCAN"), std::string::npos) << sql << "\n" << p;
    EXPECT_EQ(p.find("TEMP B-TREE"), std::string::npos) << sql << "\n" << p;
  }
}

}  // namespace
}  // namespace berth::storage
