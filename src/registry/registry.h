// Registry: the rules of an OCI registry — repositories, blobs and uploads,
// manifests, tags, references — and of ECR on top of them (accounts, tag
// mutability, policies, resource tags, image listings), over a BlobStore and a
// MetadataStore. It is the only layer that touches both stores, and it writes the
// blob before the metadata that makes it visible. It knows nothing of HTTP.
//
// Accounts: every repository belongs to an account (ECR registry id). Methods that
// take an `account` act in that account's registry: a repository of another account
// is reported as not found. The /v2 methods address repositories by name alone.
//
// Thread-safe. Every method may block on storage and must run off the I/O threads,
// except CachedManifest, CachedTags and RecordPull, which only touch memory.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
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
#include "registry/manifest_cache.h"
#include "storage/blob/blob_store.h"
#include "storage/meta/metadata_store.h"

namespace berth::registry {

struct Options {
  // Create a repository on the first push instead of refusing with kNameUnknown.
  bool create_on_push = false;
  uint64_t max_manifest_bytes = 4 * 1024 * 1024;
  // Upload sessions idle longer than this are swept.
  int64_t upload_expiry_ms = 24LL * 3600 * 1000;
  // The account that owns repositories created on push (and those created before
  // accounts existed), and that /v2 messages name. Default: "000000000000".
  std::string account_id = "000000000000";
  // Pulls waiting for FlushPulls beyond this many are not recorded. Default: 100000.
  size_t max_pending_pulls = 100000;
  // Memory for manifests cached for pulls (see manifest_cache.h); 0 = no cache.
  // Default: 32 MiB. Caches work only over a store that publishes a read epoch.
  size_t manifest_cache_bytes = 32 * 1024 * 1024;
  // How long a writer holds an upload session without writing before another request
  // (on any node) may take it over; renewed while bytes flow. Default: 30 s.
  int64_t upload_lease_ms = 30 * 1000;
  // How long a node holds a periodic job (the upload sweep) before another node may
  // take it over; nodes run each job one at a time. Default: 5 min.
  int64_t job_lease_ms = 5 * 60 * 1000;
};

// Most resource tags a repository may carry (as on ECR).
inline constexpr size_t kMaxRepositoryTags = 50;

// Counters the registry reports (read by /metrics).
struct RegistryStats {
  std::atomic<int64_t> uploads_in_progress{0};
  std::atomic<uint64_t> storage_errors{0};
  std::atomic<uint64_t> uploads_expired{0};
};

class Registry;

// Appends one request's bytes to an upload session, hashing as it goes.
// Obtained from Registry::BeginAppend, which leases the session in the metadata store
// (one writer at a time, across nodes). Finish (off the I/O thread) makes the bytes
// durable and records, by compare-and-set, the new offset with the hash state and the
// blob store's cursor, so the next request may continue on any node without
// re-reading anything. If the appender is destroyed without Finish, the bytes written
// are still recorded (so a client can resume), by the destructor — which may then block.
class UploadAppender {
 public:
  ~UploadAppender();
  UploadAppender(const UploadAppender&) = delete;
  UploadAppender& operator=(const UploadAppender&) = delete;

  // Hash + append. Blocks (disk writes): call it off the I/O threads.
  Status Write(std::span<const char> data);
  // The two halves of Write, for a caller that overlaps them: Hash and Append of the
  // same bytes may run at the same time on two threads, but each must be called in
  // stream order and never concurrently with itself.
  void Hash(std::span<const char> data);
  Status Append(std::span<const char> data);
  // Offset after everything written so far.
  uint64_t offset() const;
  // Persists the offset; returns it.
  Result<uint64_t> Finish();

 private:
  friend class Registry;
  UploadAppender() = default;
  // Renews the lease when a third of it has passed.
  Status KeepLease();

