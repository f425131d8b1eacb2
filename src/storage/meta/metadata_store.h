// MetadataStore: everything about the registry that is not blob bytes —
// repositories (with their ECR attributes: owning account, tag mutability, scanning
// and encryption settings, resource tags, policy), manifests (their exact bytes and
// what they reference), tags, repository→blob links, referrers, upload sessions.
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
#include <utility>
#include <vector>

#include "base/status.h"
#include "oci/digest.h"

namespace berth::storage {

// How a repository treats a push that would move an existing tag (ECR's
// imageTagMutability). With an exclusion mode, tags matching one of the filters get
// the opposite behaviour.
enum class TagMutability : uint8_t {
  kMutable,
  kImmutable,
  kImmutableWithExclusion,  // immutable, except tags matching a filter
  kMutableWithExclusion,    // mutable, except tags matching a filter
};

struct TagMutabilitySetting {
  TagMutability mode = TagMutability::kMutable;
  // Wildcard patterns ('*' matches any run of characters); only for exclusion modes.
  std::vector<std::string> exclusion_filters;
  friend bool operator==(const TagMutabilitySetting&, const TagMutabilitySetting&) = default;
};

// A key/value label on a repository (AWS resource tag).
struct ResourceTag {
  std::string key;
  std::string value;
  friend bool operator==(const ResourceTag&, const ResourceTag&) = default;
};

struct RepositoryRecord {
  // Name and creation time are all most callers set; the rest keep their defaults.
  RepositoryRecord(std::string name = {}, int64_t created_at_ms = 0)  // NOLINT: implicit
      : name(std::move(name)), created_at_ms(created_at_ms) {}

  std::string name;
  int64_t created_at_ms = 0;
  // The account (ECR registry id) that owns the repository; empty for repositories
  // created before accounts existed (see AssignUnownedRepositories).
  std::string account_id;
  TagMutabilitySetting tag_mutability;
  bool scan_on_push = false;
  std::string encryption_type = "AES256";
  std::string kms_key;                // empty unless a KMS encryption type is set
  std::vector<ResourceTag> tags;      // sorted by key, keys unique
  std::optional<std::string> policy;  // the repository policy document, verbatim
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
  // What the image weighs as ECR reports it (imageSizeInBytes), computed by the
  // registry at push time: for an image the sum of its layer sizes, for an index the
  // largest of its children's.
  int64_t image_size = 0;
};

// A manifest as image listings show it (ECR's DescribeImages): the record without
// bytes or references, with its tags and the last recorded pull.
struct ImageRecord {
  ManifestRecord manifest;        // bytes, blob_refs and child_refs are empty
  std::vector<std::string> tags;  // sorted
  int64_t last_pulled_at_ms = 0;  // 0 = no pull recorded
};

// Which manifests an image listing includes.
enum class TagFilter : uint8_t { kAny, kTagged, kUntagged };

// Options of PutManifest beyond the record itself.
struct PutManifestOptions {
  // The tag may not move once it exists: a push that would point it at another
  // manifest fails with kTagInvalid (detail = the tag). Checked in the transaction
  // that writes the tag, so two concurrent pushes can never both move it.
  bool immutable_tag = false;
};

// What PutManifest changed.
struct PutManifestOutcome {
  bool manifest_created = false;  // the repository did not hold this digest before
  bool tag_unchanged = false;     // the tag already pointed at this manifest
};

// Options of RemoveTag.
struct RemoveTagOptions {
  // Also remove the manifest when no other tag points at it and no index in the
  // repository lists it, in the same transaction (the registry decides when: ECR's
  // untagging of an image's last tag deletes the image, /v2 tag deletion does not).
  bool delete_untagged_manifest = false;
};

// What RemoveTag removed.
struct RemovedTag {
  oci::Digest digest;             // the manifest the tag pointed at
  bool manifest_deleted = false;  // delete_untagged_manifest applied: the manifest went too
};

// A pull of a manifest, as recorded (in batches) for ECR's lastRecordedPullTime.
struct PullRecord {
  std::string repository;
  oci::Digest digest;
  int64_t pulled_at_ms = 0;
};

struct UploadRecord {
  std::string id;
  std::string repository;
  uint64_t offset = 0;  // bytes accepted so far (authoritative)
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  // The resumable hash over the first `offset` bytes (oci::Hasher::SaveState), so
  // that no node re-reads the bytes received so far; empty before the first byte.
  std::string hash_state;
  // The blob store's UploadCursor::state for `offset` bytes, verbatim (text, no NUL).
  std::string blob_state;
  // The writer that holds the session (see LeaseUpload); empty when nobody does.
  std::string lease_token;
  int64_t lease_expires_ms = 0;
};

// What an append made durable, recorded by AdvanceUpload.
struct UploadProgress {
  uint64_t offset = 0;
  std::string hash_state;
  std::string blob_state;
  int64_t updated_at_ms = 0;
  bool release = true;  // also give up the lease
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;
  MetadataStore() = default;
  MetadataStore(const MetadataStore&) = delete;
  MetadataStore& operator=(const MetadataStore&) = delete;

