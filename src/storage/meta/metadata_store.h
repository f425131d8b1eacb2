// MetadataStore: everything about the registry that is not blob bytes —
// repositories, manifests (their exact bytes and what they reference), tags,
// repository→blob links, referrers, upload sessions.
//
// The interface speaks in domain terms; no SQL dialect or file layout leaks out.
// Every method that changes several rows does so in one transaction, so a crash
// leaves either all or none of it. Listings are paginated by key (`after`), never
// by offset. All methods are thread-safe and may block: call them off I/O threads.
//
// Errors: a missing repository is kNameUnknown (message names it); a missing
// manifest or tag kManifestUnknown; a blob not linked into the repository
// kBlobUnknown; a missing upload kUploadUnknown. Every backend passes
// meta/metadata_store_conformance.h.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "oci/digest.h"

namespace berth::storage {

struct RepositoryRecord {
  std::string name;
  int64_t created_at_ms = 0;
};

struct BlobRecord {
  oci::Digest digest;
  uint64_t size = 0;
  int64_t created_at_ms = 0;
};

struct ManifestRecord {
  std::string repository;
  oci::Digest digest;
  std::string media_type;
  std::string artifact_type;           // may be empty
  std::string bytes;                   // exactly as received (empty in listings)
  int64_t size = 0;                    // bytes.size()
  int64_t pushed_at_ms = 0;
  std::optional<oci::Digest> subject;  // OCI referrers
  std::string annotations_json;        // the manifest's annotations object, "{}" if none
  // What the manifest references; PutManifest requires all of them to be present in
  // the repository: blobs linked, children stored as manifests.
  std::vector<oci::Digest> blob_refs;
  std::vector<oci::Digest> child_refs;
};

struct UploadRecord {
  std::string id;
  std::string repository;
  uint64_t offset = 0;  // bytes accepted so far (authoritative)
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;
  MetadataStore() = default;
  MetadataStore(const MetadataStore&) = delete;
  MetadataStore& operator=(const MetadataStore&) = delete;

  // Health: OK when the store answers queries.
  virtual Status Check() = 0;

  // ---- repositories
  // kAlreadyExists when it exists.
  virtual Status CreateRepository(const RepositoryRecord& repo) = 0;
  virtual Result<RepositoryRecord> GetRepository(std::string_view name) = 0;
  // Names sorted ascending, strictly after `after` (empty = from the start), at most `limit`.
  virtual Result<std::vector<std::string>> ListRepositories(std::string_view after,
                                                            size_t limit) = 0;
  // Removes the repository with its manifests, tags, links and uploads.
  // Without `force`, kFailedPrecondition when it still holds manifests.
  virtual Status DeleteRepository(std::string_view name, bool force) = 0;

  // ---- blobs
  // Records a committed blob (if new) and links it into `repository`, and deletes the
  // upload session `upload_id` (if non-empty), in one transaction.
  virtual Status CommitBlob(std::string_view repository, const BlobRecord& blob,
                            std::string_view upload_id) = 0;
  // The blob if it is linked into the repository (kBlobUnknown otherwise).
  virtual Result<BlobRecord> GetLinkedBlob(std::string_view repository,
                                           const oci::Digest& digest) = 0;
  // The blob if the registry holds it at all, whatever repository (kBlobUnknown otherwise).
  virtual Result<BlobRecord> GetBlob(const oci::Digest& digest) = 0;
  // Links an existing blob into `repository` (cross-repository mount). Idempotent.
  virtual Status LinkBlob(std::string_view repository, const oci::Digest& digest) = 0;
  // Removes the link (the bytes stay until garbage collection). kBlobUnknown if not linked.
  virtual Status UnlinkBlob(std::string_view repository, const oci::Digest& digest) = 0;

  // ---- manifests and tags
  // Stores the manifest (idempotent for the same digest) with its references, and points
  // `tag` at it when non-empty, in one transaction. Fails with kManifestBlobUnknown
  // (detail = the missing digest) when a blob_ref is not linked into the repository or
  // a child_ref is not a manifest of the repository.
  virtual Status PutManifest(const ManifestRecord& manifest, std::string_view tag) = 0;
  virtual Result<ManifestRecord> GetManifest(std::string_view repository,
                                             const oci::Digest& digest) = 0;
  // The manifest a tag points at, in one lookup.
  virtual Result<ManifestRecord> GetManifestByTag(std::string_view repository,
                                                  std::string_view tag) = 0;
  // Tags sorted ascending, strictly after `after`, at most `limit`.
  virtual Result<std::vector<std::string>> ListTags(std::string_view repository,
                                                    std::string_view after, size_t limit) = 0;
  // Tags pointing at `digest`, sorted.
  virtual Result<std::vector<std::string>> TagsOf(std::string_view repository,
                                                  const oci::Digest& digest) = 0;
  // Removes only the tag. kManifestUnknown when absent.
  virtual Status DeleteTag(std::string_view repository, std::string_view tag) = 0;
  // Removes the manifest, its tags and its reference rows. kManifestReferenced (detail =
  // the referencing index digest) while an index in the repository lists it as a child.
  virtual Status DeleteManifest(std::string_view repository, const oci::Digest& digest) = 0;
  // Manifests in `repository` whose subject is `subject`, optionally only those with the
  // given artifact type; without bytes. Sorted by digest.
  virtual Result<std::vector<ManifestRecord>> ListReferrers(std::string_view repository,
                                                            const oci::Digest& subject,
                                                            std::string_view artifact_type) = 0;

  // ---- upload sessions
  virtual Status CreateUpload(const UploadRecord& upload) = 0;
  virtual Result<UploadRecord> GetUpload(std::string_view id) = 0;
  // Sets offset and updated_at; kUploadUnknown when absent.
  virtual Status UpdateUpload(std::string_view id, uint64_t offset, int64_t updated_at_ms) = 0;
  virtual Status DeleteUpload(std::string_view id) = 0;
  // Sessions not updated since `updated_before_ms`, oldest first, at most `limit`.
  virtual Result<std::vector<UploadRecord>> ListStaleUploads(int64_t updated_before_ms,
                                                             size_t limit) = 0;
};

}  // namespace berth::storage
