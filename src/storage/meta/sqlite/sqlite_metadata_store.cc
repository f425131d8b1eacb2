// SQLite MetadataStore.
//
// Connections. One writer connection and a pool of reader connections on the same
// database file. WAL journal: readers see the last committed snapshot and never block
// the writer nor each other. Each connection is used by one thread at a time
// (SQLITE_OPEN_NOMUTEX) and caches its prepared statements.
//
// Writes: group commit. Every mutating method is a closure run by Write(). Callers
// queue up; the one at the head of the queue (the leader) takes up to kMaxBatch queued
// closures, runs them in one BEGIN IMMEDIATE ... COMMIT, each under its own SAVEPOINT
// (so a closure that fails is rolled back alone), and wakes the others with their
// results. With synchronous=FULL the COMMIT costs one fsync of the WAL however many
// writers it carries; while it runs, newcomers queue for the next batch. A batch of one
// is an ordinary transaction. A closure never sees another's uncommitted effects in a
// way sequential execution would not: closures in a batch run one after another.
//
// Read epoch (MetadataStore::ReadEpoch): an atomic counter the leader makes odd just
// before BEGIN IMMEDIATE of a batch and even again after its COMMIT or ROLLBACK, before
// any writer of the batch returns. Only batches holding a write that may change
// repositories, manifests or tags move it: upload sessions, blob links and pull times
// (written all the time while images are pushed and pulled) leave it alone, so they do
// not invalidate caches. It sees only writes made through this object, which is how the
// database is used: one server process owns meta.db.
//
// Schema: versioned migrations in kMigrations, applied in order in one transaction at
// open and recorded in schema_migrations (a table rather than PRAGMA user_version so that
// the PostgreSQL backend can keep the same model).
#include "storage/meta/sqlite/sqlite_metadata_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/clock.h"