  Registry* registry_ = nullptr;
  std::string id_;
  std::string token_;           // the lease this appender holds
  uint64_t start_offset_ = 0;   // the offset the lease was taken at
  int64_t lease_renewed_ms_ = 0;
  std::unique_ptr<storage::BlobWriter> writer_;
  std::unique_ptr<oci::Hasher> hasher_;
  bool finished_ = false;
  Status write_error_;
};

struct PutManifestResult {
  oci::Digest digest;
  std::optional<oci::Digest> subject;
  std::string media_type;
};

// ECR's PutImage: a manifest with an optional tag and an optional expected digest.
struct PutImageRequest {
  std::string manifest;    // the exact bytes
  std::string media_type;  // may be empty when the manifest has a mediaType field
  std::string tag;         // empty: no tag
  std::optional<oci::Digest> digest;
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
  // OK when both stores answer; otherwise kUnavailable naming each one that does not
  // (for /readyz).
  Status CheckReady();

  // ---- repositories
  // Repository names after `after`; only `account`'s when it is non-empty.
  Result<std::vector<std::string>> Catalog(std::string_view after, size_t limit,
                                           std::string_view account = {});
  // kNameUnknown unless the repository exists, or create_on_push creates it now.
  Status EnsureRepositoryForPush(std::string_view repo);
  Status RequireRepository(std::string_view repo);
  // The repository named `name`, whatever account owns it (kNameUnknown if none):
  // authorization needs its owner and policy.
  Result<storage::RepositoryRecord> FindRepository(std::string_view name);

  // ---- repositories (ECR control plane)
  // Gives repositories created before accounts existed to options().account_id.
  // Call once at startup.
  Status AdoptUnownedRepositories();
  // Creates `repo` (name, attributes, tags; an empty account means the default one)
  // and returns it as stored. kAlreadyExists when the name is taken.
  Result<storage::RepositoryRecord> CreateRepository(storage::RepositoryRecord repo);
  Result<storage::RepositoryRecord> GetRepository(std::string_view account, std::string_view name);
  // The account's repositories sorted by name, strictly after `after`, at most `limit`.
  Result<std::vector<storage::RepositoryRecord>> ListRepositories(std::string_view account,
                                                                  std::string_view after,
                                                                  size_t limit);
  // Returns the repository as it was. Without `force`, kFailedPrecondition while it
  // holds images.
  Result<storage::RepositoryRecord> DeleteRepository(std::string_view account,
                                                     std::string_view name, bool force);
  Result<storage::RepositoryRecord> SetTagMutability(std::string_view account,
                                                     std::string_view name,
                                                     const storage::TagMutabilitySetting& setting);
  // kInvalidArgument unless `policy` is a JSON object with a Statement.
  Status SetRepositoryPolicy(std::string_view account, std::string_view name,
                             std::string_view policy);
  // kNotFound when the repository has no policy.
  Result<std::string> GetRepositoryPolicy(std::string_view account, std::string_view name);
  Result<std::string> DeleteRepositoryPolicy(std::string_view account, std::string_view name);
  // Adds or replaces resource tags; kOutOfRange beyond kMaxRepositoryTags.
  Status TagRepository(std::string_view account, std::string_view name,
                       const std::vector<storage::ResourceTag>& tags);
  Status UntagRepository(std::string_view account, std::string_view name,
                         const std::vector<std::string>& keys);

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
  // `algorithm`: the digest algorithm the client announced (a monolithic upload's
  // ?digest=); it picks the hash of a session that has no bytes yet. Default sha256.
  Result<std::unique_ptr<UploadAppender>> BeginAppend(
      std::string_view repo, std::string_view id, std::optional<uint64_t> start,
      std::optional<oci::DigestAlgorithm> algorithm = std::nullopt);
  // Verifies `digest` against the bytes received, commits the blob durably, links it
  // into the repository and ends the session. kDigestInvalid on mismatch (the session
  // is kept, so the client may retry), kSizeInvalid for an empty upload with a non-empty digest.
  Result<storage::BlobRecord> CompleteUpload(std::string_view repo, std::string_view id,
                                             const oci::Digest& digest);
  Status CancelUpload(std::string_view repo, std::string_view id);
  // Removes sessions idle past the expiry with their bytes; returns how many.
  Result<size_t> SweepStaleUploads();

