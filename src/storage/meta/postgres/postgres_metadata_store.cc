// PostgreSQL MetadataStore: the same data model as the SQLite store, shared by every
// `berth serve` node.
//
// Isolation: READ COMMITTED with explicit row locks, not SERIALIZABLE. Every rule the
// store enforces reduces to rows it can lock, taken in one order (repository, tag,
// referenced rows, the manifest itself):
//  - a write to a repository holds its row FOR KEY SHARE, and DeleteRepository holds it
//    FOR UPDATE, so a deletion waits for writes in flight and they fail with
//    kNameUnknown after it (never a row pointing at a deleted repository);
//  - PutManifest locks the tag row FOR UPDATE and the links and child manifests it
//    references FOR KEY SHARE, so UnlinkBlob and DeleteManifest wait for it and then see
//    its rows; a tag that does not exist yet is claimed by INSERT ... ON CONFLICT, whose
//    DO UPDATE refuses to move an immutable tag, so of two nodes pushing a new immutable
//    tag one wins and the other gets kTagInvalid, in one pass;
//  - DeleteManifest and RemoveTag lock the manifest FOR UPDATE before they look for
//    what still references it;
//  - upload sessions, settings and leases are single-row compare-and-set statements.
// Under SERIALIZABLE the hot case, many pushes of one tag, would abort all but one
// transaction and retry them; here they queue on the tag row and each runs once.
// Deadlocks (possible between, e.g., a push moving a tag onto an index and a deletion
// of one of its children) and serialization failures are rolled back by the server and
// retried. Reads are single statements, so each sees one snapshot (no torn reads).
//
// Round trips: libpq pipeline mode. A write opens its transaction in the round trip of
// its first statements (BEGIN and txid_current() ride along), sends what it can in one
// batch, and commits in a second: PutManifest is 2 round trips whatever the number of
// references (its checks, the manifest with all reference rows in one multi-row
// INSERT over unnest(), and the tag, go in one batch; a failed check rolls it all back).
// There is no group commit in the client as in the SQLite store: concurrent commits on
// separate connections already share WAL flushes in the server, and batching
// unrelated writes in one transaction would make them wait on each other's row locks.
// Measured (PostgresMetadataStoreTest.DISABLED_CommitThroughput, loopback, 2 busy
// cores, fsync ~4 ms): CommitBlob 244/s on one thread, 1,453/s on 8 (the server's WAL
// flushes are shared six ways); with synchronous_commit off, the ceiling, 2,692/s on 8.
// One thread is bound by its own fsync, which no batching in the client can hide.
//
// Connections: a bounded pool (pg_connection.h), statements prepared once per
// connection. A lost connection (the server restarted, failed over, or killed the
// session) is discarded and the operation retried once on a new connection, waiting up
// to reconnect_timeout for the server to come back, when that is safe:
//  - a read, always;
//  - a write whose COMMIT was not sent: the server rolls back what a lost session left;
//  - a write whose COMMIT was sent but not answered: a new session asks the server
//    whether it committed. Every write transaction records, in the round trip of its
//    COMMIT, its id under its session's key in commit_markers; the marker is there if
//    and only if the transaction committed. Committed: the write succeeded. Not there,
//    and the old session gone: it is run again. The old session still alive (the
//    network failed, not the server): it is ended, then the marker decides. Unknown (no
//    answer within reconnect_timeout): the caller gets kUnavailable, never a false
//    success. txid_status() alone would not do: after a crash the server hands out
//    again the transaction ids that never reached its WAL, so "committed" could be
//    another transaction's answer.
// So a restart under load, or a crash, loses no acknowledged write and applies none
// twice.
//
// ReadEpoch() stays nullopt (the default): other nodes write to the same database, so
// this process cannot see when data changes, and the caches above the store are off.
//
// Schema: versioned migrations in kMigrations, applied at open in one transaction
// holding an advisory lock (nodes starting together apply them once) and recorded in
// schema_migrations. Version numbers are those of the SQLite store's model: a
// PostgreSQL database starts at 3, the model SQLite reached in three steps, so that
// one number means one model on both. Text keys are COLLATE "C", so that ordering and
// keyset pagination are by bytes, as on SQLite, whatever the database's locale.
#include "storage/meta/postgres/postgres_metadata_store.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "storage/meta/postgres/pg_connection.h"