namespace berth::storage {
namespace {

namespace fs = std::filesystem;

constexpr int kBusyTimeoutMs = 10000;
constexpr size_t kMaxIdleReaders = 16;
constexpr size_t kMaxBatch = 128;

// ---------------------------------------------------------------------------------------
// Schema migrations. Append new steps; never edit a released one.

struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE repositories (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, safe to cache
  name       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

-- Every blob the registry holds, whatever repository (one copy per digest).
CREATE TABLE blobs (
  digest     TEXT PRIMARY KEY,
  size       INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Which repository may see which blob.
CREATE TABLE repo_blobs (
  repo_id    INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  digest     TEXT NOT NULL REFERENCES blobs(digest),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (repo_id, digest)
) WITHOUT ROWID;
CREATE INDEX repo_blobs_by_digest ON repo_blobs(digest);

CREATE TABLE manifests (
  repo_id       INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  digest        TEXT NOT NULL,
  media_type    TEXT NOT NULL,
  artifact_type TEXT NOT NULL DEFAULT '',
  bytes         BLOB NOT NULL,
  size          INTEGER NOT NULL,
  pushed_at     INTEGER NOT NULL,
  subject       TEXT,
  annotations   TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests(repo_id, subject, digest)
  WHERE subject IS NOT NULL;

-- Image manifest -> blobs (config and layers).
CREATE TABLE manifest_blobs (
  repo_id         INTEGER NOT NULL,
  manifest_digest TEXT NOT NULL,
  blob_digest     TEXT NOT NULL,
  PRIMARY KEY (repo_id, manifest_digest, blob_digest),
  FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests(repo_id, digest)
    ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX manifest_blobs_by_blob ON manifest_blobs(blob_digest);

-- Index -> child manifests.
CREATE TABLE manifest_children (
  repo_id      INTEGER NOT NULL,
  index_digest TEXT NOT NULL,
  child_digest TEXT NOT NULL,
  PRIMARY KEY (repo_id, index_digest, child_digest),
  FOREIGN KEY (repo_id, index_digest) REFERENCES manifests(repo_id, digest)
    ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX manifest_children_by_child ON manifest_children(repo_id, child_digest);

CREATE TABLE tags (
  repo_id    INTEGER NOT NULL,
  tag        TEXT NOT NULL,
  digest     TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (repo_id, tag),
  FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX tags_by_digest ON tags(repo_id, digest);

CREATE TABLE uploads (
  id          TEXT PRIMARY KEY,
  repo_id     INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  byte_offset INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_by_updated_at ON uploads(updated_at);
CREATE INDEX uploads_by_repo ON uploads(repo_id);
)sql"},
    // 2: the ECR control plane. Repository attributes (owning account, tag mutability,
    // scanning and encryption settings, policy), resource tags, and per-image size and
    // last pull time.
    {2, R"sql(
ALTER TABLE repositories ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
ALTER TABLE repositories ADD COLUMN tag_mutability TEXT NOT NULL DEFAULT 'MUTABLE';
-- JSON array of wildcard filters.
ALTER TABLE repositories ADD COLUMN tag_mutability_exclusions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE repositories ADD COLUMN scan_on_push INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN encryption_type TEXT NOT NULL DEFAULT 'AES256';
ALTER TABLE repositories ADD COLUMN kms_key TEXT NOT NULL DEFAULT '';
ALTER TABLE repositories ADD COLUMN policy TEXT;  -- NULL: no policy
CREATE INDEX repositories_by_account ON repositories(account_id, name);

CREATE TABLE repository_tags (
  repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  key     TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (repo_id, key)
) WITHOUT ROWID;

ALTER TABLE manifests ADD COLUMN image_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE manifests ADD COLUMN last_pulled_at INTEGER;  -- NULL: no pull recorded

-- Sizes of what was pushed before this step: images weigh the sum of their layers,
-- indexes the largest of their children.
UPDATE manifests SET image_size = coalesce(
    (SELECT sum(json_extract(l.value, '$.size'))
       FROM json_each(CAST(manifests.bytes AS TEXT), '$.layers') l), 0)
  WHERE json_valid(CAST(bytes AS TEXT));
UPDATE manifests SET image_size = coalesce(
    (SELECT max(c.image_size) FROM manifest_children mc
       JOIN manifests c ON c.repo_id = mc.repo_id AND c.digest = mc.child_digest
      WHERE mc.repo_id = manifests.repo_id AND mc.index_digest = manifests.digest), 0)
  WHERE EXISTS (SELECT 1 FROM manifest_children mc
                 WHERE mc.repo_id = manifests.repo_id AND mc.index_digest = manifests.digest);
)sql"},
    // 3: what several nodes share. Upload sessions carry their resumable hash state,
    // the blob store's cursor and a writer lease (any node may continue them);
    // registry-wide settings (secrets, identities) and leases of periodic jobs move
    // out of node-local files.
    {3, R"sql(
ALTER TABLE uploads ADD COLUMN hash_state TEXT NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN blob_state TEXT NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN lease_token TEXT NOT NULL DEFAULT '';
ALTER TABLE uploads ADD COLUMN lease_expires_at INTEGER NOT NULL DEFAULT 0;

CREATE TABLE settings (
  name  TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE leases (
  name       TEXT PRIMARY KEY,
  token      TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql"},
};

constexpr int kLatestVersion = kMigrations[std::size(kMigrations) - 1].version;

// ---------------------------------------------------------------------------------------
// SQLite errors -> Status.

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = "metadata store: ";
  msg += what;
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status(Code::kUnavailable, std::move(msg));
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_PRIMARYKEY:
        case SQLITE_CONSTRAINT_UNIQUE:
          return Status(Code::kAlreadyExists, std::move(msg));
        case SQLITE_CONSTRAINT_FOREIGNKEY:
          return Status(Code::kFailedPrecondition, std::move(msg));
        default:
          return Status(Code::kInvalidArgument, std::move(msg));
      }
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return Status(Code::kIoError, std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status(Code::kCorruption, std::move(msg));
    case SQLITE_NOMEM:
      return Status(Code::kUnavailable, std::move(msg));
    default:
      return Status(Code::kInternal, std::move(msg));
  }
}

// ---------------------------------------------------------------------------------------
// Statements and connections.

// A cached prepared statement in use; resets it (and its bindings) when destroyed.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Stmt() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }
  Stmt(Stmt&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& BindText(int i, std::string_view v) {
    // An empty view may have a null data(), which SQLite would store as NULL.
    const char* p = v.data() != nullptr ? v.data() : "";
    Check(sqlite3_bind_text64(stmt_, i, p, v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
  }
  Stmt& BindBlob(int i, std::string_view v) {
    if (v.empty()) {
      Check(sqlite3_bind_zeroblob(stmt_, i, 0));
    } else {
      Check(sqlite3_bind_blob64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT));
    }
    return *this;
  }
  Stmt& BindInt(int i, int64_t v) {
    Check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Stmt& BindNull(int i) {
    Check(sqlite3_bind_null(stmt_, i));
    return *this;
  }

  // true: a row is available; false: done.
  Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqliteError(db_, bind_rc_, "bind");
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, "step");
  }
  // Runs a statement that returns no rows (or whose rows are ignored).
  Status Run() {
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(bool row, Step());
      if (!row) return Status::Ok();
    }
  }

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    if (p == nullptr) return {};
    return std::string(static_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

class Conn {
 public:
  enum class Role { kWriter, kReader, kCheckpointer };

  static Result<std::unique_ptr<Conn>> Open(const fs::path& path, Role role) {
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    if (role == Role::kWriter) flags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    auto conn = std::unique_ptr<Conn>(new Conn(db));  // owns db even when open failed
    if (rc != SQLITE_OK) return SqliteError(db, rc, "open " + path.string());
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    BERTH_RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys = ON"));
    BERTH_RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous = FULL"));
    // Statement journals and temp b-trees in memory: otherwise SQLite creates and
    // unlinks a file in /var/tmp on every commit.
    BERTH_RETURN_IF_ERROR(conn->Exec("PRAGMA temp_store = MEMORY"));
    if (role == Role::kWriter) {
      BERTH_ASSIGN_OR_RETURN(Stmt mode, conn->Prepare("PRAGMA journal_mode = WAL"));
      BERTH_ASSIGN_OR_RETURN(bool row, mode.Step());
      if (!row || mode.Text(0) != "wal") {
        return Status::IoError("metadata store: cannot enable WAL journal on " + path.string());
      }
      // 1 MiB of pages: the indexes a commit touches; the rest is in the OS page cache.
      BERTH_RETURN_IF_ERROR(conn->Exec("PRAGMA cache_size = -1024"));
      // A WAL that grew during a burst is cut back to 64 MiB when it starts over.
      BERTH_RETURN_IF_ERROR(conn->Exec("PRAGMA journal_size_limit = 67108864"));
    } else if (role == Role::kReader) {
      BERTH_RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = ON"));
      // Up to 16 pooled readers each caching 2 MiB of pages (SQLite's default) was a
      // third of the server's RSS; the hot pages stay in the OS page cache anyway and
      // hot manifests in the registry's cache.
      BERTH_RETURN_IF_ERROR(conn->Exec("PRAGMA cache_size = -128"));
    } else {
      // The checkpointer copies WAL frames; it needs no page cache of its own.
      BERTH_RETURN_IF_ERROR(conn->Exec("PRAGMA cache_size = -64"));
    }
    return conn;
  }

  ~Conn() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close(db_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  sqlite3* db() const { return db_; }

  // `sql` must be a string literal (the cache keys on its text, which must outlive it).
  Result<Stmt> Prepare(std::string_view sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "prepare");
      it = cache_.emplace(sql, stmt).first;
    } else if (sqlite3_stmt_busy(it->second)) {
      return Status::Internal("metadata store: statement used re-entrantly");
    }
    return Stmt(db_, it->second);
  }

  // Runs one cached statement that returns no rows we need.
  Status Exec(std::string_view sql) {
    BERTH_ASSIGN_OR_RETURN(Stmt stmt, Prepare(sql));
    return stmt.Run();
  }

  // Runs a script of several statements (migrations); not cached.
  Status ExecScript(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string what = err != nullptr ? err : "exec";
      sqlite3_free(err);
      return SqliteError(nullptr, rc, what);
    }
    return Status::Ok();
  }

  int64_t Changes() const { return sqlite3_changes64(db_); }
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

 private:
  explicit Conn(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<std::string_view, sqlite3_stmt*> cache_;
};

// ---------------------------------------------------------------------------------------
// Domain helpers.

int64_t NowMillis() { return Clock::Real().NowMillis(); }

int64_t ClampLimit(size_t limit) {
  return static_cast<int64_t>(
      std::min<uint64_t>(limit, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
}

Status NameUnknown(std::string_view repo) {
  return Status(Code::kNameUnknown, "repository " + std::string(repo) + " not found",
                std::string(repo));
}

Status BlobNotLinked(std::string_view repo, const oci::Digest& digest) {
  return Status(Code::kBlobUnknown,
                "blob " + digest.str() + " is not in repository " + std::string(repo),
                digest.str());
}

Status ManifestUnknown(std::string_view repo, const oci::Digest& digest) {
  return Status(Code::kManifestUnknown,
                "manifest " + digest.str() + " not found in repository " + std::string(repo),
                digest.str());
}

Status TagUnknown(std::string_view repo, std::string_view tag) {
  return Status(Code::kManifestUnknown,
                "tag " + std::string(tag) + " not found in repository " + std::string(repo),
                std::string(tag));
}

Status UploadUnknown(std::string_view id) {
  return Status(Code::kUploadUnknown, "upload " + std::string(id) + " not found", std::string(id));
}

Result<oci::Digest> ParseStoredDigest(const std::string& s) {
  auto d = oci::Digest::Parse(s);
  if (!d.ok()) return Status::Corruption("metadata store: stored digest is invalid: " + s);
  return d;
}

// Splits group_concat output ("a,b,c") into sorted digests.
Result<std::vector<oci::Digest>> ParseDigestList(const std::string& s) {
  std::vector<oci::Digest> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    BERTH_ASSIGN_OR_RETURN(oci::Digest d, ParseStoredDigest(s.substr(start, end - start)));
    out.push_back(std::move(d));
    start = end + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<int64_t> RepoId(Conn& c, std::string_view repo) {
  BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT id FROM repositories WHERE name = ?1"));
  s.BindText(1, repo);
  BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NameUnknown(repo);
  return s.Int(0);
}

// The manifest columns ReadManifestRow expects; `m` is the manifests table.
#define BERTH_MANIFEST_COLUMNS                                                         \
  "m.digest, m.media_type, m.artifact_type, m.bytes, m.size, m.pushed_at, m.subject, " \
  "m.annotations, "                                                                    \
  "(SELECT group_concat(b.blob_digest) FROM manifest_blobs b "                         \
  "  WHERE b.repo_id = m.repo_id AND b.manifest_digest = m.digest), "                  \
  "(SELECT group_concat(c.child_digest) FROM manifest_children c "                     \
  "  WHERE c.repo_id = m.repo_id AND c.index_digest = m.digest), "                     \
  "m.image_size"

// BERTH_MANIFEST_COLUMNS for a pull: no references (NULL reads as an empty list).
#define BERTH_MANIFEST_PULL_COLUMNS                                                    \
  "m.digest, m.media_type, m.artifact_type, m.bytes, m.size, m.pushed_at, m.subject, " \
  "m.annotations, NULL, NULL, m.image_size"

// The columns ReadImageRow expects (a listing: no bytes, no references).
#define BERTH_IMAGE_COLUMNS                                                                  \
  "m.digest, m.media_type, m.artifact_type, m.size, m.pushed_at, m.subject, m.annotations, " \
  "m.image_size, m.last_pulled_at"

// The columns ReadRepositoryRow expects; `r` is the repositories table.
#define BERTH_REPOSITORY_COLUMNS                                                        \
  "r.name, r.created_at, r.account_id, r.tag_mutability, r.tag_mutability_exclusions, " \
  "r.scan_on_push, r.encryption_type, r.kms_key, r.policy"

// The upload columns ReadUploadRow expects.
#define BERTH_SELECT_UPLOADS                                                         \
  "SELECT u.id, r.name, u.byte_offset, u.created_at, u.updated_at, u.hash_state, "   \
  "u.blob_state, u.lease_token, u.lease_expires_at "                                 \
  "FROM uploads u JOIN repositories r ON r.id = u.repo_id "

// Decodes BERTH_MANIFEST_COLUMNS starting at column `first`.
Result<ManifestRecord> ReadManifestRow(const Stmt& s, int first, std::string_view repo) {
  ManifestRecord m;
  m.repository = std::string(repo);
  BERTH_ASSIGN_OR_RETURN(m.digest, ParseStoredDigest(s.Text(first)));
  m.media_type = s.Text(first + 1);
  m.artifact_type = s.Text(first + 2);
  m.bytes = s.Blob(first + 3);
  m.size = s.Int(first + 4);
  m.pushed_at_ms = s.Int(first + 5);
  if (!s.IsNull(first + 6)) {
    BERTH_ASSIGN_OR_RETURN(m.subject, ParseStoredDigest(s.Text(first + 6)));
  }
  m.annotations_json = s.Text(first + 7);
  BERTH_ASSIGN_OR_RETURN(m.blob_refs, ParseDigestList(s.Text(first + 8)));
  BERTH_ASSIGN_OR_RETURN(m.child_refs, ParseDigestList(s.Text(first + 9)));
  m.image_size = s.Int(first + 10);
  return m;
}

// Decodes BERTH_IMAGE_COLUMNS (tags are filled in by the caller).
Result<ImageRecord> ReadImageRow(const Stmt& s, std::string_view repo) {
  ImageRecord img;
  ManifestRecord& m = img.manifest;
  m.repository = std::string(repo);
  BERTH_ASSIGN_OR_RETURN(m.digest, ParseStoredDigest(s.Text(0)));
  m.media_type = s.Text(1);
  m.artifact_type = s.Text(2);
  m.size = s.Int(3);
  m.pushed_at_ms = s.Int(4);
  if (!s.IsNull(5)) {
    BERTH_ASSIGN_OR_RETURN(m.subject, ParseStoredDigest(s.Text(5)));
  }
  m.annotations_json = s.Text(6);
  m.image_size = s.Int(7);
  img.last_pulled_at_ms = s.IsNull(8) ? 0 : s.Int(8);
  return img;
}

// Tag mutability is stored under ECR's names, so the column reads naturally.
std::string_view MutabilityName(TagMutability m) {
  switch (m) {
    case TagMutability::kMutable: return "MUTABLE";
    case TagMutability::kImmutable: return "IMMUTABLE";
    case TagMutability::kImmutableWithExclusion: return "IMMUTABLE_WITH_EXCLUSION";
    case TagMutability::kMutableWithExclusion: return "MUTABLE_WITH_EXCLUSION";
  }
  return "MUTABLE";
}

Result<TagMutability> ParseMutability(std::string_view s) {
  for (TagMutability m :
       {TagMutability::kMutable, TagMutability::kImmutable, TagMutability::kImmutableWithExclusion,
        TagMutability::kMutableWithExclusion}) {
    if (s == MutabilityName(m)) return m;
  }
  return Status::Corruption("metadata store: stored tag mutability is invalid: " + std::string(s));
}

std::string EncodeStringList(const std::vector<std::string>& list) {
  boost::json::array a;
  for (const auto& v : list) a.emplace_back(v);
  return boost::json::serialize(a);
}

Result<std::vector<std::string>> DecodeStringList(const std::string& text) {
  std::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  std::vector<std::string> out;
  if (ec || !v.is_array()) {
    return Status::Corruption("metadata store: stored list is not a JSON array: " + text);
  }
  for (const auto& e : v.get_array()) {
    if (!e.is_string()) return Status::Corruption("metadata store: stored list holds a non-string");
    out.emplace_back(e.get_string().data(), e.get_string().size());
  }
  return out;
}

// Decodes BERTH_REPOSITORY_COLUMNS starting at column `first` (tags are filled in by
// the caller).
Result<RepositoryRecord> ReadRepositoryRow(const Stmt& s, int first) {
  RepositoryRecord r;
  r.name = s.Text(first);
  r.created_at_ms = s.Int(first + 1);
  r.account_id = s.Text(first + 2);
  BERTH_ASSIGN_OR_RETURN(r.tag_mutability.mode, ParseMutability(s.Text(first + 3)));
  BERTH_ASSIGN_OR_RETURN(r.tag_mutability.exclusion_filters, DecodeStringList(s.Text(first + 4)));
  r.scan_on_push = s.Int(first + 5) != 0;
  r.encryption_type = s.Text(first + 6);
  r.kms_key = s.Text(first + 7);
  if (!s.IsNull(first + 8)) r.policy = s.Text(first + 8);
  return r;
}

Result<std::vector<ResourceTag>> ReadRepositoryTags(Conn& c, int64_t repo) {
  BERTH_ASSIGN_OR_RETURN(
      Stmt s, c.Prepare("SELECT key, value FROM repository_tags WHERE repo_id = ?1 ORDER BY key"));
  s.BindInt(1, repo);
  std::vector<ResourceTag> out;
  for (;;) {
    BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    out.push_back({s.Text(0), s.Text(1)});
  }
}

Status PutRepositoryTag(Conn& c, int64_t repo, const ResourceTag& tag) {
  BERTH_ASSIGN_OR_RETURN(
      Stmt s, c.Prepare("INSERT INTO repository_tags(repo_id, key, value) VALUES(?1, ?2, ?3) "
                        "ON CONFLICT(repo_id, key) DO UPDATE SET value = excluded.value"));
  s.BindInt(1, repo).BindText(2, tag.key).BindText(3, tag.value);
  return s.Run();
}

// Deletes a manifest's rows (the caller has checked that nothing pins it).
Status DeleteManifestRows(Conn& c, int64_t repo, const oci::Digest& digest) {
  for (std::string_view sql : {
           std::string_view("DELETE FROM tags WHERE repo_id = ?1 AND digest = ?2"),
           std::string_view(
               "DELETE FROM manifest_blobs WHERE repo_id = ?1 AND manifest_digest = ?2"),
           std::string_view(
               "DELETE FROM manifest_children WHERE repo_id = ?1 AND index_digest = ?2"),
           std::string_view("DELETE FROM manifests WHERE repo_id = ?1 AND digest = ?2"),
       }) {
    BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare(sql));
    s.BindInt(1, repo).BindText(2, digest.str());
    BERTH_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

// The index in the repository that lists `digest` as a child, if any.
Result<std::optional<std::string>> ReferencingIndex(Conn& c, int64_t repo,
                                                    const oci::Digest& digest) {
  BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT index_digest FROM manifest_children "
                                           "WHERE repo_id = ?1 AND child_digest = ?2 "
                                           "ORDER BY index_digest LIMIT 1"));
  s.BindInt(1, repo).BindText(2, digest.str());
  BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

// ---------------------------------------------------------------------------------------
// Checkpoints, off the commit path.
//
// By default SQLite checkpoints inside the COMMIT that takes the WAL past 1000 frames,
// on the writer's connection: that commit, and with group commit the whole batch
// waiting behind it, pays for copying the WAL into the database plus two more fsyncs
// (tens of milliseconds; it showed as the p90 of manifest PUTs). Instead the writer has
// a WAL hook (which replaces auto-checkpointing) that wakes this thread, and the thread
// runs PASSIVE checkpoints on its own connection: they never block the writer or the
// readers. When a checkpoint has copied everything, the next write starts the WAL over.
//
// Under a steady stream of commits the background checkpoint never quite catches up
// with the end of the WAL, and the WAL only starts over once a checkpoint has copied
// all of it. Past 8 x checkpoint_frames the writer finishes the copy itself (only the
// frames the checkpointer has not reached yet), which bounds the WAL (~32 MiB).
class Checkpointer {
 public:
  Checkpointer(std::unique_ptr<Conn> conn, int checkpoint_frames)
      : conn_(std::move(conn)),
        frames_(checkpoint_frames),
        writer_frames_(8 * checkpoint_frames),
        thread_([this] { Run(); }) {}
  ~Checkpointer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Installs the hook on the writer's connection.
  void Attach(sqlite3* writer) { sqlite3_wal_hook(writer, &Checkpointer::Hook, this); }

  // Checkpoints run so far (for tests and metrics).
  uint64_t runs() const { return runs_.load(std::memory_order_relaxed); }

 private:
  // Called by SQLite in the writer's thread after each commit, with the WAL's size.
  static int Hook(void* arg, sqlite3* writer, const char*, int frames) {
    auto* self = static_cast<Checkpointer*>(arg);
    if (frames >= self->writer_frames_) {
      int log = 0, copied = 0;
      // SQLITE_BUSY while the checkpointer runs: the next commit tries again.
      (void)sqlite3_wal_checkpoint_v2(writer, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    } else if (frames >= self->frames_) {
      self->Wake();
    }
    return SQLITE_OK;
  }

  void Wake() {
    {
      std::lock_guard lock(mu_);
      pending_ = true;
    }
    cv_.notify_one();
  }

  void Run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return pending_ || stop_; });
      if (stop_) return;
      pending_ = false;
      lock.unlock();
      int log = 0, copied = 0;
      // SQLITE_BUSY (another checkpoint running) is harmless: the next commit retries.
      (void)sqlite3_wal_checkpoint_v2(conn_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log,
                                      &copied);
      runs_.fetch_add(1, std::memory_order_relaxed);
      lock.lock();
    }
  }

  std::unique_ptr<Conn> conn_;
  const int frames_;
  const int writer_frames_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;  // guarded by mu_
  bool stop_ = false;     // guarded by mu_
  std::atomic<uint64_t> runs_{0};
  std::thread thread_;  // last: starts after everything it uses
};

// ---------------------------------------------------------------------------------------

class SqliteMetadataStore final : public MetadataStore {
 public:
  using WriteFn = std::function<Status(Conn&)>;

  SqliteMetadataStore(fs::path path, std::unique_ptr<Conn> writer,
                      std::unique_ptr<Conn> checkpoint_conn, const SqliteOptions& options)
      : path_(std::move(path)),
        writer_(std::move(writer)),
        checkpointer_(std::make_unique<Checkpointer>(std::move(checkpoint_conn),
                                                     std::max(1, options.checkpoint_frames))) {
    checkpointer_->Attach(writer_->db());
  }

  ~SqliteMetadataStore() override {
    // Stop checkpointing before the writer goes (closing it checkpoints one last time).
    sqlite3_wal_hook(writer_->db(), nullptr, nullptr);
    checkpointer_.reset();
  }

  std::optional<uint64_t> ReadEpoch() const override { return epoch_.load(); }

  Status Check() override {
    return Read(false, [](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT max(version) FROM schema_migrations"));
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row || s.Int(0) != kLatestVersion) {
        return Status::Internal("metadata store: unexpected schema version");
      }
      return Status::Ok();
    });
  }

  // ---- repositories

  Status CreateRepository(const RepositoryRecord& repo) override {
    return Write([&](Conn& c) -> Status {
      {
        BERTH_ASSIGN_OR_RETURN(Stmt s,
                               c.Prepare("INSERT INTO repositories(name, created_at, account_id, "
                                         "tag_mutability, tag_mutability_exclusions, scan_on_push, "
                                         "encryption_type, kms_key, policy) "
                                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                                         "ON CONFLICT(name) DO NOTHING"));
        s.BindText(1, repo.name)
            .BindInt(2, repo.created_at_ms)
            .BindText(3, repo.account_id)
            .BindText(4, MutabilityName(repo.tag_mutability.mode))
            .BindText(5, EncodeStringList(repo.tag_mutability.exclusion_filters))
            .BindInt(6, repo.scan_on_push ? 1 : 0)
            .BindText(7, repo.encryption_type)
            .BindText(8, repo.kms_key);
        if (repo.policy.has_value()) {
          s.BindText(9, *repo.policy);
        } else {
          s.BindNull(9);
        }
        BERTH_RETURN_IF_ERROR(s.Run());
        if (c.Changes() == 0) {
          return Status(Code::kAlreadyExists, "repository " + repo.name + " already exists",
                        repo.name);
        }
      }
      if (repo.tags.empty()) return Status::Ok();
      BERTH_ASSIGN_OR_RETURN(int64_t id, RepoId(c, repo.name));
      for (const ResourceTag& t : repo.tags) BERTH_RETURN_IF_ERROR(PutRepositoryTag(c, id, t));
      return Status::Ok();
    });
  }

  Result<RepositoryRecord> GetRepository(std::string_view name) override {
    return Read(true, [&](Conn& c) -> Result<RepositoryRecord> {
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT r.id, " BERTH_REPOSITORY_COLUMNS
                                               " FROM repositories r WHERE r.name = ?1"));
      s.BindText(1, name);
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return NameUnknown(name);
      int64_t id = s.Int(0);
      BERTH_ASSIGN_OR_RETURN(RepositoryRecord r, ReadRepositoryRow(s, 1));
      BERTH_ASSIGN_OR_RETURN(r.tags, ReadRepositoryTags(c, id));
      return r;
    });
  }

  Result<std::vector<std::string>> ListRepositories(std::string_view after, size_t limit) override {
    return Read(false, [&](Conn& c) -> Result<std::vector<std::string>> {
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT name FROM repositories WHERE name > ?1 "
                                               "ORDER BY name LIMIT ?2"));
      s.BindText(1, after).BindInt(2, ClampLimit(limit));
      return Column(s);
    });
  }

  Status DeleteRepository(std::string_view name, bool force) override {
    return Write([&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, name));
      if (!force) {
        BERTH_ASSIGN_OR_RETURN(Stmt s,
                               c.Prepare("SELECT 1 FROM manifests WHERE repo_id = ?1 LIMIT 1"));
        s.BindInt(1, repo);
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (row) {
          return Status(Code::kFailedPrecondition,
                        "repository " + std::string(name) +
                            " still holds images; delete them first or force the deletion",
                        std::string(name));
        }
      }
      // Children before parents; the ON DELETE CASCADE clauses are a second line.
      for (std::string_view sql : {
               std::string_view("DELETE FROM tags WHERE repo_id = ?1"),
               std::string_view("DELETE FROM manifest_children WHERE repo_id = ?1"),
               std::string_view("DELETE FROM manifest_blobs WHERE repo_id = ?1"),
               std::string_view("DELETE FROM manifests WHERE repo_id = ?1"),
               std::string_view("DELETE FROM repo_blobs WHERE repo_id = ?1"),
               std::string_view("DELETE FROM uploads WHERE repo_id = ?1"),
               std::string_view("DELETE FROM repository_tags WHERE repo_id = ?1"),
               std::string_view("DELETE FROM repositories WHERE id = ?1"),
           }) {
        BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare(sql));
        s.BindInt(1, repo);
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      return Status::Ok();
    });
  }