  // Health: OK when the store answers queries.
  virtual Status Check() = 0;

  // The read epoch: what lets a cache above the store (registry/manifest_cache.h) tell
  // whether what GetRepository, GetManifest and GetManifestByTag (and their ForPull
  // forms) returned is still what they would return now. It is odd while a write that
  // may change those reads is in progress, and the write makes it even again, with a
  // new value, only once it has committed or rolled back. So if it reads the same even
  // value before a read and
  // later, no such write started or ended in between and the read is still current.
  // Writes that change nothing those reads return (upload sessions, blob links, pull
  // times) may leave it alone. Never blocks; fine on an I/O thread.
  //
  // nullopt (the default): this backend cannot tell when its data changes (e.g. other
  // nodes write to it too), so nothing may be cached above it.
  virtual std::optional<uint64_t> ReadEpoch() const { return std::nullopt; }

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
  // The repositories of `account_id` with all their attributes, sorted by name,
  // strictly after `after`, at most `limit`.
  virtual Result<std::vector<RepositoryRecord>> ListRepositoryRecords(std::string_view account_id,
                                                                      std::string_view after,
                                                                      size_t limit) = 0;
  // Gives every repository without an account (created before accounts existed) to
  // `account_id`; returns how many. Idempotent.
  virtual Result<size_t> AssignUnownedRepositories(std::string_view account_id) = 0;
  virtual Status SetTagMutability(std::string_view name, const TagMutabilitySetting& setting) = 0;
  // Stores the policy document verbatim (the caller validates it), replacing any.
  virtual Status SetRepositoryPolicy(std::string_view name, std::string_view policy) = 0;
  // Removes the policy and returns it; kNotFound when the repository has none.
  virtual Result<std::string> DeleteRepositoryPolicy(std::string_view name) = 0;
  // Removes the tags with `remove_keys` (absent keys are ignored), then sets `set`
  // (replacing values of existing keys), in one transaction. kOutOfRange, changing
  // nothing, when the repository would end up with more than `max_tags` tags.
  virtual Status UpdateRepositoryTags(std::string_view name, const std::vector<ResourceTag>& set,
                                      const std::vector<std::string>& remove_keys,
                                      size_t max_tags) = 0;

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
  // The blobs linked into `repository`, sorted by digest string, strictly after `after`
  // (empty = from the start), at most `limit` (migration, garbage collection).
  virtual Result<std::vector<BlobRecord>> ListLinkedBlobs(std::string_view repository,
                                                          std::string_view after,
                                                          size_t limit) = 0;

  // ---- manifests and tags
  // Stores the manifest (idempotent for the same digest) with its references, and points
  // `tag` at it when non-empty, in one transaction. Fails with kManifestBlobUnknown
  // (detail = the missing digest) when a blob_ref is not linked into the repository or
  // a child_ref is not a manifest of the repository, and with kTagInvalid when
  // `options.immutable_tag` forbids moving an existing tag; nothing changes then.
  virtual Result<PutManifestOutcome> PutManifest(const ManifestRecord& manifest,
                                                 std::string_view tag,
                                                 const PutManifestOptions& options) = 0;
  Result<PutManifestOutcome> PutManifest(const ManifestRecord& manifest, std::string_view tag) {
    return PutManifest(manifest, tag, PutManifestOptions{});
  }
  virtual Result<ManifestRecord> GetManifest(std::string_view repository,
                                             const oci::Digest& digest) = 0;
  // The manifest a tag points at, in one lookup.
  virtual Result<ManifestRecord> GetManifestByTag(std::string_view repository,
                                                  std::string_view tag) = 0;
  // GetManifest and GetManifestByTag for a pull, which serves the bytes and never looks
  // at the references: blob_refs and child_refs are left empty, sparing a lookup in
  // another table each. The defaults read the whole record.
  virtual Result<ManifestRecord> GetManifestForPull(std::string_view repository,
                                                    const oci::Digest& digest) {
    return GetManifest(repository, digest);
  }
  virtual Result<ManifestRecord> GetManifestByTagForPull(std::string_view repository,
                                                         std::string_view tag) {
    return GetManifestByTag(repository, tag);
  }
  // Tags sorted ascending, strictly after `after`, at most `limit`.
  virtual Result<std::vector<std::string>> ListTags(std::string_view repository,
                                                    std::string_view after, size_t limit) = 0;
  // Tags pointing at `digest`, sorted, strictly after `after`, at most `limit`.
  virtual Result<std::vector<std::string>> TagsOf(std::string_view repository,
                                                  const oci::Digest& digest,
                                                  std::string_view after, size_t limit) = 0;
  // Removes only the tag. kManifestUnknown when absent.
  virtual Status DeleteTag(std::string_view repository, std::string_view tag) = 0;
  // Removes the manifest, its tags and its reference rows. kManifestReferenced (detail =
  // the referencing index digest) while an index in the repository lists it as a child.
  virtual Status DeleteManifest(std::string_view repository, const oci::Digest& digest) = 0;
  // Manifests in `repository` whose subject is `subject`, optionally only those with the
  // given artifact type; without bytes. Sorted by digest, strictly after `after`, at
  // most `limit`.
  virtual Result<std::vector<ManifestRecord>> ListReferrers(std::string_view repository,
                                                            const oci::Digest& subject,
                                                            std::string_view artifact_type,
                                                            std::string_view after,
                                                            size_t limit) = 0;
  // Removes `tag` and reports the manifest it pointed at; with
  // options.delete_untagged_manifest, also that manifest when it is left without tags
  // and unlisted by any index, in the same transaction. kManifestUnknown when the tag
  // is absent.
  virtual Result<RemovedTag> RemoveTag(std::string_view repository, std::string_view tag,
                                       const RemoveTagOptions& options) = 0;