namespace berth::storage {
namespace {

using pg::Connection;
using pg::ConnectionPool;
using pg::Param;
using pg::Rows;
using pg::Statement;
using Patience = ConnectionPool::Patience;

// Deadlocks and serialization failures are retried this many times.
constexpr int kMaxConflictRetries = 8;
// pg_advisory_xact_lock key held while migrating ("berth" in ASCII).
constexpr int64_t kMigrationLockKey = 0x6265727468;

// ---------------------------------------------------------------------------------------
// Schema migrations. Append new steps; never edit a released one.

struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    // 3: the model of the SQLite store's versions 1 to 3, in one step, plus
    // commit_markers (this backend's own bookkeeping, no part of the model). The
    // foreign keys cascade, and the store relies on it: deleting a repository or a
    // manifest removes the rows that hang from it.
    {3, R"sql(
CREATE TABLE repositories (
  id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- never reused
  name                      text COLLATE "C" NOT NULL UNIQUE,
  created_at                bigint NOT NULL,
  account_id                text COLLATE "C" NOT NULL DEFAULT '',
  tag_mutability            text NOT NULL DEFAULT 'MUTABLE',
  tag_mutability_exclusions text[] NOT NULL DEFAULT '{}',  -- wildcard filters
  scan_on_push              boolean NOT NULL DEFAULT false,
  encryption_type           text NOT NULL DEFAULT 'AES256',
  kms_key                   text NOT NULL DEFAULT '',
  policy                    text  -- NULL: no policy
);
CREATE INDEX repositories_by_account ON repositories(account_id, name);

CREATE TABLE repository_tags (
  repo_id bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  key     text COLLATE "C" NOT NULL,
  value   text NOT NULL,
  PRIMARY KEY (repo_id, key)
);

-- Every blob the registry holds, whatever repository (one copy per digest).
CREATE TABLE blobs (
  digest     text COLLATE "C" PRIMARY KEY,
  size       bigint NOT NULL,
  created_at bigint NOT NULL
);

-- Which repository may see which blob.
CREATE TABLE repo_blobs (
  repo_id    bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  digest     text COLLATE "C" NOT NULL REFERENCES blobs(digest),
  created_at bigint NOT NULL,
  PRIMARY KEY (repo_id, digest)
);
CREATE INDEX repo_blobs_by_digest ON repo_blobs(digest);

CREATE TABLE manifests (
  repo_id        bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  digest         text COLLATE "C" NOT NULL,
  media_type     text NOT NULL,
  artifact_type  text NOT NULL DEFAULT '',
  bytes          bytea NOT NULL,
  size           bigint NOT NULL,
  pushed_at      bigint NOT NULL,
  subject        text COLLATE "C",
  annotations    text NOT NULL DEFAULT '{}',
  image_size     bigint NOT NULL DEFAULT 0,
  last_pulled_at bigint,  -- NULL: no pull recorded
  PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests(repo_id, subject, digest)
  WHERE subject IS NOT NULL;

-- Image manifest -> blobs (config and layers).
CREATE TABLE manifest_blobs (
  repo_id         bigint NOT NULL,
  manifest_digest text COLLATE "C" NOT NULL,
  blob_digest     text COLLATE "C" NOT NULL,
  PRIMARY KEY (repo_id, manifest_digest, blob_digest),
  FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests(repo_id, digest)
    ON DELETE CASCADE
);
CREATE INDEX manifest_blobs_by_blob ON manifest_blobs(blob_digest);

-- Index -> child manifests.
CREATE TABLE manifest_children (
  repo_id      bigint NOT NULL,
  index_digest text COLLATE "C" NOT NULL,
  child_digest text COLLATE "C" NOT NULL,
  PRIMARY KEY (repo_id, index_digest, child_digest),
  FOREIGN KEY (repo_id, index_digest) REFERENCES manifests(repo_id, digest)
    ON DELETE CASCADE
);
CREATE INDEX manifest_children_by_child ON manifest_children(repo_id, child_digest);

CREATE TABLE tags (
  repo_id    bigint NOT NULL,
  tag        text COLLATE "C" NOT NULL,
  digest     text COLLATE "C" NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (repo_id, tag),
  FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);
-- With the tag: TagsOf pages through a manifest's tags in order.
CREATE INDEX tags_by_digest ON tags(repo_id, digest, tag);

CREATE TABLE uploads (
  id               text COLLATE "C" PRIMARY KEY,
  repo_id          bigint NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  byte_offset      bigint NOT NULL,
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL,
  hash_state       bytea NOT NULL DEFAULT '',
  blob_state       bytea NOT NULL DEFAULT '',
  lease_token      text NOT NULL DEFAULT '',
  lease_expires_at bigint NOT NULL DEFAULT 0
);
CREATE INDEX uploads_by_updated_at ON uploads(updated_at, id);
CREATE INDEX uploads_by_repo ON uploads(repo_id);

-- Registry-wide values every node must agree on (secrets, identities).
CREATE TABLE settings (
  name  text COLLATE "C" PRIMARY KEY,
  value bytea NOT NULL
);

-- Leases of periodic jobs (one node at a time).
CREATE TABLE leases (
  name       text COLLATE "C" PRIMARY KEY,
  token      text NOT NULL,
  expires_at bigint NOT NULL
);

-- The last transaction each client session committed, so that a commit whose answer
-- was lost can be looked up (one row per session, rewritten in place).
CREATE TABLE commit_markers (
  session bigint PRIMARY KEY,
  xid     bigint NOT NULL,
  at      timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
)sql"},
};

constexpr int kLatestVersion = kMigrations[std::size(kMigrations) - 1].version;

Status NewerSchema(int64_t found) {
  return Status::FailedPrecondition("metadata store: database schema is version " +
                                    std::to_string(found) + ", this berth knows up to " +
                                    std::to_string(kLatestVersion) + "; upgrade berth");
}

// ---------------------------------------------------------------------------------------
// Domain helpers (the same errors and wording as the SQLite store).

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

Status BlobUnknown(const oci::Digest& digest) {
  return Status(Code::kBlobUnknown, "blob " + digest.str() + " not found", digest.str());
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

Status TagImmutable(std::string_view repo, std::string_view tag) {
  return Status(Code::kTagInvalid,
                "tag " + std::string(tag) + " of repository " + std::string(repo) +
                    " is immutable and points at another manifest",
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

Result<std::vector<oci::Digest>> ParseDigests(const std::vector<std::string>& list) {
  std::vector<oci::Digest> out;
  out.reserve(list.size());
  for (const std::string& s : list) {
    BERTH_ASSIGN_OR_RETURN(oci::Digest d, ParseStoredDigest(s));
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<std::string_view> DigestStrings(const std::vector<oci::Digest>& digests) {
  std::vector<std::string_view> out;
  out.reserve(digests.size());
  for (const oci::Digest& d : digests) out.push_back(d.str());
  return out;
}

// Tag mutability is stored under ECR's names, so the column reads naturally.
std::string_view MutabilityName(TagMutability m) {
  switch (m) {
    case TagMutability::kMutable:
      return "MUTABLE";
    case TagMutability::kImmutable:
      return "IMMUTABLE";
    case TagMutability::kImmutableWithExclusion:
      return "IMMUTABLE_WITH_EXCLUSION";
    case TagMutability::kMutableWithExclusion:
      return "MUTABLE_WITH_EXCLUSION";
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

// Resource tags as two parallel arrays for unnest(), keys unique: a repeated key keeps
// its last value, as setting them one after another would.
struct TagArrays {
  std::vector<std::string_view> keys;
  std::vector<std::string_view> values;
};
TagArrays SplitResourceTags(const std::vector<ResourceTag>& tags) {
  std::map<std::string_view, std::string_view> unique;
  for (const ResourceTag& t : tags) unique[t.key] = t.value;
  TagArrays out;
  for (const auto& [k, v] : unique) {
    out.keys.push_back(k);
    out.values.push_back(v);
  }
  return out;
}

// The repository id of the name in $1, in statements that take it by name (so that
// they can ride in the round trip that locks it).
#define BERTH_REPO_ID "(SELECT id FROM repositories WHERE name = $1)"

// Columns ReadRepositoryRow expects, starting at `first`; `r` is the repositories table.
#define BERTH_REPOSITORY_COLUMNS                                                             \
  "r.name, r.created_at, r.account_id, r.tag_mutability, r.tag_mutability_exclusions, "      \
  "r.scan_on_push, r.encryption_type, r.kms_key, r.policy, "                                 \
  "(SELECT array_agg(t.key ORDER BY t.key) FROM repository_tags t WHERE t.repo_id = r.id), " \
  "(SELECT array_agg(t.value ORDER BY t.key) FROM repository_tags t WHERE t.repo_id = r.id)"

Result<RepositoryRecord> ReadRepositoryRow(const Rows& rows, int row, int first) {
  RepositoryRecord r;
  r.name = rows.Text(row, first);
  r.created_at_ms = rows.Int(row, first + 1);
  r.account_id = rows.Text(row, first + 2);
  BERTH_ASSIGN_OR_RETURN(r.tag_mutability.mode, ParseMutability(rows.Text(row, first + 3)));
  BERTH_ASSIGN_OR_RETURN(r.tag_mutability.exclusion_filters, rows.TextArray(row, first + 4));
  r.scan_on_push = rows.Bool(row, first + 5);
  r.encryption_type = rows.Text(row, first + 6);
  r.kms_key = rows.Text(row, first + 7);
  if (!rows.IsNull(row, first + 8)) r.policy = rows.Text(row, first + 8);
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> keys, rows.TextArray(row, first + 9));
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> values, rows.TextArray(row, first + 10));
  if (keys.size() != values.size()) {
    return Status::Corruption("metadata store: repository tags do not pair up");
  }
  for (size_t i = 0; i < keys.size(); ++i) r.tags.push_back({keys[i], values[i]});
  return r;
}

// The manifest columns ReadManifestRow expects; `m` is the manifests table.
#define BERTH_MANIFEST_COLUMNS                                                          \
  "m.digest, m.media_type, m.artifact_type, m.bytes, m.size, m.pushed_at, m.subject, "  \
  "m.annotations, "                                                                     \
  "(SELECT array_agg(b.blob_digest ORDER BY b.blob_digest) FROM manifest_blobs b "      \
  "  WHERE b.repo_id = m.repo_id AND b.manifest_digest = m.digest), "                   \
  "(SELECT array_agg(c.child_digest ORDER BY c.child_digest) FROM manifest_children c " \
  "  WHERE c.repo_id = m.repo_id AND c.index_digest = m.digest), "                      \
  "m.image_size"

// BERTH_MANIFEST_COLUMNS for a pull: no references (NULL reads as an empty list).
#define BERTH_MANIFEST_PULL_COLUMNS                                                    \
  "m.digest, m.media_type, m.artifact_type, m.bytes, m.size, m.pushed_at, m.subject, " \
  "m.annotations, NULL::text[], NULL::text[], m.image_size"

Result<ManifestRecord> ReadManifestRow(const Rows& rows, int first, std::string_view repo) {
  ManifestRecord m;
  m.repository = std::string(repo);
  BERTH_ASSIGN_OR_RETURN(m.digest, ParseStoredDigest(rows.Text(0, first)));
  m.media_type = rows.Text(0, first + 1);
  m.artifact_type = rows.Text(0, first + 2);
  m.bytes = rows.Text(0, first + 3);
  m.size = rows.Int(0, first + 4);
  m.pushed_at_ms = rows.Int(0, first + 5);
  if (!rows.IsNull(0, first + 6)) {
    BERTH_ASSIGN_OR_RETURN(m.subject, ParseStoredDigest(rows.Text(0, first + 6)));
  }
  m.annotations_json = rows.Text(0, first + 7);
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> blobs, rows.TextArray(0, first + 8));
  BERTH_ASSIGN_OR_RETURN(m.blob_refs, ParseDigests(blobs));
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> children, rows.TextArray(0, first + 9));
  BERTH_ASSIGN_OR_RETURN(m.child_refs, ParseDigests(children));
  m.image_size = rows.Int(0, first + 10);
  return m;
}

// The columns ReadImageRow expects, from `first` (a listing: no bytes, no references),
// then the manifest's tags.
#define BERTH_IMAGE_COLUMNS                                                                  \
  "m.digest, m.media_type, m.artifact_type, m.size, m.pushed_at, m.subject, m.annotations, " \
  "m.image_size, m.last_pulled_at, "                                                         \
  "(SELECT array_agg(t.tag ORDER BY t.tag) FROM tags t "                                     \
  "  WHERE t.repo_id = m.repo_id AND t.digest = m.digest)"

Result<ImageRecord> ReadImageRow(const Rows& rows, int row, int first, std::string_view repo) {
  ImageRecord img;
  ManifestRecord& m = img.manifest;
  m.repository = std::string(repo);
  BERTH_ASSIGN_OR_RETURN(m.digest, ParseStoredDigest(rows.Text(row, first)));
  m.media_type = rows.Text(row, first + 1);
  m.artifact_type = rows.Text(row, first + 2);
  m.size = rows.Int(row, first + 3);
  m.pushed_at_ms = rows.Int(row, first + 4);
  if (!rows.IsNull(row, first + 5)) {
    BERTH_ASSIGN_OR_RETURN(m.subject, ParseStoredDigest(rows.Text(row, first + 5)));
  }
  m.annotations_json = rows.Text(row, first + 6);
  m.image_size = rows.Int(row, first + 7);
  img.last_pulled_at_ms = rows.Int(row, first + 8);
  BERTH_ASSIGN_OR_RETURN(img.tags, rows.TextArray(row, first + 9));
  return img;
}

// The upload columns ReadUploadRow expects.
#define BERTH_SELECT_UPLOADS                                                       \
  "SELECT u.id, r.name, u.byte_offset, u.created_at, u.updated_at, u.hash_state, " \
  "u.blob_state, u.lease_token, u.lease_expires_at "                               \
  "FROM uploads u JOIN repositories r ON r.id = u.repo_id "

UploadRecord ReadUploadRow(const Rows& rows, int row) {
  UploadRecord u;
  u.id = rows.Text(row, 0);
  u.repository = rows.Text(row, 1);
  u.offset = static_cast<uint64_t>(rows.Int(row, 2));
  u.created_at_ms = rows.Int(row, 3);
  u.updated_at_ms = rows.Int(row, 4);
  u.hash_state = rows.Text(row, 5);
  u.blob_state = rows.Text(row, 6);
  u.lease_token = rows.Text(row, 7);
  u.lease_expires_ms = rows.Int(row, 8);
  return u;
}

// A column of text as a list (rows whose value is NULL are skipped: the LEFT JOINs
// below return one NULL row for an existing repository with nothing in it).
std::vector<std::string> TextColumn(const Rows& rows, int col) {
  std::vector<std::string> out;
  for (int i = 0; i < rows.size(); ++i) {
    if (!rows.IsNull(i, col)) out.push_back(rows.Text(i, col));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Transactions.

// One write transaction on a leased connection. Its first Run also opens it: BEGIN and
// txid_current() ride in the same round trip, so the transaction's id is known before
// COMMIT is sent (see CommitWentThrough).
class Tx {
 public:
  explicit Tx(Connection& c) : c_(c) {}

  Result<std::vector<Rows>> Run(std::vector<Statement> statements) {
    const bool first = !began_;
    if (first) {
      statements.insert(statements.begin(),
                        {Statement{"BEGIN", {}}, Statement{"SELECT txid_current()", {}}});
      began_ = true;
    }
    BERTH_ASSIGN_OR_RETURN(std::vector<Rows> rows, c_.Run(statements));
    if (first) {
      xid_ = rows[1].Int(0, 0);
      rows.erase(rows.begin(), rows.begin() + 2);
    }
    return rows;
  }

  Result<Rows> Query(std::string_view sql, std::vector<Param> params) {
    std::vector<Statement> one;
    one.push_back({sql, std::move(params)});
    BERTH_ASSIGN_OR_RETURN(std::vector<Rows> rows, Run(std::move(one)));
    return std::move(rows[0]);
  }

  // Marks the transaction as this session's last commit and commits, in one round trip.
  Status Commit() {
    if (!began_) return Status::Ok();  // nothing was run
    commit_sent_ = true;
    std::vector<Statement> batch;
    batch.push_back(
        {"INSERT INTO commit_markers(session, xid) VALUES ($1, $2) "
         "ON CONFLICT (session) DO UPDATE SET xid = excluded.xid, at = now()",
         {Param::Int(c_.session_key()), Param::Int(xid_)}});
    batch.push_back({"COMMIT", {}});
    BERTH_ASSIGN_OR_RETURN(std::vector<Rows> done, c_.Run(batch));
    // COMMIT of a transaction that failed rolls it back and says so without an error.
    if (std::string_view(done[1].command()) != "COMMIT") {
      return Status(Code::kAborted, "metadata store: the transaction was rolled back");
    }
    return Status::Ok();
  }

  bool commit_sent() const { return commit_sent_; }
  int64_t xid() const { return xid_; }

 private:
  Connection& c_;
  bool began_ = false;
  bool commit_sent_ = false;
  int64_t xid_ = 0;
};

// ---------------------------------------------------------------------------------------

class PostgresMetadataStore final : public MetadataStore {
 public:
  PostgresMetadataStore(const PostgresOptions& options, std::unique_ptr<Connection> first)
      : reconnect_timeout_(options.reconnect_timeout_ms),
        pool_(pg::PoolOptions{{options.url, options.connect_timeout_s},
                              options.max_connections,
                              std::chrono::milliseconds(options.acquire_timeout_ms),
                              std::chrono::milliseconds(options.reconnect_timeout_ms)},
              std::move(first)) {}

  // For /readyz: fails at once (no waiting for a server that is away), and when another
  // node has moved the schema past what this binary knows.
  Status Check() override {
    return Read(Patience::kFailFast, [](Connection& c) -> Status {
      BERTH_ASSIGN_OR_RETURN(Rows r, c.Query("SELECT max(version) FROM schema_migrations"));
      int64_t version = r.Int(0, 0);
      if (version > kLatestVersion) return NewerSchema(version);
      if (version != kLatestVersion) {
        return Status::Internal("metadata store: unexpected schema version " +
                                std::to_string(version));
      }
      return Status::Ok();
    });
  }

  // ---- repositories

  Status CreateRepository(const RepositoryRecord& repo) override {
    TagArrays tags = SplitResourceTags(repo.tags);
    return Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Rows r,
          tx.Query(
              "WITH r AS ("
              "  INSERT INTO repositories(name, created_at, account_id, tag_mutability, "
              "    tag_mutability_exclusions, scan_on_push, encryption_type, kms_key, policy) "
              "  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
              "  ON CONFLICT (name) DO NOTHING RETURNING id), "
              "t AS (INSERT INTO repository_tags(repo_id, key, value) "
              "  SELECT r.id, x.k, x.v FROM r, unnest($10::text[], $11::text[]) AS x(k, v)) "
              "SELECT id FROM r",
              {Param::Text(repo.name), Param::Int(repo.created_at_ms), Param::Text(repo.account_id),
               Param::Text(MutabilityName(repo.tag_mutability.mode)),
               Param::TextArray(repo.tag_mutability.exclusion_filters),
               Param::Bool(repo.scan_on_push), Param::Text(repo.encryption_type),
               Param::Text(repo.kms_key),
               repo.policy.has_value() ? Param::Text(*repo.policy) : Param::NullText(),
               Param::TextArray(tags.keys), Param::TextArray(tags.values)}));
      if (r.empty()) {
        return Status(Code::kAlreadyExists, "repository " + repo.name + " already exists",
                      repo.name);
      }
      return Status::Ok();
    });
  }

  Result<RepositoryRecord> GetRepository(std::string_view name) override {
    return Read([&](Connection& c) -> Result<RepositoryRecord> {
      BERTH_ASSIGN_OR_RETURN(Rows r, c.Query("SELECT " BERTH_REPOSITORY_COLUMNS
                                             " FROM repositories r WHERE r.name = $1",
                                             {Param::Text(name)}));
      if (r.empty()) return NameUnknown(name);
      return ReadRepositoryRow(r, 0, 0);
    });
  }

  Result<std::vector<std::string>> ListRepositories(std::string_view after, size_t limit) override {
    return Read([&](Connection& c) -> Result<std::vector<std::string>> {
      BERTH_ASSIGN_OR_RETURN(Rows r, c.Query("SELECT name FROM repositories WHERE name > $1 "
                                             "ORDER BY name LIMIT $2",
                                             {Param::Text(after), Param::Int(ClampLimit(limit))}));
      return TextColumn(r, 0);
    });
  }

  Status DeleteRepository(std::string_view name, bool force) override {
    return Write([&](Tx& tx) -> Status {
      std::vector<Statement> batch;
      // The lock first: writes in flight finish, later ones find no repository. The
      // DELETE, a statement of its own, then sees every manifest they committed; the
      // foreign keys take manifests, tags, links, uploads and attributes with it.
      batch.push_back(
          {"SELECT id FROM repositories WHERE name = $1 FOR UPDATE", {Param::Text(name)}});
      batch.push_back(
          {"DELETE FROM repositories r WHERE r.name = $1 AND ($2 OR NOT EXISTS "
           "(SELECT 1 FROM manifests m WHERE m.repo_id = r.id)) RETURNING id",
           {Param::Text(name), Param::Bool(force)}});
      BERTH_ASSIGN_OR_RETURN(std::vector<Rows> r, tx.Run(std::move(batch)));
      if (r[0].empty()) return NameUnknown(name);
      if (r[1].empty()) {
        return Status(Code::kFailedPrecondition,
                      "repository " + std::string(name) +
                          " still holds images; delete them first or force the deletion",
                      std::string(name));
      }
      return Status::Ok();
    });
  }

  Result<std::vector<RepositoryRecord>> ListRepositoryRecords(std::string_view account_id,
                                                              std::string_view after,
                                                              size_t limit) override {
    return Read([&](Connection& c) -> Result<std::vector<RepositoryRecord>> {
      BERTH_ASSIGN_OR_RETURN(
          Rows r,
          c.Query("SELECT " BERTH_REPOSITORY_COLUMNS " FROM repositories r "
                  "WHERE r.account_id = $1 AND r.name > $2 ORDER BY r.name LIMIT $3",
                  {Param::Text(account_id), Param::Text(after), Param::Int(ClampLimit(limit))}));
      std::vector<RepositoryRecord> out;
      for (int i = 0; i < r.size(); ++i) {
        BERTH_ASSIGN_OR_RETURN(RepositoryRecord repo, ReadRepositoryRow(r, i, 0));
        out.push_back(std::move(repo));
      }
      return out;
    });
  }

  Result<size_t> AssignUnownedRepositories(std::string_view account_id) override {
    size_t n = 0;
    Status st = Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, tx.Query("UPDATE repositories SET account_id = $1 WHERE account_id = ''",
                           {Param::Text(account_id)}));
      n = static_cast<size_t>(r.affected());
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return n;
  }

  Status SetTagMutability(std::string_view name, const TagMutabilitySetting& setting) override {
    return Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(Rows r,
                             tx.Query("UPDATE repositories SET tag_mutability = $2, "
                                      "tag_mutability_exclusions = $3 WHERE name = $1",
                                      {Param::Text(name), Param::Text(MutabilityName(setting.mode)),
                                       Param::TextArray(setting.exclusion_filters)}));
      if (r.affected() == 0) return NameUnknown(name);
      return Status::Ok();
    });
  }

  Status SetRepositoryPolicy(std::string_view name, std::string_view policy) override {
    return Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(Rows r, tx.Query("UPDATE repositories SET policy = $2 WHERE name = $1",
                                              {Param::Text(name), Param::Text(policy)}));
      if (r.affected() == 0) return NameUnknown(name);
      return Status::Ok();
    });
  }