  Result<std::vector<RepositoryRecord>> ListRepositoryRecords(std::string_view account_id,
                                                              std::string_view after,
                                                              size_t limit) override {
    return Read(true, [&](Conn& c) -> Result<std::vector<RepositoryRecord>> {
      std::vector<RepositoryRecord> out;
      {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("SELECT " BERTH_REPOSITORY_COLUMNS " FROM repositories r "
                              "WHERE r.account_id = ?1 AND r.name > ?2 ORDER BY r.name LIMIT ?3"));
        s.BindText(1, account_id).BindText(2, after).BindInt(3, ClampLimit(limit));
        for (;;) {
          BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
          if (!row) break;
          BERTH_ASSIGN_OR_RETURN(RepositoryRecord r, ReadRepositoryRow(s, 0));
          out.push_back(std::move(r));
        }
      }
      if (out.empty()) return out;
      // The page's resource tags in one range query (pages are keyed by name).
      BERTH_ASSIGN_OR_RETURN(Stmt s,
                             c.Prepare("SELECT r.name, t.key, t.value FROM repositories r "
                                       "JOIN repository_tags t ON t.repo_id = r.id "
                                       "WHERE r.account_id = ?1 AND r.name > ?2 AND r.name <= ?3 "
                                       "ORDER BY r.name, t.key"));
      s.BindText(1, account_id).BindText(2, after).BindText(3, out.back().name);
      size_t i = 0;
      for (;;) {
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        std::string name = s.Text(0);
        while (i < out.size() && out[i].name < name) ++i;
        if (i == out.size()) break;
        if (out[i].name == name) out[i].tags.push_back({s.Text(1), s.Text(2)});
      }
      return out;
    });
  }