  // ---- manifests
  // The manifest `ref` names, as a pull serves it: from the store, without blob_refs
  // and child_refs (empty; see MetadataStore::GetManifestForPull). The manifest cache
  // keeps it for the next pulls.
  Result<std::shared_ptr<const storage::ManifestRecord>> GetManifest(std::string_view repo,
                                                                     const oci::Reference& ref);
  // The manifest `ref` names if the cache holds it as the store has it now, else null
  // (then call GetManifest). Only touches memory: made for the I/O threads. `repo` must
  // be a valid name.
  std::shared_ptr<const storage::ManifestRecord> CachedManifest(std::string_view repo,
                                                                const oci::Reference& ref);
  Result<PutManifestResult> PutManifest(std::string_view repo, const oci::Reference& ref,
                                        std::string_view content_type, std::string bytes);
  Status DeleteManifest(std::string_view repo, const oci::Reference& ref);
  // Tags of `repo` sorted, strictly after `after`, at most `limit`; cached like
  // manifests (under the read epoch), so that CachedTags can answer the same page.
  Result<std::shared_ptr<const std::vector<std::string>>> ListTags(std::string_view repo,
                                                                   std::string_view after,
                                                                   size_t limit);
  // The page ListTags would return, if it is cached and still current; null otherwise.
  // Only touches memory: fine on an I/O thread.
  std::shared_ptr<const std::vector<std::string>> CachedTags(std::string_view repo,
                                                             std::string_view after,
                                                             size_t limit);
  // The referrers of `subject` as an OCI image index (JSON bytes).
  Result<std::string> Referrers(std::string_view repo, const oci::Digest& subject,
                                std::string_view artifact_type);

  // ---- images (ECR views of manifests)
  // ECR's PutImage rules on top of PutManifest: kDigestInvalid when `digest` does not
  // match, kManifestBlobUnknown for a missing layer, kManifestUnknown for a missing
  // child of an index, kTagInvalid for an immutable tag, and kAlreadyExists when
  // nothing would change (the tag already points at this manifest, or no tag and the
  // manifest is already there).
  Result<PutManifestResult> PutImage(std::string_view account, std::string_view repo,
                                     PutImageRequest request);
  // Images with their tags, sorted by digest, strictly after `after`.
  Result<std::vector<storage::ImageRecord>> ListImages(std::string_view account,
                                                       std::string_view repo,
                                                       storage::TagFilter filter,
                                                       std::string_view after, size_t limit);
  Result<storage::ImageRecord> DescribeImage(std::string_view account, std::string_view repo,
                                             const oci::Digest& digest);
  // The manifest (with its bytes) a tag or digest names.
  Result<storage::ManifestRecord> GetImageManifest(std::string_view account, std::string_view repo,
                                                   const oci::Reference& ref);
  // Removes a tag; its image goes too when that was its last tag and no index lists it.
  Result<storage::RemovedTag> UntagImage(std::string_view account, std::string_view repo,
                                         std::string_view tag);
  // Removes an image and all its tags; returns the tags it had. kManifestReferenced
  // while an index lists it.
  Result<std::vector<std::string>> DeleteImage(std::string_view account, std::string_view repo,
                                               const oci::Digest& digest);

  // ---- layers (ECR's layer API over the upload sessions)
  // Appends one part at byte `first`; kRangeInvalid (detail = bytes received so far)
  // unless it continues the upload exactly. Returns the new size of the upload.
  Result<uint64_t> UploadLayerPart(std::string_view account, std::string_view repo,
                                   std::string_view upload_id, uint64_t first,
                                   std::string_view bytes);
  // Verifies the upload against the first of `digests` it matches and commits it.
  // kSizeInvalid for an empty upload, kDigestInvalid when none matches (the session is
  // kept), kAlreadyExists when the repository already held the layer.
  Result<storage::BlobRecord> CompleteLayerUpload(std::string_view account, std::string_view repo,
                                                  std::string_view upload_id,
                                                  const std::vector<oci::Digest>& digests);