  Result<std::string> DeleteRepositoryPolicy(std::string_view name) override {
    std::string old;
    Status st = Write([&](Tx& tx) -> Status {
      std::vector<Statement> batch;
      // A locking read returns the row as it is once the lock is held.
      batch.push_back({"SELECT policy FROM repositories WHERE name = $1 FOR NO KEY UPDATE",
                       {Param::Text(name)}});
      batch.push_back(
          {"UPDATE repositories SET policy = NULL WHERE name = $1", {Param::Text(name)}});
      BERTH_ASSIGN_OR_RETURN(std::vector<Rows> r, tx.Run(std::move(batch)));
      if (r[0].empty()) return NameUnknown(name);
      if (r[0].IsNull(0, 0)) {
        return Status(Code::kNotFound, "repository " + std::string(name) + " has no policy",
                      std::string(name));
      }
      old = r[0].Text(0, 0);
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return old;
  }

  Status UpdateRepositoryTags(std::string_view name, const std::vector<ResourceTag>& set,
                              const std::vector<std::string>& remove_keys,
                              size_t max_tags) override {
    TagArrays tags = SplitResourceTags(set);
    return Write([&](Tx& tx) -> Status {
      std::vector<Statement> batch;
      // The repository's row is the mutex of its tag set: two updates never both pass
      // the limit check.
      batch.push_back(
          {"SELECT id FROM repositories WHERE name = $1 FOR NO KEY UPDATE", {Param::Text(name)}});
      batch.push_back({"DELETE FROM repository_tags WHERE repo_id = " BERTH_REPO_ID
                       " AND key = ANY($2)",
                       {Param::Text(name), Param::TextArray(remove_keys)}});
      batch.push_back(
          {"INSERT INTO repository_tags(repo_id, key, value) "
           "SELECT r.id, x.k, x.v FROM repositories r, "
           "unnest($2::text[], $3::text[]) AS x(k, v) WHERE r.name = $1 "
           "ON CONFLICT (repo_id, key) DO UPDATE SET value = excluded.value",
           {Param::Text(name), Param::TextArray(tags.keys), Param::TextArray(tags.values)}});
      batch.push_back({"SELECT count(*) FROM repository_tags WHERE repo_id = " BERTH_REPO_ID,
                       {Param::Text(name)}});
      BERTH_ASSIGN_OR_RETURN(std::vector<Rows> r, tx.Run(std::move(batch)));
      if (r[0].empty()) return NameUnknown(name);
      int64_t count = r[3].Int(0, 0);
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
    int64_t created = blob.created_at_ms != 0 ? blob.created_at_ms : NowMillis();
    return Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Rows r,
          tx.Query("WITH r AS (SELECT id FROM repositories WHERE name = $1 FOR KEY SHARE), "
                   "b AS (INSERT INTO blobs(digest, size, created_at) SELECT $2, $3, $4 FROM r "
                   "  ON CONFLICT (digest) DO NOTHING), "
                   "l AS (INSERT INTO repo_blobs(repo_id, digest, created_at) "
                   "  SELECT id, $2, $4 FROM r ON CONFLICT DO NOTHING), "
                   "u AS (DELETE FROM uploads WHERE id = $5 AND EXISTS (SELECT 1 FROM r)) "
                   "SELECT id FROM r",
                   {Param::Text(repository), Param::Text(blob.digest.str()),
                    Param::Int(static_cast<int64_t>(blob.size)), Param::Int(created),
                    Param::Text(upload_id)}));
      if (r.empty()) return NameUnknown(repository);
      return Status::Ok();
    });
  }

  Result<BlobRecord> GetLinkedBlob(std::string_view repository,
                                   const oci::Digest& digest) override {
    // One indexed query on the hot path; the LEFT JOINs tell a missing repository
    // (no row) from a missing link (NULL blob columns).
    return Read([&](Connection& c) -> Result<BlobRecord> {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, c.Query("SELECT b.size, b.created_at, b.digest IS NOT NULL "
                          "FROM repositories r "
                          "LEFT JOIN repo_blobs rb ON rb.repo_id = r.id AND rb.digest = $2 "
                          "LEFT JOIN blobs b ON b.digest = rb.digest "
                          "WHERE r.name = $1",
                          {Param::Text(repository), Param::Text(digest.str())}));
      if (r.empty()) return NameUnknown(repository);
      if (!r.Bool(0, 2)) return BlobNotLinked(repository, digest);
      return BlobRecord{digest, static_cast<uint64_t>(r.Int(0, 0)), r.Int(0, 1)};
    });
  }