  Result<size_t> AssignUnownedRepositories(std::string_view account_id) override {
    size_t n = 0;
    Status st = Write([&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("UPDATE repositories SET account_id = ?1 WHERE account_id = ''"));
      s.BindText(1, account_id);
      BERTH_RETURN_IF_ERROR(s.Run());
      n = static_cast<size_t>(c.Changes());
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return n;
  }

  Status SetTagMutability(std::string_view name, const TagMutabilitySetting& setting) override {
    return Write([&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE repositories SET tag_mutability = ?2, "
                                               "tag_mutability_exclusions = ?3 WHERE name = ?1"));
      s.BindText(1, name)
          .BindText(2, MutabilityName(setting.mode))
          .BindText(3, EncodeStringList(setting.exclusion_filters));
      BERTH_RETURN_IF_ERROR(s.Run());
      if (c.Changes() == 0) return NameUnknown(name);
      return Status::Ok();
    });
  }

  Status SetRepositoryPolicy(std::string_view name, std::string_view policy) override {
    return Write([&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(Stmt s,
                             c.Prepare("UPDATE repositories SET policy = ?2 WHERE name = ?1"));
      s.BindText(1, name).BindText(2, policy);
      BERTH_RETURN_IF_ERROR(s.Run());
      if (c.Changes() == 0) return NameUnknown(name);
      return Status::Ok();
    });
  }

  Result<std::string> DeleteRepositoryPolicy(std::string_view name) override {
    std::string old;
    Status st = Write([&](Conn& c) -> Status {
      {
        BERTH_ASSIGN_OR_RETURN(Stmt s,
                               c.Prepare("SELECT policy FROM repositories WHERE name = ?1"));
        s.BindText(1, name);
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return NameUnknown(name);
        if (s.IsNull(0)) {
          return Status(Code::kNotFound, "repository " + std::string(name) + " has no policy",
                        std::string(name));
        }
        old = s.Text(0);
      }
      BERTH_ASSIGN_OR_RETURN(Stmt s,
                             c.Prepare("UPDATE repositories SET policy = NULL WHERE name = ?1"));
      s.BindText(1, name);
      return s.Run();
    });
    if (!st.ok()) return st;
    return old;
  }

  Status UpdateRepositoryTags(std::string_view name, const std::vector<ResourceTag>& set,
                              const std::vector<std::string>& remove_keys,
                              size_t max_tags) override {
    return Write([&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, name));
      for (const std::string& key : remove_keys) {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("DELETE FROM repository_tags WHERE repo_id = ?1 AND key = ?2"));
        s.BindInt(1, repo).BindText(2, key);
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      for (const ResourceTag& t : set) BERTH_RETURN_IF_ERROR(PutRepositoryTag(c, repo, t));
      BERTH_ASSIGN_OR_RETURN(Stmt s,
                             c.Prepare("SELECT count(*) FROM repository_tags WHERE repo_id = ?1"));
      s.BindInt(1, repo);
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      int64_t count = row ? s.Int(0) : 0;
      if (static_cast<uint64_t>(count) > max_tags) {
        return Status(Code::kOutOfRange,
                      "repository " + std::string(name) + " would have " + std::to_string(count) +
                          " tags; the limit is " + std::to_string(max_tags),
                      std::string(name));
      }
      return Status::Ok();
    });
  }

  // ---- blobs

  Status CommitBlob(std::string_view repository, const BlobRecord& blob,
                    std::string_view upload_id) override {
    if (blob.digest.empty()) return Status(Code::kDigestInvalid, "empty digest");
    return Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      int64_t created = blob.created_at_ms != 0 ? blob.created_at_ms : NowMillis();
      {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("INSERT INTO blobs(digest, size, created_at) VALUES(?1, ?2, ?3) "
                              "ON CONFLICT(digest) DO NOTHING"));
        s.BindText(1, blob.digest.str())
            .BindInt(2, static_cast<int64_t>(blob.size))
            .BindInt(3, created);
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      BERTH_RETURN_IF_ERROR(Link(c, repo, blob.digest, created));
      if (!upload_id.empty()) {
        BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM uploads WHERE id = ?1"));
        s.BindText(1, upload_id);
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      return Status::Ok();
    });
  }

  Result<BlobRecord> GetLinkedBlob(std::string_view repository,
                                   const oci::Digest& digest) override {
    // One indexed query on the hot path; the LEFT JOINs tell a missing repository
    // (no row) from a missing link (NULL blob columns).
    return Read(false, [&](Conn& c) -> Result<BlobRecord> {
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("SELECT b.size, b.created_at, b.digest IS NOT NULL "
                            "FROM repositories r "
                            "LEFT JOIN repo_blobs rb ON rb.repo_id = r.id AND rb.digest = ?2 "
                            "LEFT JOIN blobs b ON b.digest = rb.digest "
                            "WHERE r.name = ?1"));
      s.BindText(1, repository).BindText(2, digest.str());
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return NameUnknown(repository);
      if (s.Int(2) == 0) return BlobNotLinked(repository, digest);
      return BlobRecord{digest, static_cast<uint64_t>(s.Int(0)), s.Int(1)};
    });
  }

  Result<std::vector<BlobRecord>> ListLinkedBlobs(std::string_view repository,
                                                  std::string_view after,
                                                  size_t limit) override {
    return Read(true, [&](Conn& c) -> Result<std::vector<BlobRecord>> {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("SELECT rb.digest, b.size, b.created_at FROM repo_blobs rb "
                            "JOIN blobs b ON b.digest = rb.digest "
                            "WHERE rb.repo_id = ?1 AND rb.digest > ?2 "
                            "ORDER BY rb.digest LIMIT ?3"));
      s.BindInt(1, repo).BindText(2, after).BindInt(3, ClampLimit(limit));
      std::vector<BlobRecord> out;
      for (;;) {
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return out;
        BERTH_ASSIGN_OR_RETURN(oci::Digest digest, ParseStoredDigest(s.Text(0)));
        out.push_back({std::move(digest), static_cast<uint64_t>(s.Int(1)), s.Int(2)});
      }
    });
  }

  Result<BlobRecord> GetBlob(const oci::Digest& digest) override {
    return Read(false, [&](Conn& c) -> Result<BlobRecord> {
      BERTH_ASSIGN_OR_RETURN(Stmt s,
                             c.Prepare("SELECT size, created_at FROM blobs WHERE digest = ?1"));
      s.BindText(1, digest.str());
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) {
        return Status(Code::kBlobUnknown, "blob " + digest.str() + " not found", digest.str());
      }
      return BlobRecord{digest, static_cast<uint64_t>(s.Int(0)), s.Int(1)};
    });
  }

  Status LinkBlob(std::string_view repository, const oci::Digest& digest) override {
    return Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT 1 FROM blobs WHERE digest = ?1"));
      s.BindText(1, digest.str());
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) {
        return Status(Code::kBlobUnknown, "blob " + digest.str() + " not found", digest.str());
      }
      return Link(c, repo, digest, NowMillis());
    });
  }

  Status UnlinkBlob(std::string_view repository, const oci::Digest& digest) override {
    return Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("DELETE FROM repo_blobs WHERE repo_id = ?1 AND digest = ?2"));
      s.BindInt(1, repo).BindText(2, digest.str());
      BERTH_RETURN_IF_ERROR(s.Run());
      if (c.Changes() == 0) return BlobNotLinked(repository, digest);
      return Status::Ok();
    });
  }

  // ---- manifests and tags

  using MetadataStore::PutManifest;
  Result<PutManifestOutcome> PutManifest(const ManifestRecord& m, std::string_view tag,
                                         const PutManifestOptions& options) override {
    if (m.digest.empty()) return Status(Code::kDigestInvalid, "manifest digest is empty");
    PutManifestOutcome outcome;
    Status st = Write([&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, m.repository));
      if (!tag.empty()) {
        // The tag rule first: in this transaction, so concurrent pushes see each other.
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("SELECT digest FROM tags WHERE repo_id = ?1 AND tag = ?2"));
        s.BindInt(1, repo).BindText(2, tag);
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (row) {
          if (s.Text(0) == m.digest.str()) {
            outcome.tag_unchanged = true;
          } else if (options.immutable_tag) {
            return Status(Code::kTagInvalid,
                          "tag " + std::string(tag) + " of repository " + m.repository +
                              " is immutable and points at another manifest",
                          std::string(tag));
          }
        }
      }
      for (const oci::Digest& d : m.blob_refs) {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("SELECT 1 FROM repo_blobs WHERE repo_id = ?1 AND digest = ?2"));
        s.BindInt(1, repo).BindText(2, d.str());
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) {
          return Status(
              Code::kManifestBlobUnknown,
              "manifest references blob " + d.str() + " which is not in repository " + m.repository,
              d.str());
        }
      }
      for (const oci::Digest& d : m.child_refs) {
        BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare(kManifestExists));
        s.BindInt(1, repo).BindText(2, d.str());
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) {
          return Status(Code::kManifestBlobUnknown,
                        "manifest list references manifest " + d.str() +
                            " which is not in repository " + m.repository +
                            "; push the image to this repository first",
                        d.str());
        }
      }
      bool inserted;
      {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s,
            c.Prepare("INSERT INTO manifests(repo_id, digest, media_type, artifact_type, bytes, "
                      "size, pushed_at, subject, annotations, image_size) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                      "ON CONFLICT(repo_id, digest) DO NOTHING"));
        s.BindInt(1, repo)
            .BindText(2, m.digest.str())
            .BindText(3, m.media_type)
            .BindText(4, m.artifact_type)
            .BindBlob(5, m.bytes)
            .BindInt(6, static_cast<int64_t>(m.bytes.size()))
            .BindInt(7, m.pushed_at_ms)
            .BindText(9, m.annotations_json.empty() ? "{}" : m.annotations_json)
            .BindInt(10, m.image_size);
        if (m.subject.has_value()) {
          s.BindText(8, m.subject->str());
        } else {
          s.BindNull(8);
        }
        BERTH_RETURN_IF_ERROR(s.Run());
        inserted = c.Changes() > 0;
        outcome.manifest_created = inserted;
      }
      // An existing manifest keeps its references: the same digest means the same bytes.
      if (inserted) {
        for (const oci::Digest& d : m.blob_refs) {
          BERTH_ASSIGN_OR_RETURN(
              Stmt s, c.Prepare("INSERT INTO manifest_blobs(repo_id, manifest_digest, "
                                "blob_digest) VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING"));
          s.BindInt(1, repo).BindText(2, m.digest.str()).BindText(3, d.str());
          BERTH_RETURN_IF_ERROR(s.Run());
        }
        for (const oci::Digest& d : m.child_refs) {
          BERTH_ASSIGN_OR_RETURN(
              Stmt s, c.Prepare("INSERT INTO manifest_children(repo_id, index_digest, "
                                "child_digest) VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING"));
          s.BindInt(1, repo).BindText(2, m.digest.str()).BindText(3, d.str());
          BERTH_RETURN_IF_ERROR(s.Run());
        }
      }
      if (!tag.empty() && !outcome.tag_unchanged) {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("INSERT INTO tags(repo_id, tag, digest, updated_at) "
                              "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(repo_id, tag) DO UPDATE "
                              "SET digest = excluded.digest, updated_at = excluded.updated_at"));
        s.BindInt(1, repo).BindText(2, tag).BindText(3, m.digest.str()).BindInt(4, NowMillis());
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return outcome;
  }

  // The queries of GetManifest and GetManifestByTag with the columns `columns`.
