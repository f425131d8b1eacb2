// `berth admin migrate`: copies a whole registry from one pair of stores to another —
// files + SQLite on one machine to an S3 bucket + PostgreSQL for several nodes, or back
// (any pair the configuration can name).
//
// What moves: every repository with all its attributes (account, tag mutability and
// its filters, scan and encryption settings, resource tags, policy, creation time);
// every blob linked into each repository, byte for byte, with its link; every manifest
// with its exact bytes, push time, references, subject and artifact type; every tag;
// the last recorded pull times; and the identities (access keys and their policies)
// with the token-signing key, so that credentials and logins keep working.
// Upload sessions in progress do not move (clients restart them).
//
// Resumable: every step is idempotent and looks at the destination first, so a run
// that was interrupted (or a second run after more pushes to the source) copies only
// what the destination lacks; a blob is never copied twice. Blob bytes are hashed while
// they stream and a blob whose bytes do not match its digest is not committed.
// Verification (on by default) then re-reads the destination: every blob's bytes hash
// to its digest, every manifest's bytes are the source's, tags, links, attributes and
// pull times are equal.
//
// Nothing is deleted at the destination: what the source deleted between two runs stays
// there (delete it through the API, or start from an empty destination).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "auth/shared_documents.h"
#include "base/status.h"
#include "storage/blob/blob_store.h"
#include "storage/meta/metadata_store.h"

namespace berth::cli {

// One side of a migration: its two stores, and where it keeps identities and the
// token key (the data directory's files, or the shared metadata store's settings).
struct MigrationEnd {
  storage::BlobStore* blobs = nullptr;
  storage::MetadataStore* meta = nullptr;
  auth::SharedDocuments* auth_docs = nullptr;
  std::string description;  // for messages: "filesystem /data + sqlite /data/meta.db"
};

struct MigrateOptions {
  bool verify = true;
  size_t page_size = 500;
  // One line of progress (a repository done, verification started, ...).
  std::function<void(std::string_view)> progress;
  // Called before each blob's bytes are copied; an error stops the run there, as an
  // interruption would (tests use it to prove that a second run resumes).
  std::function<Status(const oci::Digest&)> before_blob_copy;
};

struct MigrateReport {
  size_t repositories = 0;          // repositories in the source
  size_t repositories_created = 0;  // of those, created at the destination by this run
  size_t blobs_copied = 0;          // blobs whose bytes this run copied
  uint64_t bytes_copied = 0;
  size_t blobs_linked = 0;          // links made to bytes the destination already had
  size_t blobs_present = 0;         // links the destination already had
  size_t manifests_copied = 0;
  size_t manifests_present = 0;
  size_t tags_set = 0;              // tags this run pointed at their manifest
  size_t pulls_recorded = 0;
  size_t identities_added = 0;
  size_t identities_replaced = 0;
  bool token_key_copied = false;
  // Verification (when asked for).
  size_t blobs_verified = 0;  // distinct blobs re-read and re-hashed at the destination
  uint64_t bytes_verified = 0;
  size_t manifests_verified = 0;
  size_t tags_verified = 0;
};

// Copies everything in `from` to `to` (see the header comment). On an error the
// report so far is lost but the destination keeps what was copied: run it again.
// kCorruption when verification finds a difference (the message lists the first ones).
Result<MigrateReport> Migrate(const MigrationEnd& from, const MigrationEnd& to,
                              const MigrateOptions& options);

// The identities and token key of a data directory (DATA/identities.json and
// DATA/token.key) as shared documents under auth/'s names, for a MigrationEnd on the
// embedded default. Swap writes the file atomically (mode 0600).
class DataDirDocuments final : public auth::SharedDocuments {
 public:
  explicit DataDirDocuments(std::string data_dir) : data_dir_(std::move(data_dir)) {}
  Result<std::optional<std::string>> Get(std::string_view name) override;
  Status Swap(std::string_view name, const std::optional<std::string>& expected,
              std::string_view value) override;

 private:
  Result<std::string> PathOf(std::string_view name) const;
  const std::string data_dir_;
};

}  // namespace berth::cli