  // ---- image listings (ECR views of manifests)
  // Manifests of `repository` with their tags and last pull, sorted by digest, strictly
  // after `after` (empty = from the start), at most `limit`, filtered by tag status.
  virtual Result<std::vector<ImageRecord>> ListImages(std::string_view repository, TagFilter filter,
                                                      std::string_view after, size_t limit) = 0;
  // One manifest as listings show it; kManifestUnknown when absent.
  virtual Result<ImageRecord> GetImage(std::string_view repository, const oci::Digest& digest) = 0;
  // Raises each manifest's last pull time to `pulled_at_ms` (never lowers it), in one
  // transaction. Pulls of manifests or repositories that no longer exist are ignored.
  virtual Status RecordPulls(const std::vector<PullRecord>& pulls) = 0;

  // ---- upload sessions
  // Any node may continue a session: its offset, hash state and blob cursor are here,
  // and the one writer at a time is chosen by a lease, not by node-local locks.
  virtual Status CreateUpload(const UploadRecord& upload) = 0;
  virtual Result<UploadRecord> GetUpload(std::string_view id) = 0;
  // Takes the session for writing under `token` until `now_ms + ttl_ms`, and returns it
  // as it is. Succeeds when nobody holds it, the holder's lease expired before `now_ms`,
  // or `token` already holds it (which renews it). kAborted (detail = the offset) while
  // another token holds a live lease; kUploadUnknown when absent.
  virtual Result<UploadRecord> LeaseUpload(std::string_view id, std::string_view token,
                                           int64_t now_ms, int64_t ttl_ms) = 0;
  // Compare-and-set: records `progress` only if `token` holds the lease and the offset
  // is still `expected_offset`. kRangeInvalid (detail = the offset) otherwise — another
  // writer took over; kUploadUnknown when absent.
  virtual Status AdvanceUpload(std::string_view id, std::string_view token,
                               uint64_t expected_offset, const UploadProgress& progress) = 0;
  // Gives up the lease if `token` holds it; nothing otherwise.
  virtual Status ReleaseUpload(std::string_view id, std::string_view token) = 0;
  virtual Status DeleteUpload(std::string_view id) = 0;
  // Sessions not updated since `updated_before_ms`, oldest first, at most `limit`.
  virtual Result<std::vector<UploadRecord>> ListStaleUploads(int64_t updated_before_ms,
                                                             size_t limit) = 0;

  // ---- shared settings and leases (what every node must agree on: no node-local state)
  // Registry-wide values by name (the token-signing key, the download-URL secret, the
  // identities document). kNotFound when unset.
  virtual Result<std::string> GetSetting(std::string_view name) = 0;
  // Compare-and-set: sets `name` to `value` only if its current value is `expected`
  // (nullopt = unset). kAborted when it is not (someone else changed it first).
  virtual Status SwapSetting(std::string_view name, const std::optional<std::string>& expected,
                             std::string_view value) = 0;
  // A named lease for a periodic job, so one node at a time runs it: true when `token`
  // holds `name` until now_ms + ttl_ms (taken because free or expired, or renewed),
  // false while another token holds it.
  virtual Result<bool> AcquireLease(std::string_view name, std::string_view token,
                                    int64_t now_ms, int64_t ttl_ms) = 0;
};

}  // namespace berth::storage