#define BERTH_MANIFEST_BY_DIGEST(columns)                                   \
  "SELECT m.repo_id IS NOT NULL, " columns " FROM repositories r "          \
  "LEFT JOIN manifests m ON m.repo_id = r.id AND m.digest = ?2 "           \
  "WHERE r.name = ?1"
#define BERTH_MANIFEST_BY_TAG(columns)                                      \
  "SELECT m.repo_id IS NOT NULL, " columns " FROM repositories r "          \
  "LEFT JOIN tags t ON t.repo_id = r.id AND t.tag = ?2 "                   \
  "LEFT JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest " \
  "WHERE r.name = ?1"

  Result<ManifestRecord> GetManifest(std::string_view repository,
                                     const oci::Digest& digest) override {
    return ReadManifest(BERTH_MANIFEST_BY_DIGEST(BERTH_MANIFEST_COLUMNS), repository, digest);
  }
  Result<ManifestRecord> GetManifestForPull(std::string_view repository,
                                            const oci::Digest& digest) override {
    return ReadManifest(BERTH_MANIFEST_BY_DIGEST(BERTH_MANIFEST_PULL_COLUMNS), repository,
                        digest);
  }
  // One indexed query on the hot path (pull by tag).
  Result<ManifestRecord> GetManifestByTag(std::string_view repository,
                                          std::string_view tag) override {
    return ReadManifest(BERTH_MANIFEST_BY_TAG(BERTH_MANIFEST_COLUMNS), repository, tag);
  }
  Result<ManifestRecord> GetManifestByTagForPull(std::string_view repository,
                                                 std::string_view tag) override {
    return ReadManifest(BERTH_MANIFEST_BY_TAG(BERTH_MANIFEST_PULL_COLUMNS), repository, tag);
  }