  Result<std::vector<BlobRecord>> ListLinkedBlobs(std::string_view repository,
                                                  std::string_view after,
                                                  size_t limit) override {
    // One row with NULLs for an existing repository without (more) links, none for a
    // missing repository.
    return Read([&](Connection& c) -> Result<std::vector<BlobRecord>> {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, c.Query("SELECT l.digest, l.size, l.created_at FROM repositories r "
                          "LEFT JOIN LATERAL "
                          "(SELECT rb.digest, b.size, b.created_at FROM repo_blobs rb "
                          " JOIN blobs b ON b.digest = rb.digest "
                          " WHERE rb.repo_id = r.id AND rb.digest > $2 "
                          " ORDER BY rb.digest LIMIT $3) l ON true "
                          "WHERE r.name = $1 ORDER BY l.digest",
                          {Param::Text(repository), Param::Text(after),
                           Param::Int(ClampLimit(limit))}));
      if (r.empty()) return NameUnknown(repository);
      std::vector<BlobRecord> out;
      for (int i = 0; i < r.size(); ++i) {
        if (r.IsNull(i, 0)) continue;
        BERTH_ASSIGN_OR_RETURN(oci::Digest digest, ParseStoredDigest(r.Text(i, 0)));
        out.push_back({std::move(digest), static_cast<uint64_t>(r.Int(i, 1)), r.Int(i, 2)});
      }
      return out;
    });
  }

  Result<BlobRecord> GetBlob(const oci::Digest& digest) override {
    return Read([&](Connection& c) -> Result<BlobRecord> {
      BERTH_ASSIGN_OR_RETURN(Rows r, c.Query("SELECT size, created_at FROM blobs WHERE digest = $1",
                                             {Param::Text(digest.str())}));
      if (r.empty()) return BlobUnknown(digest);
      return BlobRecord{digest, static_cast<uint64_t>(r.Int(0, 0)), r.Int(0, 1)};
    });
  }

  Status LinkBlob(std::string_view repository, const oci::Digest& digest) override {
    int64_t now = NowMillis();
    return Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, tx.Query("WITH r AS (SELECT id FROM repositories WHERE name = $1 FOR KEY SHARE), "
                           "b AS (SELECT digest FROM blobs WHERE digest = $2 FOR KEY SHARE), "
                           "l AS (INSERT INTO repo_blobs(repo_id, digest, created_at) "
                           "  SELECT r.id, b.digest, $3 FROM r, b ON CONFLICT DO NOTHING) "
                           "SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM b)",
                           {Param::Text(repository), Param::Text(digest.str()), Param::Int(now)}));
      if (r.Int(0, 0) == 0) return NameUnknown(repository);
      if (r.Int(0, 1) == 0) return BlobUnknown(digest);
      return Status::Ok();
    });
  }

  Status UnlinkBlob(std::string_view repository, const oci::Digest& digest) override {
    return Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, tx.Query("WITH r AS (SELECT id FROM repositories WHERE name = $1 FOR KEY SHARE), "
                           "d AS (DELETE FROM repo_blobs rb USING r "
                           "  WHERE rb.repo_id = r.id AND rb.digest = $2 RETURNING 1) "
                           "SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM d)",
                           {Param::Text(repository), Param::Text(digest.str())}));
      if (r.Int(0, 0) == 0) return NameUnknown(repository);
      if (r.Int(0, 1) == 0) return BlobNotLinked(repository, digest);
      return Status::Ok();
    });
  }

  // ---- manifests and tags

  using MetadataStore::PutManifest;
  Result<PutManifestOutcome> PutManifest(const ManifestRecord& m, std::string_view tag,
                                         const PutManifestOptions& options) override {
    if (m.digest.empty()) return Status(Code::kDigestInvalid, "manifest digest is empty");
    std::vector<std::string_view> blobs = DigestStrings(m.blob_refs);
    std::vector<std::string_view> children = DigestStrings(m.child_refs);
    const std::string& digest = m.digest.str();
    std::string_view annotations =
        m.annotations_json.empty() ? std::string_view("{}") : std::string_view(m.annotations_json);
    int64_t now = NowMillis();
    PutManifestOutcome outcome;
    Status st = Write([&](Tx& tx) -> Status {
      outcome = {};
      // One round trip: the locks and checks, then the writes as if the checks passed.
      // Each statement takes its snapshot when it starts, after the locks before it are
      // held; when a check fails the transaction is rolled back and nothing changes.
      std::vector<Statement> batch;
      batch.push_back({"SELECT id FROM repositories WHERE name = $1 FOR KEY SHARE",
                       {Param::Text(m.repository)}});
      batch.push_back({"SELECT t.digest FROM tags t WHERE t.repo_id = " BERTH_REPO_ID
                       " AND t.tag = $2 FOR UPDATE OF t",
                       {Param::Text(m.repository), Param::Text(tag)}});
      batch.push_back({"SELECT digest FROM repo_blobs WHERE repo_id = " BERTH_REPO_ID
                       " AND digest = ANY($2) FOR KEY SHARE",
                       {Param::Text(m.repository), Param::TextArray(blobs)}});
      batch.push_back({"SELECT digest FROM manifests WHERE repo_id = " BERTH_REPO_ID
                       " AND digest = ANY($2) FOR KEY SHARE",
                       {Param::Text(m.repository), Param::TextArray(children)}});
      // The manifest with all its reference rows in one statement. An existing one
      // keeps its references (same digest, same bytes), and is locked (DO UPDATE ...
      // WHERE false locks without writing) so that it cannot be deleted under the tag.
      batch.push_back(
          {"WITH m AS ("
           "  INSERT INTO manifests(repo_id, digest, media_type, artifact_type, bytes, size, "
           "    pushed_at, subject, annotations, image_size) "
           "  SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM repositories WHERE name = $1 "
           "  ON CONFLICT (repo_id, digest) DO UPDATE SET size = manifests.size WHERE false "
           "  RETURNING repo_id, digest), "
           "b AS (INSERT INTO manifest_blobs(repo_id, manifest_digest, blob_digest) "
           "  SELECT m.repo_id, m.digest, d FROM m, unnest($11::text[]) AS d "
           "  ON CONFLICT DO NOTHING), "
           "c AS (INSERT INTO manifest_children(repo_id, index_digest, child_digest) "
           "  SELECT m.repo_id, m.digest, d FROM m, unnest($12::text[]) AS d "
           "  ON CONFLICT DO NOTHING) "
           "SELECT 1 FROM m",
           {Param::Text(m.repository), Param::Text(digest), Param::Text(m.media_type),
            Param::Text(m.artifact_type), Param::Bytes(m.bytes),
            Param::Int(static_cast<int64_t>(m.bytes.size())), Param::Int(m.pushed_at_ms),
            m.subject.has_value() ? Param::Text(m.subject->str()) : Param::NullText(),
            Param::Text(annotations), Param::Int(m.image_size), Param::TextArray(blobs),
            Param::TextArray(children)}});
      if (!tag.empty()) {
        // A tag created since the check above (by another node) conflicts here; an
        // immutable one is then left alone, which the last statement reveals.
        batch.push_back(
            {"INSERT INTO tags(repo_id, tag, digest, updated_at) "
             "SELECT id, $2, $3, $4 FROM repositories WHERE name = $1 "
             "ON CONFLICT (repo_id, tag) DO UPDATE "
             "SET digest = excluded.digest, updated_at = excluded.updated_at "
             "WHERE tags.digest <> excluded.digest AND NOT $5",
             {Param::Text(m.repository), Param::Text(tag), Param::Text(digest), Param::Int(now),
              Param::Bool(options.immutable_tag)}});
        batch.push_back({"SELECT digest FROM tags WHERE repo_id = " BERTH_REPO_ID " AND tag = $2",
                         {Param::Text(m.repository), Param::Text(tag)}});
      }
      BERTH_ASSIGN_OR_RETURN(std::vector<Rows> r, tx.Run(std::move(batch)));
      if (r[0].empty()) return NameUnknown(m.repository);
      if (!tag.empty() && !r[1].empty()) {
        if (r[1].Text(0, 0) == digest) {
          outcome.tag_unchanged = true;
        } else if (options.immutable_tag) {
          return TagImmutable(m.repository, tag);
        }
      }
      std::unordered_set<std::string> linked;
      for (int i = 0; i < r[2].size(); ++i) linked.insert(r[2].Text(i, 0));
      for (const oci::Digest& d : m.blob_refs) {
        if (!linked.contains(d.str())) {
          return Status(
              Code::kManifestBlobUnknown,
              "manifest references blob " + d.str() + " which is not in repository " + m.repository,
              d.str());
        }
      }
      std::unordered_set<std::string> stored;
      for (int i = 0; i < r[3].size(); ++i) stored.insert(r[3].Text(i, 0));
      for (const oci::Digest& d : m.child_refs) {
        if (!stored.contains(d.str())) {
          return Status(Code::kManifestBlobUnknown,
                        "manifest list references manifest " + d.str() +
                            " which is not in repository " + m.repository +
                            "; push the image to this repository first",
                        d.str());
        }
      }
      outcome.manifest_created = !r[4].empty();
      if (!tag.empty() && (r[6].empty() || r[6].Text(0, 0) != digest)) {
        return TagImmutable(m.repository, tag);
      }
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return outcome;
  }

  // The queries of GetManifest and GetManifestByTag with the columns `columns`.
#define BERTH_MANIFEST_BY_DIGEST(columns)                        \
  "SELECT m.repo_id IS NOT NULL, " columns                       \
  " FROM repositories r "                                        \
  "LEFT JOIN manifests m ON m.repo_id = r.id AND m.digest = $2 " \
  "WHERE r.name = $1"
#define BERTH_MANIFEST_BY_TAG(columns)                                      \
  "SELECT m.repo_id IS NOT NULL, " columns                                  \
  " FROM repositories r "                                                   \
  "LEFT JOIN tags t ON t.repo_id = r.id AND t.tag = $2 "                    \
  "LEFT JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest " \
  "WHERE r.name = $1"

  Result<ManifestRecord> GetManifest(std::string_view repository,
                                     const oci::Digest& digest) override {
    return ReadManifest(BERTH_MANIFEST_BY_DIGEST(BERTH_MANIFEST_COLUMNS), repository, digest);
  }
  Result<ManifestRecord> GetManifestForPull(std::string_view repository,
                                            const oci::Digest& digest) override {
    return ReadManifest(BERTH_MANIFEST_BY_DIGEST(BERTH_MANIFEST_PULL_COLUMNS), repository, digest);
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
    // One row with a NULL tag for an existing repository without (more) tags, none for
    // a missing repository.
    return Read([&](Connection& c) -> Result<std::vector<std::string>> {
      BERTH_ASSIGN_OR_RETURN(
          Rows r,
          c.Query("SELECT t.tag FROM repositories r LEFT JOIN LATERAL "
                  "(SELECT tag FROM tags WHERE repo_id = r.id AND tag > $2 "
                  " ORDER BY tag LIMIT $3) t ON true "
                  "WHERE r.name = $1 ORDER BY t.tag",
                  {Param::Text(repository), Param::Text(after), Param::Int(ClampLimit(limit))}));
      if (r.empty()) return NameUnknown(repository);
      return TextColumn(r, 0);
    });
  }

  Result<std::vector<std::string>> TagsOf(std::string_view repository, const oci::Digest& digest,
                                          std::string_view after, size_t limit) override {
    return Read([&](Connection& c) -> Result<std::vector<std::string>> {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, c.Query("SELECT t.tag FROM repositories r LEFT JOIN LATERAL "
                          "(SELECT tag FROM tags WHERE repo_id = r.id AND digest = $2 "
                          " AND tag > $3 ORDER BY tag LIMIT $4) t ON true "
                          "WHERE r.name = $1 ORDER BY t.tag",
                          {Param::Text(repository), Param::Text(digest.str()), Param::Text(after),
                           Param::Int(ClampLimit(limit))}));
      if (r.empty()) return NameUnknown(repository);
      return TextColumn(r, 0);
    });
  }

  Status DeleteTag(std::string_view repository, std::string_view tag) override {
    return Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, tx.Query("WITH r AS (SELECT id FROM repositories WHERE name = $1 FOR KEY SHARE), "
                           "d AS (DELETE FROM tags t USING r WHERE t.repo_id = r.id AND t.tag = $2 "
                           "  RETURNING 1) "
                           "SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM d)",
                           {Param::Text(repository), Param::Text(tag)}));
      if (r.Int(0, 0) == 0) return NameUnknown(repository);
      if (r.Int(0, 1) == 0) return TagUnknown(repository, tag);
      return Status::Ok();
    });
  }

  Status DeleteManifest(std::string_view repository, const oci::Digest& digest) override {
    return Write([&](Tx& tx) -> Status {
      std::vector<Statement> batch;
      batch.push_back(
          {"SELECT id FROM repositories WHERE name = $1 FOR KEY SHARE", {Param::Text(repository)}});
      // The manifest's lock makes a push that is adding it to an index finish first.
      batch.push_back({"SELECT 1 FROM manifests WHERE repo_id = " BERTH_REPO_ID
                       " AND digest = $2 FOR UPDATE",
                       {Param::Text(repository), Param::Text(digest.str())}});
      batch.push_back({"SELECT index_digest FROM manifest_children WHERE repo_id = " BERTH_REPO_ID
                       " AND child_digest = $2 ORDER BY index_digest LIMIT 1",
                       {Param::Text(repository), Param::Text(digest.str())}});
      // Its tags and reference rows go by the foreign keys; rolled back if it is pinned.
      batch.push_back({"DELETE FROM manifests WHERE repo_id = " BERTH_REPO_ID " AND digest = $2",
                       {Param::Text(repository), Param::Text(digest.str())}});
      BERTH_ASSIGN_OR_RETURN(std::vector<Rows> r, tx.Run(std::move(batch)));
      if (r[0].empty()) return NameUnknown(repository);
      if (r[1].empty()) return ManifestUnknown(repository, digest);
      if (!r[2].empty()) {
        std::string index = r[2].Text(0, 0);
        return Status(Code::kManifestReferenced,
                      "manifest " + digest.str() + " is referenced by index " + index +
                          " in repository " + std::string(repository) + "; delete the index first",
                      index);
      }
      return Status::Ok();
    });
  }

  Result<RemovedTag> RemoveTag(std::string_view repository, std::string_view tag,
                               const RemoveTagOptions& options) override {
    RemovedTag removed;
    Status st = Write([&](Tx& tx) -> Status {
      removed = {};
      std::vector<Statement> batch;
      batch.push_back(
          {"SELECT id FROM repositories WHERE name = $1 FOR KEY SHARE", {Param::Text(repository)}});
      batch.push_back({"DELETE FROM tags WHERE repo_id = " BERTH_REPO_ID
                       " AND tag = $2 RETURNING digest",
                       {Param::Text(repository), Param::Text(tag)}});
      BERTH_ASSIGN_OR_RETURN(std::vector<Rows> r, tx.Run(std::move(batch)));
      if (r[0].empty()) return NameUnknown(repository);
      if (r[1].empty()) return TagUnknown(repository, tag);
      BERTH_ASSIGN_OR_RETURN(removed.digest, ParseStoredDigest(r[1].Text(0, 0)));
      if (!options.delete_untagged_manifest) return Status::Ok();
      // Locked first, then looked at: a push tagging it again, or listing it in an
      // index, either finished before (and keeps it) or waits and finds it gone.
      batch.clear();
      batch.push_back({"SELECT 1 FROM manifests WHERE repo_id = " BERTH_REPO_ID
                       " AND digest = $2 FOR UPDATE",
                       {Param::Text(repository), Param::Text(removed.digest.str())}});
      batch.push_back(
          {"DELETE FROM manifests m WHERE m.repo_id = " BERTH_REPO_ID " AND m.digest = $2 "
           "AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = m.repo_id "
           "  AND t.digest = m.digest) "
           "AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.repo_id = m.repo_id "
           "  AND c.child_digest = m.digest) "
           "RETURNING 1",
           {Param::Text(repository), Param::Text(removed.digest.str())}});
      BERTH_ASSIGN_OR_RETURN(r, tx.Run(std::move(batch)));
      removed.manifest_deleted = !r[1].empty();
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return removed;
  }

  // ---- image listings

  Result<std::vector<ImageRecord>> ListImages(std::string_view repository, TagFilter filter,
                                              std::string_view after, size_t limit) override {
    int64_t f = filter == TagFilter::kAny ? 0 : filter == TagFilter::kTagged ? 1 : 2;
    return Read([&](Connection& c) -> Result<std::vector<ImageRecord>> {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, c.Query("SELECT m.repo_id IS NOT NULL, " BERTH_IMAGE_COLUMNS
                          " FROM repositories r LEFT JOIN LATERAL "
                          "(SELECT * FROM manifests m WHERE m.repo_id = r.id AND m.digest > $2 "
                          " AND ($3 = 0 OR ($3 = 1) = EXISTS (SELECT 1 FROM tags t "
                          "   WHERE t.repo_id = m.repo_id AND t.digest = m.digest)) "
                          " ORDER BY m.digest LIMIT $4) m ON true "
                          "WHERE r.name = $1 ORDER BY m.digest",
                          {Param::Text(repository), Param::Text(after), Param::Int(f),
                           Param::Int(ClampLimit(limit))}));
      if (r.empty()) return NameUnknown(repository);
      std::vector<ImageRecord> out;
      for (int i = 0; i < r.size(); ++i) {
        if (!r.Bool(i, 0)) continue;
        BERTH_ASSIGN_OR_RETURN(ImageRecord img, ReadImageRow(r, i, 1, repository));
        out.push_back(std::move(img));
      }
      return out;
    });
  }

  Result<ImageRecord> GetImage(std::string_view repository, const oci::Digest& digest) override {
    return Read([&](Connection& c) -> Result<ImageRecord> {
      BERTH_ASSIGN_OR_RETURN(
          Rows r,
          c.Query("SELECT m.repo_id IS NOT NULL, " BERTH_IMAGE_COLUMNS " FROM repositories r "
                  "LEFT JOIN manifests m ON m.repo_id = r.id AND m.digest = $2 "
                  "WHERE r.name = $1",
                  {Param::Text(repository), Param::Text(digest.str())}));
      if (r.empty()) return NameUnknown(repository);
      if (!r.Bool(0, 0)) return ManifestUnknown(repository, digest);
      return ReadImageRow(r, 0, 1, repository);
    });
  }

  Status RecordPulls(const std::vector<PullRecord>& pulls) override {
    if (pulls.empty()) return Status::Ok();
    std::vector<std::string_view> repos, digests;
    std::vector<int64_t> times;
    for (const PullRecord& p : pulls) {
      repos.push_back(p.repository);
      digests.push_back(p.digest.str());
      times.push_back(p.pulled_at_ms);
    }
    return Write([&](Tx& tx) -> Status {
      // One statement for the batch; rows in a fixed order, so that two batches lock
      // the manifests they share in the same order.
      return tx
          .Query(
              "UPDATE manifests m SET last_pulled_at = p.at FROM ("
              "  SELECT r.id, x.digest, max(x.at) AS at "
              "  FROM unnest($1::text[], $2::text[], $3::bigint[]) AS x(repo, digest, at) "
              "  JOIN repositories r ON r.name = x.repo GROUP BY r.id, x.digest "
              "  ORDER BY r.id, x.digest) p "
              "WHERE m.repo_id = p.id AND m.digest = p.digest "
              "AND (m.last_pulled_at IS NULL OR m.last_pulled_at < p.at)",
              {Param::TextArray(repos), Param::TextArray(digests), Param::IntArray(times)})
          .status();
    });
  }

  Result<std::vector<ManifestRecord>> ListReferrers(std::string_view repository,
                                                    const oci::Digest& subject,
                                                    std::string_view artifact_type,
                                                    std::string_view after, size_t limit) override {
    return Read([&](Connection& c) -> Result<std::vector<ManifestRecord>> {
      BERTH_ASSIGN_OR_RETURN(
          Rows r,
          c.Query("SELECT m.digest, m.media_type, m.artifact_type, m.size, m.pushed_at, "
                  "m.annotations FROM repositories r LEFT JOIN LATERAL "
                  "(SELECT * FROM manifests WHERE repo_id = r.id AND subject = $2 "
                  " AND ($3 = '' OR artifact_type = $3) AND digest > $4 "
                  " ORDER BY digest LIMIT $5) m ON true "
                  "WHERE r.name = $1 ORDER BY m.digest",
                  {Param::Text(repository), Param::Text(subject.str()), Param::Text(artifact_type),
                   Param::Text(after), Param::Int(ClampLimit(limit))}));
      if (r.empty()) return NameUnknown(repository);
      std::vector<ManifestRecord> out;
      for (int i = 0; i < r.size(); ++i) {
        if (r.IsNull(i, 0)) continue;
        ManifestRecord m;
        m.repository = std::string(repository);
        BERTH_ASSIGN_OR_RETURN(m.digest, ParseStoredDigest(r.Text(i, 0)));
        m.media_type = r.Text(i, 1);
        m.artifact_type = r.Text(i, 2);
        m.size = r.Int(i, 3);
        m.pushed_at_ms = r.Int(i, 4);
        m.subject = subject;
        m.annotations_json = r.Text(i, 5);
        out.push_back(std::move(m));
      }
      return out;
    });
  }

  // ---- upload sessions

  Status CreateUpload(const UploadRecord& u) override {
    return Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Rows r,
          tx.Query(
              "WITH r AS (SELECT id FROM repositories WHERE name = $2 FOR KEY SHARE), "
              "i AS (INSERT INTO uploads(id, repo_id, byte_offset, created_at, updated_at, "
              "    hash_state, blob_state, lease_token, lease_expires_at) "
              "  SELECT $1, id, $3, $4, $5, $6, $7, $8, $9 FROM r "
              "  ON CONFLICT (id) DO NOTHING RETURNING 1) "
              "SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM i)",
              {Param::Text(u.id), Param::Text(u.repository),
               Param::Int(static_cast<int64_t>(u.offset)), Param::Int(u.created_at_ms),
               Param::Int(u.updated_at_ms), Param::Bytes(u.hash_state), Param::Bytes(u.blob_state),
               Param::Text(u.lease_token), Param::Int(u.lease_expires_ms)}));
      if (r.Int(0, 0) == 0) return NameUnknown(u.repository);
      if (r.Int(0, 1) == 0) {
        return Status(Code::kAlreadyExists, "upload " + u.id + " already exists", u.id);
      }
      return Status::Ok();
    });
  }

  Result<UploadRecord> GetUpload(std::string_view id) override {
    return Read([&](Connection& c) -> Result<UploadRecord> {
      BERTH_ASSIGN_OR_RETURN(Rows r,
                             c.Query(BERTH_SELECT_UPLOADS "WHERE u.id = $1", {Param::Text(id)}));
      if (r.empty()) return UploadUnknown(id);
      return ReadUploadRow(r, 0);
    });
  }

  Result<UploadRecord> LeaseUpload(std::string_view id, std::string_view token, int64_t now_ms,
                                   int64_t ttl_ms) override {
    UploadRecord out;
    Status st = Write([&](Tx& tx) -> Status {
      std::vector<Statement> batch;
      batch.push_back({BERTH_SELECT_UPLOADS "WHERE u.id = $1 FOR UPDATE OF u", {Param::Text(id)}});
      batch.push_back(
          {"UPDATE uploads SET lease_token = $2, lease_expires_at = $4 "
           "WHERE id = $1 AND (lease_token = '' OR lease_token = $2 "
           "OR lease_expires_at <= $3)",
           {Param::Text(id), Param::Text(token), Param::Int(now_ms), Param::Int(now_ms + ttl_ms)}});
      BERTH_ASSIGN_OR_RETURN(std::vector<Rows> r, tx.Run(std::move(batch)));
      if (r[0].empty()) return UploadUnknown(id);
      out = ReadUploadRow(r[0], 0);
      if (r[1].affected() == 0) {
        return Status(Code::kAborted,
                      "upload " + std::string(id) + " is being written by another request",
                      std::to_string(out.offset));
      }
      out.lease_token = std::string(token);
      out.lease_expires_ms = now_ms + ttl_ms;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return out;
  }

  Status AdvanceUpload(std::string_view id, std::string_view token, uint64_t expected_offset,
                       const UploadProgress& p) override {
    return Write([&](Tx& tx) -> Status {
      std::vector<Statement> batch;
      batch.push_back(
          {"UPDATE uploads SET byte_offset = $4, hash_state = $5, blob_state = $6, "
           "updated_at = $7, "
           "lease_token = CASE WHEN $8 THEN '' ELSE lease_token END, "
           "lease_expires_at = CASE WHEN $8 THEN 0 ELSE lease_expires_at END "
           "WHERE id = $1 AND lease_token = $2 AND byte_offset = $3",
           {Param::Text(id), Param::Text(token), Param::Int(static_cast<int64_t>(expected_offset)),
            Param::Int(static_cast<int64_t>(p.offset)), Param::Bytes(p.hash_state),
            Param::Bytes(p.blob_state), Param::Int(p.updated_at_ms), Param::Bool(p.release)}});
      batch.push_back({"SELECT byte_offset FROM uploads WHERE id = $1", {Param::Text(id)}});
      BERTH_ASSIGN_OR_RETURN(std::vector<Rows> r, tx.Run(std::move(batch)));
      if (r[0].affected() == 1) return Status::Ok();
      if (r[1].empty()) return UploadUnknown(id);
      std::string offset = std::to_string(r[1].Int(0, 0));
      return Status(Code::kRangeInvalid,
                    "upload " + std::string(id) + " moved on meanwhile (another writer took it " +
                        "over); it now holds " + offset + " bytes",
                    offset);
    });
  }

  Status ReleaseUpload(std::string_view id, std::string_view token) override {
    return Write([&](Tx& tx) -> Status {
      return tx
          .Query(
              "UPDATE uploads SET lease_token = '', lease_expires_at = 0 "
              "WHERE id = $1 AND lease_token = $2",
              {Param::Text(id), Param::Text(token)})
          .status();
    });
  }

  Status DeleteUpload(std::string_view id) override {
    return Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, tx.Query("DELETE FROM uploads WHERE id = $1 RETURNING 1", {Param::Text(id)}));
      if (r.empty()) return UploadUnknown(id);
      return Status::Ok();
    });
  }

  Result<std::vector<UploadRecord>> ListStaleUploads(int64_t updated_before_ms,
                                                     size_t limit) override {
    return Read([&](Connection& c) -> Result<std::vector<UploadRecord>> {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, c.Query(BERTH_SELECT_UPLOADS "WHERE u.updated_at < $1 "
                                               "ORDER BY u.updated_at, u.id LIMIT $2",
                          {Param::Int(updated_before_ms), Param::Int(ClampLimit(limit))}));
      std::vector<UploadRecord> out;
      for (int i = 0; i < r.size(); ++i) out.push_back(ReadUploadRow(r, i));
      return out;
    });
  }

  // ---- settings and leases

  Result<std::string> GetSetting(std::string_view name) override {
    return Read([&](Connection& c) -> Result<std::string> {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, c.Query("SELECT value FROM settings WHERE name = $1", {Param::Text(name)}));
      if (r.empty()) return Status::NotFound("setting " + std::string(name) + " is not set");
      return r.Text(0, 0);
    });
  }

  Status SwapSetting(std::string_view name, const std::optional<std::string>& expected,
                     std::string_view value) override {
    return Write([&](Tx& tx) -> Status {
      Result<Rows> r = expected.has_value()
                           ? tx.Query(
                                 "UPDATE settings SET value = $3 WHERE name = $1 AND value = $2 "
                                 "RETURNING 1",
                                 {Param::Text(name), Param::Bytes(*expected), Param::Bytes(value)})
                           : tx.Query(
                                 "INSERT INTO settings(name, value) VALUES ($1, $2) "
                                 "ON CONFLICT (name) DO NOTHING RETURNING 1",
                                 {Param::Text(name), Param::Bytes(value)});
      if (!r.ok()) return r.status();
      if (r->size() == 1) return Status::Ok();
      return Status(Code::kAborted,
                    "setting " + std::string(name) + " was changed by someone else; read it again");
    });
  }

  Result<bool> AcquireLease(std::string_view name, std::string_view token, int64_t now_ms,
                            int64_t ttl_ms) override {
    bool held = false;
    Status st = Write([&](Tx& tx) -> Status {
      BERTH_ASSIGN_OR_RETURN(
          Rows r, tx.Query("INSERT INTO leases(name, token, expires_at) VALUES ($1, $2, $4) "
                           "ON CONFLICT (name) DO UPDATE SET token = excluded.token, "
                           "expires_at = excluded.expires_at "
                           "WHERE leases.token = excluded.token OR leases.expires_at <= $3 "
                           "RETURNING 1",
                           {Param::Text(name), Param::Text(token), Param::Int(now_ms),
                            Param::Int(now_ms + ttl_ms)}));
      held = r.size() == 1;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return held;
  }

 private:
  // Runs `fn(Connection&)` (one or more statements, no transaction of its own) and, if
  // the connection turns out lost, once more on a new one.
  template <typename Fn>
  auto Read(Patience patience, Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    for (int attempt = 0;; ++attempt) {
      auto lease = attempt == 0 ? pool_.Acquire(patience) : pool_.AcquireNew(patience);
      if (!lease.ok()) return lease.status();
      auto result = fn(**lease);
      if (result.ok() || !(*lease)->broken() || attempt > 0) return result;
      lease->Discard();
    }
  }
  template <typename Fn>
  auto Read(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    return Read(Patience::kWait, std::forward<Fn>(fn));
  }

  // Runs `fn(Tx&)` in a transaction and commits it; see the top of the file for when
  // it runs again.
  template <typename Fn>
  Status Write(Fn&& fn) {
    bool reconnected = false;
    int conflicts = 0;
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(ConnectionPool::Lease lease, reconnected
                                                              ? pool_.AcquireNew(Patience::kWait)
                                                              : pool_.Acquire(Patience::kWait));
      Tx tx(*lease);
      Status st = fn(tx);
      if (st.ok()) st = tx.Commit();
      if (st.ok()) return st;
      if (lease->broken()) {
        const int backend = lease->backend_pid();
        const int64_t session = lease->session_key();
        lease.Discard();
        if (tx.commit_sent()) {
          BERTH_ASSIGN_OR_RETURN(bool committed, CommitWentThrough(session, tx.xid(), backend));
          if (committed) return Status::Ok();
        }
        // Not committed, and the server rolled back what the lost session left open:
        // safe to run again, once.
        if (reconnected) return st;
        reconnected = true;
        continue;
      }
      bool conflict = pg::IsConflict(lease->last_sqlstate());
      if (!lease->Idle()) {
        auto rollback = lease->Query("ROLLBACK");
        if (!rollback.ok()) lease.Discard();
      }
      if (conflict && ++conflicts <= kMaxConflictRetries) {
        // A random pause, growing, to fall out of step with whoever we collided with.
        thread_local std::minstd_rand rng(std::random_device{}());
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % (500u << conflicts)));
        continue;
      }
      return st;
    }
  }

  // The COMMIT of transaction `xid`, of the session `session` (server process
  // `backend`), went out and its answer never came back. Asks a new session whether it
  // committed: its marker says so once the old session is gone.
  Result<bool> CommitWentThrough(int64_t session, int64_t xid, int backend) {
    auto unknown = [] {
      return Status(Code::kUnavailable,
                    "metadata store: lost the connection to PostgreSQL while committing; "
                    "whether the change was made is unknown");
    };
    auto deadline = std::chrono::steady_clock::now() + reconnect_timeout_;
    bool terminated = false;
    for (;;) {
      auto lease = pool_.AcquireNew(Patience::kWait);
      if (!lease.ok()) return unknown();
      // First whether the old session still runs our transaction (pg_stat_activity
      // shows the xid's low 32 bits; a process id may have been reused since, hence the
      // xid test: never end someone else's session). Then, in a later snapshot, whether
      // the marker is ours: if the old session had ended by the first statement, the
      // second sees its commit, if it committed.
      std::vector<Statement> batch;
      batch.push_back(
          {"SELECT EXISTS (SELECT 1 FROM pg_stat_activity "
           "WHERE pid = $1::integer AND backend_xid::text = ($2 % 4294967296)::text)",
           {Param::Int(backend), Param::Int(xid)}});
      batch.push_back(
          {"SELECT (SELECT xid FROM commit_markers WHERE session = $1) "
           "IS NOT DISTINCT FROM $2",
           {Param::Int(session), Param::Int(xid)}});
      auto r = (*lease)->Run(batch);
      if (r.ok()) {
        if ((*r)[1].Bool(0, 0)) return true;
        if (!(*r)[0].Bool(0, 0)) return false;  // not committed, and never will be
        // Still running: the old session has not noticed that we are gone (the network
        // failed, not the server). Ending it settles the outcome.
        if (!terminated) {
          (void)(*lease)->Query("SELECT pg_terminate_backend($1::integer)", {Param::Int(backend)});
          terminated = true;
        }
      } else if (!(*lease)->broken()) {
        return unknown();
      }
      if (std::chrono::steady_clock::now() >= deadline) return unknown();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Runs `sql` (a BERTH_MANIFEST_BY_* query) for `ref`, a digest or a tag.
  template <typename Ref>
  Result<ManifestRecord> ReadManifest(std::string_view sql, std::string_view repository,
                                      const Ref& ref) {
    return Read([&](Connection& c) -> Result<ManifestRecord> {
      BERTH_ASSIGN_OR_RETURN(Rows r,
                             c.Query(sql, {Param::Text(repository), Param::Text(RefText(ref))}));
      if (r.empty()) return NameUnknown(repository);
      if (!r.Bool(0, 0)) return RefUnknown(repository, ref);
      return ReadManifestRow(r, 1, repository);
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

  const std::chrono::milliseconds reconnect_timeout_;
  ConnectionPool pool_;
};

#undef BERTH_REPO_ID
#undef BERTH_REPOSITORY_COLUMNS
#undef BERTH_MANIFEST_COLUMNS
#undef BERTH_MANIFEST_PULL_COLUMNS
#undef BERTH_IMAGE_COLUMNS
#undef BERTH_SELECT_UPLOADS

// Brings the schema up to date in one transaction. The advisory lock makes nodes that
// start together take turns: the first migrates, the others then find nothing to do.
Status Migrate(Connection& c) {
  auto run = [&]() -> Status {
    std::vector<Statement> begin;
    begin.push_back({"BEGIN", {}});
    begin.push_back({"SELECT pg_advisory_xact_lock($1)", {Param::Int(kMigrationLockKey)}});
    // to_regclass rather than CREATE TABLE IF NOT EXISTS, which needs the CREATE
    // privilege even when the table exists.
    begin.push_back({"SELECT to_regclass('schema_migrations') IS NOT NULL", {}});
    BERTH_ASSIGN_OR_RETURN(std::vector<Rows> r, c.Run(begin));
    if (!r[2].Bool(0, 0)) {
      BERTH_RETURN_IF_ERROR(
          c.ExecScript("CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                       "applied_at bigint NOT NULL)"));
    }
    BERTH_ASSIGN_OR_RETURN(Rows v,
                           c.Query("SELECT coalesce(max(version), 0) FROM schema_migrations"));
    int64_t current = v.Int(0, 0);
    if (current > kLatestVersion) return NewerSchema(current);
    for (const Migration& m : kMigrations) {
      if (m.version <= current) continue;
      BERTH_RETURN_IF_ERROR(c.ExecScript(m.sql));
      BERTH_RETURN_IF_ERROR(c.Query("INSERT INTO schema_migrations(version, applied_at) "
                                    "VALUES ($1, $2)",
                                    {Param::Int(m.version), Param::Int(NowMillis())})
                                .status());
    }
    return c.Query("COMMIT").status();
  };
  Status st = run();
  if (!st.ok()) {
    if (!c.broken() && !c.Idle()) (void)c.Query("ROLLBACK");
    if (pg::IsConnectionLoss(c.last_sqlstate()) || c.broken()) return st;
    if (st.code() == Code::kFailedPrecondition && c.last_sqlstate() == "42501") {
      return Status::FailedPrecondition(st.message() +
                                        "; berth's role needs to own the database (or hold "
                                        "CREATE on its schema) to create its tables");
    }
  }
  return st;
}

}  // namespace

int PostgresSchemaVersion() { return kLatestVersion; }

Result<std::unique_ptr<MetadataStore>> OpenPostgresMetadataStore(const PostgresOptions& options) {
  if (options.url.empty()) return Status::InvalidArgument("PostgreSQL URL is empty");
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.url.c_str(), &err);
  if (parsed == nullptr) {
    std::string msg = err != nullptr ? err : "out of memory";
    PQfreemem(err);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    // Not repeated: an unparsable URL may still carry a password.
    return Status::InvalidArgument("the PostgreSQL URL is invalid: " + msg);
  }
  bool has_password = false;
  for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) == "password" && o->val != nullptr && *o->val != '\0') {
      has_password = true;
    }
  }
  PQconninfoFree(parsed);
  if (has_password) {
    return Status::InvalidArgument(
        "the PostgreSQL URL carries a password; remove it and set PGPASSWORD or use "
        "~/.pgpass (PGPASSFILE), so that the secret stays out of berth's configuration");
  }
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                         Connection::Open({options.url, options.connect_timeout_s}));
  BERTH_RETURN_IF_ERROR(Migrate(*conn));
  // Markers of sessions long gone; nobody will ask about their commits any more.
  BERTH_RETURN_IF_ERROR(
      conn->Query("DELETE FROM commit_markers WHERE at < now() - interval '7 days'").status());
  return std::unique_ptr<MetadataStore>(
      std::make_unique<PostgresMetadataStore>(options, std::move(conn)));
}

}  // namespace berth::storage
