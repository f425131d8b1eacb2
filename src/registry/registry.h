// Registry: the rules of an OCI registry — repositories, blobs and uploads,
// manifests, tags, references — on top of a BlobStore and a MetadataStore.
// It is the only layer that touches both stores, and it writes the blob before
// the metadata that makes it visible. It knows nothing of HTTP.
//
// Thread-safe. Every method may block on storage and must run off the I/O threads,
// except UploadAppender::Write, which is the streaming hot path (hash + append).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "oci/digest.h"
#include "oci/manifest.h"
#include "oci/reference.h"
#include "storage/blob/blob_store.h"
#include "storage/meta/metadata_store.h"

namespace berth::registry {

struct Options {
  // Create a repository on the first push instead of refusing with kNameUnknown.
  bool create_on_push = false;
  uint64_t max_manifest_bytes = 4 * 1024 * 1024;
  // Upload sessions idle longer than this are swept.
  int64_t upload_expiry_ms = 24LL * 3600 * 1000;
};

// Counters the registry reports (read by /metrics).
struct RegistryStats {
  std::atomic<int64_t> uploads_in_progress{0};
  std::atomic<uint64_t> storage_errors{0};
  std::atomic<uint64_t> uploads_expired{0};
};

class Registry;

// Appends one request's bytes to an upload session, hashing as it goes.
// Obtained from Registry::BeginAppend; Finish (off the I/O thread) records the new
// offset. If the appender is destroyed without Finish, the bytes written are still
// recorded (so a client can resume), by the destructor — which may then block.
class UploadAppender {
 public:
  ~UploadAppender();
  UploadAppender(const UploadAppender&) = delete;
  UploadAppender& operator=(const UploadAppender&) = delete;

  // Hot path: hash + append. Fine to call on an I/O thread (page-cache write).
  Status Write(std::span<const char> data);
  // Offset after everything written so far.
  uint64_t offset() const;
  // Persists the offset; returns it.
  Result<uint64_t> Finish();

 private:
  friend class Registry;
  UploadAppender() = default;
  Registry* registry_ = nullptr;
  std::string id_;
  std::unique_ptr<storage::BlobWriter> writer_;
  std::unique_ptr<oci::Hasher> hasher_;
  bool finished_ = false;
  Status write_error_;
};

struct PutManifestResult {
  oci::Digest digest;
  std::optional<oci::Digest> subject;
};

struct OpenedBlob {
  storage::BlobRecord record;
  std::unique_ptr<storage::BlobReader> reader;
};

class Registry {
 public:
  Registry(storage::BlobStore& blobs, storage::MetadataStore& meta, const Clock& clock,
           Options options);
  ~Registry();

  const Options& options() const { return options_; }
  RegistryStats& stats() { return stats_; }
  Status CheckReady();

  // ---- repositories
  Result<std::vector<std::string>> Catalog(std::string_view after, size_t limit);
  // kNameUnknown unless the repository exists, or create_on_push creates it now.
  Status EnsureRepositoryForPush(std::string_view repo);
  Status RequireRepository(std::string_view repo);

  // ---- blobs
  Result<storage::BlobRecord> StatBlob(std::string_view repo, const oci::Digest& digest);
  Result<OpenedBlob> OpenBlob(std::string_view repo, const oci::Digest& digest);
  Status DeleteBlob(std::string_view repo, const oci::Digest& digest);

  // ---- uploads
  Result<storage::UploadRecord> StartUpload(std::string_view repo);
  // Links `digest` from repository `from` into `repo`. kBlobUnknown when `from` does
  // not hold it (the caller then starts a normal upload).
  Result<storage::BlobRecord> Mount(std::string_view repo, std::string_view from,
                                    const oci::Digest& digest);
  Result<storage::UploadRecord> GetUpload(std::string_view repo, std::string_view id);
  // Opens the session for appending at `start` (nullopt = at the current offset).
  // kRangeInvalid when `start` is not the current offset or another request is writing.
  Result<std::unique_ptr<UploadAppender>> BeginAppend(std::string_view repo, std::string_view id,
                                                      std::optional<uint64_t> start);
  // Verifies `digest` against the bytes received, commits the blob durably, links it
  // into the repository and ends the session. kDigestInvalid on mismatch (the session
  // is kept, so the client may retry), kSizeInvalid for an empty upload with a non-empty digest.
  Result<storage::BlobRecord> CompleteUpload(std::string_view repo, std::string_view id,
                                             const oci::Digest& digest);
  Status CancelUpload(std::string_view repo, std::string_view id);
  // Removes sessions idle past the expiry with their bytes; returns how many.
  Result<size_t> SweepStaleUploads();

  // ---- manifests
  Result<storage::ManifestRecord> GetManifest(std::string_view repo, const oci::Reference& ref);
  Result<PutManifestResult> PutManifest(std::string_view repo, const oci::Reference& ref,
                                        std::string_view content_type, std::string bytes);
  Status DeleteManifest(std::string_view repo, const oci::Reference& ref);
  Result<std::vector<std::string>> ListTags(std::string_view repo, std::string_view after,
                                            size_t limit);
  // The referrers of `subject` as an OCI image index (JSON bytes).
  Result<std::string> Referrers(std::string_view repo, const oci::Digest& subject,
                                std::string_view artifact_type);

 private:
  friend class UploadAppender;
  struct HashState {
    std::unique_ptr<oci::Hasher> hasher;  // null while an appender holds it
    bool busy = false;
  };
  // Rebuilds a hash over the upload's first `size` bytes (after a restart, or on
  // another node: the byte offset is authoritative).
  Result<std::unique_ptr<oci::Hasher>> RehashUpload(std::string_view id, uint64_t size,
                                                    oci::DigestAlgorithm alg);
  void ReleaseHash(const std::string& id, std::unique_ptr<oci::Hasher> hasher);
  Status RecordStorageError(Status st);

  storage::BlobStore& blobs_;
  storage::MetadataStore& meta_;
  const Clock& clock_;
  Options options_;
  RegistryStats stats_;

  // Waits (bounded) until no request is appending to upload `id`, so that a status
  // query or the next chunk sees the offset the previous request recorded — a client
  // whose connection died may ask before the server has noticed.
  void WaitUntilIdle(const std::string& id);

  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::unordered_map<std::string, HashState> hashes_;  // guarded by mu_
};

}  // namespace berth::registry