#undef BERTH_MANIFEST_BY_DIGEST
#undef BERTH_MANIFEST_BY_TAG

  Result<std::vector<std::string>> ListTags(std::string_view repository, std::string_view after,
                                            size_t limit) override {
    return Read(true, [&](Conn& c) -> Result<std::vector<std::string>> {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT tag FROM tags WHERE repo_id = ?1 AND "
                                               "tag > ?2 ORDER BY tag LIMIT ?3"));
      s.BindInt(1, repo).BindText(2, after).BindInt(3, ClampLimit(limit));
      return Column(s);
    });
  }

  Result<std::vector<std::string>> TagsOf(std::string_view repository, const oci::Digest& digest,
                                          std::string_view after, size_t limit) override {
    return Read(true, [&](Conn& c) -> Result<std::vector<std::string>> {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("SELECT tag FROM tags WHERE repo_id = ?1 AND digest = ?2 "
                            "AND tag > ?3 ORDER BY tag LIMIT ?4"));
      s.BindInt(1, repo).BindText(2, digest.str()).BindText(3, after).BindInt(4, ClampLimit(limit));
      return Column(s);
    });
  }

  Status DeleteTag(std::string_view repository, std::string_view tag) override {
    return Write([&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM tags WHERE repo_id = ?1 AND tag = ?2"));
      s.BindInt(1, repo).BindText(2, tag);
      BERTH_RETURN_IF_ERROR(s.Run());
      if (c.Changes() == 0) return TagUnknown(repository, tag);
      return Status::Ok();
    });
  }

  Status DeleteManifest(std::string_view repository, const oci::Digest& digest) override {
    return Write([&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      {
        BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare(kManifestExists));
        s.BindInt(1, repo).BindText(2, digest.str());
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return ManifestUnknown(repository, digest);
      }
      BERTH_ASSIGN_OR_RETURN(auto index, ReferencingIndex(c, repo, digest));
      if (index.has_value()) {
        return Status(Code::kManifestReferenced,
                      "manifest " + digest.str() + " is referenced by index " + *index +
                          " in repository " + std::string(repository) + "; delete the index first",
                      *index);
      }
      return DeleteManifestRows(c, repo, digest);
    });
  }

  Result<RemovedTag> RemoveTag(std::string_view repository, std::string_view tag,
                               const RemoveTagOptions& options) override {
    RemovedTag removed;
    Status st = Write([&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("SELECT digest FROM tags WHERE repo_id = ?1 AND tag = ?2"));
        s.BindInt(1, repo).BindText(2, tag);
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return TagUnknown(repository, tag);
        BERTH_ASSIGN_OR_RETURN(removed.digest, ParseStoredDigest(s.Text(0)));
      }
      {
        BERTH_ASSIGN_OR_RETURN(Stmt s,
                               c.Prepare("DELETE FROM tags WHERE repo_id = ?1 AND tag = ?2"));
        s.BindInt(1, repo).BindText(2, tag);
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      if (!options.delete_untagged_manifest) return Status::Ok();
      {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("SELECT 1 FROM tags WHERE repo_id = ?1 AND digest = ?2 LIMIT 1"));
        s.BindInt(1, repo).BindText(2, removed.digest.str());
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (row) return Status::Ok();  // other tags keep the manifest
      }
      BERTH_ASSIGN_OR_RETURN(auto index, ReferencingIndex(c, repo, removed.digest));
      if (index.has_value()) return Status::Ok();  // still part of an index
      BERTH_RETURN_IF_ERROR(DeleteManifestRows(c, repo, removed.digest));
      removed.manifest_deleted = true;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return removed;
  }

  // ---- image listings

  Result<std::vector<ImageRecord>> ListImages(std::string_view repository, TagFilter filter,
                                              std::string_view after, size_t limit) override {
    return Read(true, [&](Conn& c) -> Result<std::vector<ImageRecord>> {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      std::vector<ImageRecord> out;
      {
        BERTH_ASSIGN_OR_RETURN(Stmt s,
                               c.Prepare("SELECT " BERTH_IMAGE_COLUMNS " FROM manifests m "
                                         "WHERE m.repo_id = ?1 AND m.digest > ?2 AND (?3 = 0 OR "
                                         "(?3 = 1) = EXISTS (SELECT 1 FROM tags t "
                                         "WHERE t.repo_id = m.repo_id AND t.digest = m.digest)) "
                                         "ORDER BY m.digest LIMIT ?4"));
        int64_t f = filter == TagFilter::kAny ? 0 : filter == TagFilter::kTagged ? 1 : 2;
        s.BindInt(1, repo).BindText(2, after).BindInt(3, f).BindInt(4, ClampLimit(limit));
        for (;;) {
          BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
          if (!row) break;
          BERTH_ASSIGN_OR_RETURN(ImageRecord img, ReadImageRow(s, repository));
          out.push_back(std::move(img));
        }
      }
      if (out.empty() || filter == TagFilter::kUntagged) return out;
      // The page's tags in one range query over the tags-by-digest index.
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("SELECT digest, tag FROM tags WHERE repo_id = ?1 AND digest > ?2 "
                            "AND digest <= ?3 ORDER BY digest, tag"));
      s.BindInt(1, repo).BindText(2, after).BindText(3, out.back().manifest.digest.str());
      size_t i = 0;
      for (;;) {
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        std::string digest = s.Text(0);
        while (i < out.size() && out[i].manifest.digest.str() < digest) ++i;
        if (i == out.size()) break;
        if (out[i].manifest.digest.str() == digest) out[i].tags.push_back(s.Text(1));
      }
      return out;
    });
  }

  Result<ImageRecord> GetImage(std::string_view repository, const oci::Digest& digest) override {
    return Read(true, [&](Conn& c) -> Result<ImageRecord> {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      ImageRecord img;
      {
        BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT " BERTH_IMAGE_COLUMNS " FROM manifests m "
                                                 "WHERE m.repo_id = ?1 AND m.digest = ?2"));
        s.BindInt(1, repo).BindText(2, digest.str());
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return ManifestUnknown(repository, digest);
        BERTH_ASSIGN_OR_RETURN(img, ReadImageRow(s, repository));
      }
      BERTH_ASSIGN_OR_RETURN(
          Stmt s,
          c.Prepare("SELECT tag FROM tags WHERE repo_id = ?1 AND digest = ?2 ORDER BY tag"));
      s.BindInt(1, repo).BindText(2, digest.str());
      BERTH_ASSIGN_OR_RETURN(img.tags, Column(s));
      return img;
    });
  }

  Status RecordPulls(const std::vector<PullRecord>& pulls) override {
    if (pulls.empty()) return Status::Ok();
    return Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      for (const PullRecord& p : pulls) {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("UPDATE manifests SET last_pulled_at = ?3 "
                              "WHERE repo_id = (SELECT id FROM repositories WHERE name = ?1) "
                              "AND digest = ?2 "
                              "AND (last_pulled_at IS NULL OR last_pulled_at < ?3)"));
        s.BindText(1, p.repository).BindText(2, p.digest.str()).BindInt(3, p.pulled_at_ms);
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      return Status::Ok();
    });
  }

  Result<std::vector<ManifestRecord>> ListReferrers(std::string_view repository,
                                                    const oci::Digest& subject,
                                                    std::string_view artifact_type,
                                                    std::string_view after,
                                                    size_t limit) override {
    return Read(true, [&](Conn& c) -> Result<std::vector<ManifestRecord>> {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, repository));
      BERTH_ASSIGN_OR_RETURN(Stmt s,
                             c.Prepare("SELECT digest, media_type, artifact_type, size, pushed_at, "
                                       "subject, annotations FROM manifests "
                                       "WHERE repo_id = ?1 AND subject = ?2 "
                                       "AND (?3 = '' OR artifact_type = ?3) AND digest > ?4 "
                                       "ORDER BY digest LIMIT ?5"));
      s.BindInt(1, repo)
          .BindText(2, subject.str())
          .BindText(3, artifact_type)
          .BindText(4, after)
          .BindInt(5, ClampLimit(limit));
      std::vector<ManifestRecord> out;
      for (;;) {
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        ManifestRecord m;
        m.repository = std::string(repository);
        BERTH_ASSIGN_OR_RETURN(m.digest, ParseStoredDigest(s.Text(0)));
        m.media_type = s.Text(1);
        m.artifact_type = s.Text(2);
        m.size = s.Int(3);
        m.pushed_at_ms = s.Int(4);
        m.subject = subject;
        m.annotations_json = s.Text(6);
        out.push_back(std::move(m));
      }
      return out;
    });
  }

  // ---- upload sessions

  Status CreateUpload(const UploadRecord& u) override {
    return Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(int64_t repo, RepoId(c, u.repository));
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("INSERT INTO uploads(id, repo_id, byte_offset, created_at, "
                            "updated_at, hash_state, blob_state, lease_token, lease_expires_at) "
                            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(id) DO NOTHING"));
      s.BindText(1, u.id)
          .BindInt(2, repo)
          .BindInt(3, static_cast<int64_t>(u.offset))
          .BindInt(4, u.created_at_ms)
          .BindInt(5, u.updated_at_ms)
          .BindText(6, u.hash_state)
          .BindText(7, u.blob_state)
          .BindText(8, u.lease_token)
          .BindInt(9, u.lease_expires_ms);
      BERTH_RETURN_IF_ERROR(s.Run());
      if (c.Changes() == 0) {
        return Status(Code::kAlreadyExists, "upload " + u.id + " already exists", u.id);
      }
      return Status::Ok();
    });
  }

  Result<UploadRecord> GetUpload(std::string_view id) override {
    return Read(false, [&](Conn& c) -> Result<UploadRecord> {
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare(BERTH_SELECT_UPLOADS "WHERE u.id = ?1"));
      s.BindText(1, id);
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return UploadUnknown(id);
      return ReadUploadRow(s);
    });
  }

  Result<UploadRecord> LeaseUpload(std::string_view id, std::string_view token, int64_t now_ms,
                                   int64_t ttl_ms) override {
    UploadRecord out;
    Status st = Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      {
        BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare(BERTH_SELECT_UPLOADS "WHERE u.id = ?1"));
        s.BindText(1, id);
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return UploadUnknown(id);
        out = ReadUploadRow(s);
      }
      if (!out.lease_token.empty() && out.lease_token != token && out.lease_expires_ms > now_ms) {
        return UploadBusy(id, out.offset);
      }
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("UPDATE uploads SET lease_token = ?2, lease_expires_at = ?3 "
                            "WHERE id = ?1"));
      s.BindText(1, id).BindText(2, token).BindInt(3, now_ms + ttl_ms);
      BERTH_RETURN_IF_ERROR(s.Run());
      out.lease_token = std::string(token);
      out.lease_expires_ms = now_ms + ttl_ms;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return out;
  }

  Status AdvanceUpload(std::string_view id, std::string_view token, uint64_t expected_offset,
                       const UploadProgress& p) override {
    return Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("UPDATE uploads SET byte_offset = ?4, hash_state = ?5, "
                            "blob_state = ?6, updated_at = ?7, "
                            "lease_token = CASE WHEN ?8 THEN '' ELSE lease_token END, "
                            "lease_expires_at = CASE WHEN ?8 THEN 0 ELSE lease_expires_at END "
                            "WHERE id = ?1 AND lease_token = ?2 AND byte_offset = ?3"));
      s.BindText(1, id)
          .BindText(2, token)
          .BindInt(3, static_cast<int64_t>(expected_offset))
          .BindInt(4, static_cast<int64_t>(p.offset))
          .BindText(5, p.hash_state)
          .BindText(6, p.blob_state)
          .BindInt(7, p.updated_at_ms)
          .BindInt(8, p.release ? 1 : 0);
      BERTH_RETURN_IF_ERROR(s.Run());
      if (c.Changes() == 1) return Status::Ok();
      BERTH_ASSIGN_OR_RETURN(Stmt q, c.Prepare("SELECT byte_offset FROM uploads WHERE id = ?1"));
      q.BindText(1, id);
      BERTH_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) return UploadUnknown(id);
      std::string offset = std::to_string(q.Int(0));
      return Status(Code::kRangeInvalid,
                    "upload " + std::string(id) + " moved on meanwhile (another writer took it " +
                        "over); it now holds " + offset + " bytes",
                    offset);
    });
  }

  Status ReleaseUpload(std::string_view id, std::string_view token) override {
    return Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("UPDATE uploads SET lease_token = '', lease_expires_at = 0 "
                            "WHERE id = ?1 AND lease_token = ?2"));
      s.BindText(1, id).BindText(2, token);
      return s.Run();
    });
  }

  // ---- settings and leases

  Result<std::string> GetSetting(std::string_view name) override {
    return Read(false, [&](Conn& c) -> Result<std::string> {
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT value FROM settings WHERE name = ?1"));
      s.BindText(1, name);
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Status::NotFound("setting " + std::string(name) + " is not set");
      return s.Blob(0);
    });
  }

  Status SwapSetting(std::string_view name, const std::optional<std::string>& expected,
                     std::string_view value) override {
    return Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      if (!expected.has_value()) {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("INSERT INTO settings(name, value) VALUES(?1, ?2) "
                              "ON CONFLICT(name) DO NOTHING"));
        s.BindText(1, name).BindBlob(2, value);
        BERTH_RETURN_IF_ERROR(s.Run());
      } else {
        BERTH_ASSIGN_OR_RETURN(
            Stmt s, c.Prepare("UPDATE settings SET value = ?3 WHERE name = ?1 AND value = ?2"));
        s.BindText(1, name).BindBlob(2, *expected).BindBlob(3, value);
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      if (c.Changes() == 1) return Status::Ok();
      return Status(Code::kAborted,
                    "setting " + std::string(name) + " was changed by someone else; read it again");
    });
  }

  Result<bool> AcquireLease(std::string_view name, std::string_view token, int64_t now_ms,
                            int64_t ttl_ms) override {
    bool held = false;
    Status st = Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("INSERT INTO leases(name, token, expires_at) VALUES(?1, ?2, ?4) "
                            "ON CONFLICT(name) DO UPDATE SET token = ?2, expires_at = ?4 "
                            "WHERE leases.token = ?2 OR leases.expires_at <= ?3"));
      s.BindText(1, name).BindText(2, token).BindInt(3, now_ms).BindInt(4, now_ms + ttl_ms);
      BERTH_RETURN_IF_ERROR(s.Run());
      held = c.Changes() == 1;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return held;
  }

  Status DeleteUpload(std::string_view id) override {
    return Write(Reads::kUnchanged, [&](Conn& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM uploads WHERE id = ?1"));
      s.BindText(1, id);
      BERTH_RETURN_IF_ERROR(s.Run());
      if (c.Changes() == 0) return UploadUnknown(id);
      return Status::Ok();
    });
  }

  Result<std::vector<UploadRecord>> ListStaleUploads(int64_t updated_before_ms,
                                                     size_t limit) override {
    return Read(false, [&](Conn& c) -> Result<std::vector<UploadRecord>> {
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare(BERTH_SELECT_UPLOADS "WHERE u.updated_at < ?1 "
                                                 "ORDER BY u.updated_at, u.id LIMIT ?2"));
      s.BindInt(1, updated_before_ms).BindInt(2, ClampLimit(limit));
      std::vector<UploadRecord> out;
      for (;;) {
        BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        out.push_back(ReadUploadRow(s));
      }
      return out;
    });
  }

 private:
  static constexpr std::string_view kManifestExists =
      "SELECT 1 FROM manifests WHERE repo_id = ?1 AND digest = ?2";
  static UploadRecord ReadUploadRow(const Stmt& s) {
    UploadRecord u;
    u.id = s.Text(0);
    u.repository = s.Text(1);
    u.offset = static_cast<uint64_t>(s.Int(2));
    u.created_at_ms = s.Int(3);
    u.updated_at_ms = s.Int(4);
    u.hash_state = s.Text(5);
    u.blob_state = s.Text(6);
    u.lease_token = s.Text(7);
    u.lease_expires_ms = s.Int(8);
    return u;
  }
  static Status UploadBusy(std::string_view id, uint64_t offset) {
    return Status(Code::kAborted,
                  "upload " + std::string(id) + " is being written by another request",
                  std::to_string(offset));
  }

  static Result<std::vector<std::string>> Column(Stmt& s) {
    std::vector<std::string> out;
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return out;
      out.push_back(s.Text(0));
    }
  }

  static Status Link(Conn& c, int64_t repo, const oci::Digest& digest, int64_t created) {
    BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO repo_blobs(repo_id, digest, created_at) "
                                             "VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING"));
    s.BindInt(1, repo).BindText(2, digest.str()).BindInt(3, created);
    return s.Run();
  }

  // ---- reads: any pooled reader connection; `snapshot` wraps several statements in
  // one read transaction so that they see the same committed state.

  struct ReaderReturn {
    SqliteMetadataStore* store;
    void operator()(Conn* c) const { store->ReleaseReader(std::unique_ptr<Conn>(c)); }
  };
  using ReaderLease = std::unique_ptr<Conn, ReaderReturn>;

  Result<ReaderLease> AcquireReader() {
    {
      std::lock_guard lock(readers_mu_);
      if (!idle_readers_.empty()) {
        Conn* c = idle_readers_.back().release();
        idle_readers_.pop_back();
        return ReaderLease(c, ReaderReturn{this});
      }
    }
    BERTH_ASSIGN_OR_RETURN(auto conn, Conn::Open(path_, Conn::Role::kReader));
    return ReaderLease(conn.release(), ReaderReturn{this});
  }

  void ReleaseReader(std::unique_ptr<Conn> c) {
    // A connection left inside a transaction (a failed COMMIT) is not reused.
    if (c->InTransaction()) return;
    std::lock_guard lock(readers_mu_);
    if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(c));
  }

  template <typename Fn>
  auto Read(bool snapshot, Fn&& fn) -> decltype(fn(std::declval<Conn&>())) {
    BERTH_ASSIGN_OR_RETURN(ReaderLease lease, AcquireReader());
    Conn& c = *lease;
    if (!snapshot) return fn(c);
    BERTH_RETURN_IF_ERROR(c.Exec("BEGIN"));
    auto result = fn(c);
    if (!c.Exec("COMMIT").ok()) (void)c.Exec("ROLLBACK");
    return result;
  }

  // Runs `sql` (a BERTH_MANIFEST_BY_* query: a literal, as Conn::Prepare needs) for
  // `ref`, a digest or a tag.
  template <typename Ref>
  Result<ManifestRecord> ReadManifest(std::string_view sql, std::string_view repository,
                                      const Ref& ref) {
    return Read(false, [&](Conn& c) -> Result<ManifestRecord> {
      BERTH_ASSIGN_OR_RETURN(Stmt s, c.Prepare(sql));
      s.BindText(1, repository).BindText(2, RefText(ref));
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return NameUnknown(repository);
      if (s.Int(0) == 0) return RefUnknown(repository, ref);
      return ReadManifestRow(s, 1, repository);
    });
  }
  static std::string_view RefText(const oci::Digest& d) { return d.str(); }
  static std::string_view RefText(std::string_view tag) { return tag; }
  static Status RefUnknown(std::string_view repo, const oci::Digest& d) {
    return ManifestUnknown(repo, d);
  }
  static Status RefUnknown(std::string_view repo, std::string_view tag) {
    return TagUnknown(repo, tag);
  }

  // ---- writes: group commit (see the top of the file).

  // Whether a write may change what GetRepository, GetManifest and GetManifestByTag
  // return, and so must move the read epoch.
  enum class Reads : uint8_t { kMayChange, kUnchanged };

  struct PendingWrite {
    const WriteFn* fn = nullptr;
    Reads reads = Reads::kMayChange;
    Status status;
    bool done = false;
    std::condition_variable cv;
  };

  Status Write(const WriteFn& fn) { return Write(Reads::kMayChange, fn); }

  Status Write(Reads reads, const WriteFn& fn) {
    PendingWrite w;
    w.fn = &fn;
    w.reads = reads;
    std::unique_lock lock(write_mu_);
    write_queue_.push_back(&w);
    w.cv.wait(lock, [&] { return w.done || write_queue_.front() == &w; });
    if (w.done) return w.status;
    // Leader: only the head of the queue touches writer_.
    size_t n = std::min(write_queue_.size(), kMaxBatch);
    std::vector<PendingWrite*> batch(write_queue_.begin(), write_queue_.begin() + n);
    lock.unlock();
    bool moves_epoch = std::any_of(batch.begin(), batch.end(), [](const PendingWrite* p) {
      return p->reads == Reads::kMayChange;
    });
    // Odd before the transaction can change anything, even (and new) once it is over,
    // before any writer of the batch returns (see ReadEpoch).
    if (moves_epoch) epoch_.fetch_add(1);
    RunBatch(batch);
    if (moves_epoch) epoch_.fetch_add(1);
    lock.lock();
    for (size_t i = 0; i < n; ++i) {
      PendingWrite* p = write_queue_.front();
      write_queue_.pop_front();
      p->done = true;
      if (p != &w) p->cv.notify_one();
    }
    if (!write_queue_.empty()) write_queue_.front()->cv.notify_one();
    return w.status;
  }

  void RunBatch(const std::vector<PendingWrite*>& batch) {
    Conn& c = *writer_;
    Status begin = c.Exec("BEGIN IMMEDIATE");
    if (!begin.ok()) {
      for (PendingWrite* p : batch) p->status = begin;
      return;
    }
    if (batch.size() == 1) {
      PendingWrite* p = batch[0];
      p->status = (*p->fn)(c);
      if (!p->status.ok()) {
        if (c.InTransaction()) (void)c.Exec("ROLLBACK");
        return;
      }
      Status commit = c.Exec("COMMIT");
      if (!commit.ok()) {
        if (c.InTransaction()) (void)c.Exec("ROLLBACK");
        p->status = commit;
      }
      return;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      PendingWrite* p = batch[i];
      Status st = c.Exec("SAVEPOINT w");
      if (st.ok()) {
        st = (*p->fn)(c);
        if (!st.ok() && c.InTransaction()) (void)c.Exec("ROLLBACK TO w");
        if (c.InTransaction()) (void)c.Exec("RELEASE w");
      }
      p->status = st;
      if (!c.InTransaction()) {
        // SQLite rolled the whole transaction back (I/O error, disk full): everything
        // in the batch is lost, including the closures that had succeeded.
        Status lost = st.ok() ? Status::IoError("metadata store: transaction rolled back") : st;
        for (PendingWrite* q : batch) {
          if (q->status.ok() || q == p) q->status = lost;
        }
        for (size_t j = i + 1; j < batch.size(); ++j) batch[j]->status = lost;
        return;
      }
    }
    Status commit = c.Exec("COMMIT");
    if (!commit.ok()) {
      if (c.InTransaction()) (void)c.Exec("ROLLBACK");
      for (PendingWrite* p : batch) {
        if (p->status.ok()) p->status = commit;
      }
    }
  }

  const fs::path path_;

  std::mutex write_mu_;
  std::deque<PendingWrite*> write_queue_;  // guarded by write_mu_
  std::unique_ptr<Conn> writer_;           // used only by the head of write_queue_
  // The read epoch; moved only by the head of write_queue_. Sequentially consistent.
  std::atomic<uint64_t> epoch_{0};
  std::unique_ptr<Checkpointer> checkpointer_;

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Conn>> idle_readers_;  // guarded by readers_mu_
};