  // ---- pull times (ECR's lastRecordedPullTime)
  // Notes a pull in memory; FlushPulls writes the pending ones in one transaction.
  void RecordPull(std::string_view repo, const oci::Digest& digest);
  Status FlushPulls();

 private:
  friend class UploadAppender;
  // The session's hash as recorded (a fresh one of `alg` before the first byte).
  // kUploadInvalid when the session has bytes but no usable hash state.
  Result<std::unique_ptr<oci::Hasher>> SessionHasher(const storage::UploadRecord& rec,
                                                     oci::DigestAlgorithm alg);
  // Hashes the upload's bytes with `alg` by reading them back: only for a digest of
  // another algorithm than the session's, and only where the blob store can read an
  // upload in progress.
  Result<oci::Digest> RehashUpload(const storage::UploadRecord& rec, oci::DigestAlgorithm alg);
  // Takes the session's lease for a new writer; kRangeInvalid while another holds it.
  Result<storage::UploadRecord> LeaseUpload(const storage::UploadRecord& rec,
                                            const std::string& token);
  void MarkBusy(const std::string& id, bool busy);
  Status RecordStorageError(Status st);
  Status RepositoryNotFound(std::string_view name, std::string_view account) const;
  // The repository a /v2 push goes to, created now under create_on_push.
  Result<storage::RepositoryRecord> RepositoryForPush(std::string_view repo);
  // Validates a manifest (size, schema, `expected` digest) into the record to store.
  Result<storage::ManifestRecord> PrepareManifest(std::string_view repo,
                                                  const std::optional<oci::Digest>& expected,
                                                  std::string_view content_type, std::string bytes);
  // Stores it under `repo`'s rules (tag mutability). `ecr` selects PutImage's errors
  // over the /v2 ones.
  Result<PutManifestResult> CommitManifest(const storage::RepositoryRecord& repo,
                                           storage::ManifestRecord rec, std::string_view tag,
                                           bool ecr);
  // Keeps a manifest the store returned for `ref` in a read started at `epoch`.
  void CacheManifest(std::string_view repo, const oci::Reference& ref,
                     const std::shared_ptr<const storage::ManifestRecord>& rec, uint64_t epoch);
  // Overlays pulls not yet flushed onto listed images.
  void ApplyPendingPulls(std::vector<storage::ImageRecord>& images);

  storage::BlobStore& blobs_;
  // This process's name in job leases (random per Registry).
  const std::string node_token_;
  storage::MetadataStore& meta_;
  const Clock& clock_;
  Options options_;
  RegistryStats stats_;
  ManifestCache manifests_;
  TagPageCache tag_pages_;

  // Waits (bounded) until no request of this node is appending to upload `id`, so that
  // a status query or the next chunk sees the offset the previous request recorded — a
  // client whose connection died may ask before the server has noticed. (Across nodes
  // the lease decides; this only spares a same-node client a spurious refusal.)
  void WaitUntilIdle(const std::string& id);

  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::unordered_map<std::string, int> busy_;  // appenders per upload id; guarded by mu_

  // (repository, digest) -> latest pull not yet written. Looked up by views: RecordPull
  // runs on every manifest GET and should not copy the key to find it.
  struct PullKeyLess {
    using is_transparent = void;
    using View = std::pair<std::string_view, std::string_view>;
    bool operator()(View a, View b) const { return a < b; }
  };
  using PendingPulls = std::map<std::pair<std::string, std::string>, int64_t, PullKeyLess>;

  std::mutex pulls_mu_;
  PendingPulls pending_pulls_;  // guarded by pulls_mu_
};

}  // namespace berth::registry