#undef BERTH_SELECT_UPLOADS
#undef BERTH_MANIFEST_COLUMNS
#undef BERTH_MANIFEST_PULL_COLUMNS
#undef BERTH_IMAGE_COLUMNS
#undef BERTH_REPOSITORY_COLUMNS

Status Migrate(Conn& c) {
  BERTH_RETURN_IF_ERROR(c.Exec("BEGIN IMMEDIATE"));
  auto run = [&]() -> Status {
    BERTH_RETURN_IF_ERROR(
        c.ExecScript("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"));
    int64_t current = 0;
    {
      BERTH_ASSIGN_OR_RETURN(Stmt s,
                             c.Prepare("SELECT coalesce(max(version), 0) FROM schema_migrations"));
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) current = s.Int(0);
    }
    if (current > kLatestVersion) {
      return Status::FailedPrecondition("metadata store: database schema version " +
                                        std::to_string(current) +
                                        " is newer than this binary supports (" +
                                        std::to_string(kLatestVersion) + "); upgrade berth");
    }
    for (const Migration& m : kMigrations) {
      if (m.version <= current) continue;
      BERTH_RETURN_IF_ERROR(c.ExecScript(m.sql));
      BERTH_ASSIGN_OR_RETURN(
          Stmt s, c.Prepare("INSERT INTO schema_migrations(version, applied_at) VALUES(?1, ?2)"));
      s.BindInt(1, m.version).BindInt(2, NowMillis());
      BERTH_RETURN_IF_ERROR(s.Run());
    }
    return Status::Ok();
  };
  Status st = run();
  if (!st.ok()) {
    if (c.InTransaction()) (void)c.Exec("ROLLBACK");
    return st;
  }
  return c.Exec("COMMIT");
}

}  // namespace

Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadataStore(const std::filesystem::path& path,
                                                               const SqliteOptions& options) {
  if (sqlite3_threadsafe() == 0) {
    return Status::Internal("metadata store: SQLite was built without thread support");
  }
  if (path.empty()) return Status::InvalidArgument("metadata store path is empty");
  std::error_code ec;
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      return Status::FromErrno("create directory " + path.parent_path().string(), ec.value());
    }
  }
  BERTH_ASSIGN_OR_RETURN(auto writer, Conn::Open(path, Conn::Role::kWriter));
  BERTH_RETURN_IF_ERROR(Migrate(*writer));
  BERTH_ASSIGN_OR_RETURN(auto checkpoint_conn, Conn::Open(path, Conn::Role::kCheckpointer));
  return std::unique_ptr<MetadataStore>(std::make_unique<SqliteMetadataStore>(
      path, std::move(writer), std::move(checkpoint_conn), options));
}

}  // namespace berth::storage
