#include "registry/registry.h"

#include <algorithm>
#include <boost/json.hpp>

#include "oci/media_types.h"
#include "registry/tag_rules.h"
#include "storage/keys.h"

namespace berth::registry {
namespace {

namespace json = boost::json;

bool IsStorageFailure(const Status& st) {
  return st.Is(Code::kIoError) || st.Is(Code::kCorruption) || st.Is(Code::kInternal) ||
         st.Is(Code::kUnavailable);
}

Status UploadNotFound(std::string_view id) {
  return Status(Code::kUploadUnknown,
                "upload session " + std::string(id) +
                    " does not exist (it was completed, cancelled or expired); start a new "
                    "upload with POST /v2/<name>/blobs/uploads/",
                std::string(id));
}

// A manifest reference as a cache key: a tag never contains ':', a digest always does.
std::string_view RefKey(const oci::Reference& ref) {
  return ref.is_digest() ? std::string_view(ref.digest().str()) : std::string_view(ref.tag());
}

}  // namespace

// ---------------------------------------------------------------- UploadAppender

UploadAppender::~UploadAppender() {
  if (!finished_ && registry_ != nullptr) (void)Finish();
}

Status UploadAppender::Write(std::span<const char> data) {
  BERTH_RETURN_IF_ERROR(Append(data));
  Hash(data);
  return {};
}

void UploadAppender::Hash(std::span<const char> data) { hasher_->Update(data); }

Status UploadAppender::Append(std::span<const char> data) {
  if (!write_error_.ok()) return write_error_;
  Status st = KeepLease();
  if (st.ok()) st = writer_->Write(data);
  if (!st.ok()) write_error_ = registry_->RecordStorageError(st);
  return write_error_;
}

Status UploadAppender::KeepLease() {
  int64_t now = registry_->clock_.NowMillis();
  int64_t ttl = registry_->options_.upload_lease_ms;
  if (now - lease_renewed_ms_ < ttl / 3) return {};
  auto rec = registry_->meta_.LeaseUpload(id_, token_, now, ttl);
  if (!rec.ok()) {
    if (rec.status().Is(Code::kAborted) || rec.status().Is(Code::kUploadUnknown)) {
      return Status(Code::kRangeInvalid,
                    "upload " + id_ + " was taken over by another request while this one stalled",
                    rec.status().detail());
    }
    return rec.status();
  }
  if (rec->offset != start_offset_) {
    return Status(Code::kRangeInvalid, "upload " + id_ + " moved on while this request stalled",
                  std::to_string(rec->offset));
  }
  lease_renewed_ms_ = now;
  return {};
}

uint64_t UploadAppender::offset() const { return writer_->size(); }

Result<uint64_t> UploadAppender::Finish() {
  finished_ = true;
  Registry& reg = *registry_;
  auto cursor = writer_->Close();
  // Record only a state where the hash has seen exactly the bytes the store holds: the
  // next writer continues from it. Otherwise (a write failed half-way) the offset stays
  // where it was; the bytes after it are discarded by the next append.
  uint64_t offset = start_offset_;
  Status st = cursor.status();
  if (st.ok() && hasher_->size() == cursor->size) {
    storage::UploadProgress progress;
    progress.offset = cursor->size;
    progress.hash_state = hasher_->SaveState();
    progress.blob_state = cursor->state;
    progress.updated_at_ms = reg.clock_.NowMillis();
    st = reg.meta_.AdvanceUpload(id_, token_, start_offset_, progress);
    if (st.ok()) offset = cursor->size;
  } else {
    (void)reg.meta_.ReleaseUpload(id_, token_);
  }
  if (!st.ok() && !st.Is(Code::kRangeInvalid)) {
    (void)reg.meta_.ReleaseUpload(id_, token_);
    st = reg.RecordStorageError(st);
  }
  reg.MarkBusy(id_, false);
  if (!write_error_.ok()) return write_error_;
  BERTH_RETURN_IF_ERROR(st);
  if (hasher_->size() != offset) {
    return Status(Code::kRangeInvalid, "upload " + id_ + " could not record what was written",
                  std::to_string(offset));
  }
  return offset;
}

// ---------------------------------------------------------------- Registry

Registry::Registry(storage::BlobStore& blobs, storage::MetadataStore& meta, const Clock& clock,
                   Options options)
    : blobs_(blobs),
      node_token_(storage::NewUploadId()),
      meta_(meta),
      clock_(clock),
      options_(options),
      manifests_(options.manifest_cache_bytes),
      tag_pages_(options.manifest_cache_bytes / 4) {}

Registry::~Registry() = default;

Status Registry::RecordStorageError(Status st) {
  if (IsStorageFailure(st)) stats_.storage_errors.fetch_add(1, std::memory_order_relaxed);
  return st;
}

Status Registry::CheckReady() {
  Status meta = meta_.Check();
  Status blobs = blobs_.Check();
  if (meta.ok() && blobs.ok()) return {};
  // One message naming each backend that failed, for /readyz and the log.
  std::string what;
  if (!meta.ok()) what = "metadata store: " + meta.message();
  if (!blobs.ok()) what += (what.empty() ? "" : "; ") + std::string("blob store: ") + blobs.message();
  return RecordStorageError(Status(Code::kUnavailable, what));
}

Result<std::vector<std::string>> Registry::Catalog(std::string_view after, size_t limit,
                                                   std::string_view account) {
  if (account.empty()) return meta_.ListRepositories(after, limit);
  BERTH_ASSIGN_OR_RETURN(auto records, meta_.ListRepositoryRecords(account, after, limit));
  std::vector<std::string> names;
  names.reserve(records.size());
  for (auto& r : records) names.push_back(std::move(r.name));
  return names;
}

Result<storage::RepositoryRecord> Registry::FindRepository(std::string_view name) {
  BERTH_RETURN_IF_ERROR(oci::ValidateRepositoryName(name));
  return meta_.GetRepository(name);
}

Status Registry::RequireRepository(std::string_view repo) {
  BERTH_RETURN_IF_ERROR(oci::ValidateRepositoryName(repo));
  auto r = meta_.GetRepository(repo);
  if (r.ok()) return {};
  if (r.status().Is(Code::kNameUnknown) || r.status().Is(Code::kNotFound)) {
    return RepositoryNotFound(repo, options_.account_id);
  }
  return RecordStorageError(r.status());
}

Status Registry::RepositoryNotFound(std::string_view name, std::string_view account) const {
  // ECR's wording, on /v2 as on the ECR API.
  return Status(Code::kNameUnknown,
                "The repository with name '" + std::string(name) +
                    "' does not exist in the registry with id '" + std::string(account) + "'",
                std::string(name));
}

Result<storage::RepositoryRecord> Registry::RepositoryForPush(std::string_view repo) {
  BERTH_RETURN_IF_ERROR(oci::ValidateRepositoryName(repo));
  auto r = meta_.GetRepository(repo);
  if (r.ok()) return r;
  if (!r.status().Is(Code::kNameUnknown) && !r.status().Is(Code::kNotFound)) {
    return RecordStorageError(r.status());
  }
  if (!options_.create_on_push) return RepositoryNotFound(repo, options_.account_id);
  storage::RepositoryRecord rec;
  rec.name = std::string(repo);
  rec.created_at_ms = clock_.NowMillis();
  rec.account_id = options_.account_id;
  Status created = meta_.CreateRepository(rec);
  if (created.Is(Code::kAlreadyExists)) {  // a concurrent push created it
    auto again = meta_.GetRepository(repo);
    if (!again.ok()) return RecordStorageError(again.status());
    return again;
  }
  BERTH_RETURN_IF_ERROR(RecordStorageError(created));
  return rec;
}

Status Registry::EnsureRepositoryForPush(std::string_view repo) {
  return RepositoryForPush(repo).status();
}

// ---- blobs

Result<storage::BlobRecord> Registry::StatBlob(std::string_view repo, const oci::Digest& digest) {
  BERTH_RETURN_IF_ERROR(RequireRepository(repo));
  auto rec = meta_.GetLinkedBlob(repo, digest);
  if (!rec.ok() && rec.status().Is(Code::kBlobUnknown)) {
    return Status(Code::kBlobUnknown,
                  "blob " + digest.str() + " is not in repository '" + std::string(repo) + "'",
                  digest.str());
  }
  return rec;
}

Result<OpenedBlob> Registry::OpenBlob(std::string_view repo, const oci::Digest& digest) {
  BERTH_ASSIGN_OR_RETURN(storage::BlobRecord rec, StatBlob(repo, digest));
  auto reader = blobs_.Open(digest);
  if (!reader.ok()) {
    // Metadata says the blob exists but its bytes are gone: that is storage damage.
    if (reader.status().Is(Code::kBlobUnknown)) {
      return RecordStorageError(
          Status::Corruption("blob " + digest.str() + " is recorded but missing from storage"));
    }
    return RecordStorageError(reader.status());
  }
  return OpenedBlob{rec, std::move(reader).value()};
}

Status Registry::DeleteBlob(std::string_view repo, const oci::Digest& digest) {
  BERTH_RETURN_IF_ERROR(RequireRepository(repo));
  Status st = meta_.UnlinkBlob(repo, digest);
  if (st.Is(Code::kBlobUnknown)) {
    return Status(Code::kBlobUnknown,
                  "blob " + digest.str() + " is not in repository '" + std::string(repo) + "'",
                  digest.str());
  }
  return RecordStorageError(st);
}

// ---- uploads

Result<storage::UploadRecord> Registry::StartUpload(std::string_view repo) {
  BERTH_RETURN_IF_ERROR(EnsureRepositoryForPush(repo));
  storage::UploadRecord rec;
  rec.id = storage::NewUploadId();
  rec.repository = std::string(repo);
  rec.created_at_ms = rec.updated_at_ms = clock_.NowMillis();
  // Bytes first, then the session that points at them.
  auto cursor = blobs_.CreateUpload(rec.id);
  if (!cursor.ok()) return RecordStorageError(cursor.status());
  rec.blob_state = cursor->state;
  Status st = meta_.CreateUpload(rec);
  if (!st.ok()) {
    (void)blobs_.DeleteUpload(rec.id, *cursor);
    return RecordStorageError(st);
  }
  stats_.uploads_in_progress.fetch_add(1, std::memory_order_relaxed);
  return rec;
}

Result<storage::BlobRecord> Registry::Mount(std::string_view repo, std::string_view from,
                                            const oci::Digest& digest) {
  BERTH_RETURN_IF_ERROR(EnsureRepositoryForPush(repo));
  BERTH_RETURN_IF_ERROR(oci::ValidateRepositoryName(from));
  BERTH_ASSIGN_OR_RETURN(storage::BlobRecord rec, meta_.GetLinkedBlob(from, digest));
  BERTH_RETURN_IF_ERROR(RecordStorageError(meta_.LinkBlob(repo, digest)));
  return rec;
}

Result<storage::UploadRecord> Registry::GetUpload(std::string_view repo, std::string_view id) {
  BERTH_RETURN_IF_ERROR(oci::ValidateRepositoryName(repo));
  if (!storage::IsValidUploadId(id)) return UploadNotFound(id);
  WaitUntilIdle(std::string(id));
  auto rec = meta_.GetUpload(id);
  if (!rec.ok()) {
    if (rec.status().Is(Code::kUploadUnknown) || rec.status().Is(Code::kNotFound)) {
      return UploadNotFound(id);
    }
    return RecordStorageError(rec.status());
  }
  if (rec->repository != repo) return UploadNotFound(id);
  return rec;
}

Result<std::unique_ptr<oci::Hasher>> Registry::SessionHasher(const storage::UploadRecord& rec,
                                                            oci::DigestAlgorithm alg) {
  if (rec.hash_state.empty()) {
    if (rec.offset == 0) return std::make_unique<oci::Hasher>(alg);
    // Sessions from before hash states were recorded cannot be continued.
    return Status(Code::kUploadInvalid,
                  "upload " + rec.id + " has no recorded hash state (it was started by an "
                  "older berth); start the upload again");
  }
  auto restored = oci::Hasher::Restore(rec.hash_state);
  if (!restored.ok()) return RecordStorageError(restored.status());
  if (restored->size() != rec.offset) {
    return RecordStorageError(Status::Corruption(
        "upload " + rec.id + ": hash state covers " + std::to_string(restored->size()) +
        " bytes but the session records " + std::to_string(rec.offset)));
  }
  return std::make_unique<oci::Hasher>(std::move(restored).value());
}

Result<oci::Digest> Registry::RehashUpload(const storage::UploadRecord& rec,
                                           oci::DigestAlgorithm alg) {
  oci::Hasher hasher(alg);
  if (rec.offset == 0) return hasher.Peek();
  auto reader = blobs_.OpenUpload(rec.id, {rec.offset, rec.blob_state});
  if (!reader.ok()) {
    if (reader.status().Is(Code::kUnsupported)) {
      return Status(Code::kUnsupported,
                    "this registry verifies chunked uploads with " +
                        std::string(oci::AlgorithmName(oci::DigestAlgorithm::kSha256)) +
                        "; upload " + std::string(oci::AlgorithmName(alg)) +
                        " blobs in one request (POST with ?digest=)");
    }
    return RecordStorageError(reader.status());
  }
  std::vector<char> buf(1 << 20);
  uint64_t off = 0;
  while (off < rec.offset) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), rec.offset - off));
    auto n = (*reader)->ReadAt(off, std::span<char>(buf.data(), want));
    if (!n.ok()) return RecordStorageError(n.status());
    if (*n == 0) {
      return RecordStorageError(
          Status::Corruption("upload " + rec.id + " is shorter than recorded"));
    }
    hasher.Update(std::span<const char>(buf.data(), *n));
    off += *n;
  }
  return hasher.Peek();
}

Result<storage::UploadRecord> Registry::LeaseUpload(const storage::UploadRecord& rec,
                                                    const std::string& token) {
  auto leased = meta_.LeaseUpload(rec.id, token, clock_.NowMillis(), options_.upload_lease_ms);
  if (!leased.ok()) {
    if (leased.status().Is(Code::kAborted)) {
      return Status(Code::kRangeInvalid,
                    "another request is writing to upload " + rec.id + "; send chunks in order",
                    leased.status().detail());
    }
    if (leased.status().Is(Code::kUploadUnknown)) return UploadNotFound(rec.id);
    return RecordStorageError(leased.status());
  }
  return leased;
}

void Registry::MarkBusy(const std::string& id, bool busy) {
  {
    std::lock_guard lock(mu_);
    if (busy) {
      ++busy_[id];
      return;
    }
    auto it = busy_.find(id);
    if (it != busy_.end() && --it->second <= 0) busy_.erase(it);
  }
  idle_cv_.notify_all();
}

void Registry::WaitUntilIdle(const std::string& id) {
  std::unique_lock lock(mu_);
  idle_cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !busy_.contains(id); });
}

Result<std::unique_ptr<UploadAppender>> Registry::BeginAppend(
    std::string_view repo, std::string_view id, std::optional<uint64_t> start,
    std::optional<oci::DigestAlgorithm> algorithm) {
  BERTH_ASSIGN_OR_RETURN(storage::UploadRecord found, GetUpload(repo, id));
  if (start && *start != found.offset) {
    return Status(Code::kRangeInvalid,
                  "chunk starts at byte " + std::to_string(*start) + " but the upload has " +
                      std::to_string(found.offset) +
                      " bytes; send the next chunk from the current offset (see the Range "
                      "header of GET on the upload)",
                  std::to_string(found.offset));
  }
  std::string token = storage::NewUploadId();
  BERTH_ASSIGN_OR_RETURN(storage::UploadRecord rec, LeaseUpload(found, token));
  auto fail = [&](Status st) -> Status {
    (void)meta_.ReleaseUpload(rec.id, token);
    return st;
  };
  if (rec.offset != found.offset) {
    // Another writer recorded bytes between our read and our lease.
    return fail(Status(Code::kRangeInvalid,
                       "upload " + rec.id + " moved on to " + std::to_string(rec.offset) +
                           " bytes; send the next chunk from there",
                       std::to_string(rec.offset)));
  }
  auto hasher = SessionHasher(rec, algorithm.value_or(oci::DigestAlgorithm::kSha256));
  if (!hasher.ok()) return fail(hasher.status());
  auto writer = blobs_.AppendUpload(rec.id, {rec.offset, rec.blob_state});
  if (!writer.ok()) {
    if (writer.status().Is(Code::kUploadUnknown)) return fail(UploadNotFound(rec.id));
    return fail(RecordStorageError(writer.status()));
  }
  MarkBusy(rec.id, true);
  auto app = std::unique_ptr<UploadAppender>(new UploadAppender());
  app->registry_ = this;
  app->id_ = rec.id;
  app->token_ = std::move(token);
  app->start_offset_ = rec.offset;
  app->lease_renewed_ms_ = clock_.NowMillis();
  app->writer_ = std::move(writer).value();
  app->hasher_ = std::move(hasher).value();
  return app;
}

Result<storage::BlobRecord> Registry::CompleteUpload(std::string_view repo, std::string_view id,
                                                     const oci::Digest& digest) {
  BERTH_ASSIGN_OR_RETURN(storage::UploadRecord found, GetUpload(repo, id));
  std::string token = storage::NewUploadId();
  BERTH_ASSIGN_OR_RETURN(storage::UploadRecord rec, LeaseUpload(found, token));
  auto fail = [&](Status st) -> Status {
    (void)meta_.ReleaseUpload(rec.id, token);
    return st;
  };
  oci::Digest actual;
  auto hasher = SessionHasher(rec, digest.algorithm());
  if (!hasher.ok()) return fail(hasher.status());
  if ((*hasher)->algorithm() == digest.algorithm()) {
    actual = (*hasher)->Peek();
  } else {
    auto rehashed = RehashUpload(rec, digest.algorithm());
    if (!rehashed.ok()) return fail(rehashed.status());
    actual = *rehashed;
  }
  if (actual != digest) {
    return fail(Status(Code::kDigestInvalid,
                       "the uploaded content has digest " + actual.str() + " (" +
                           std::to_string(rec.offset) + " bytes), not " + digest.str(),
                       digest.str()));
  }
  // Bytes durable and in place first; then the metadata that makes them visible.
  Status st = blobs_.CommitUpload(rec.id, {rec.offset, rec.blob_state}, digest);
  if (!st.ok()) return fail(RecordStorageError(st));
  storage::BlobRecord blob{digest, rec.offset, clock_.NowMillis()};
  st = meta_.CommitBlob(repo, blob, rec.id);
  BERTH_RETURN_IF_ERROR(RecordStorageError(st));
  stats_.uploads_in_progress.fetch_sub(1, std::memory_order_relaxed);
  return blob;
}

Status Registry::CancelUpload(std::string_view repo, std::string_view id) {
  BERTH_ASSIGN_OR_RETURN(storage::UploadRecord rec, GetUpload(repo, id));
  // Metadata first: once the session is gone nobody can reach the bytes.
  BERTH_RETURN_IF_ERROR(RecordStorageError(meta_.DeleteUpload(rec.id)));
  Status st = blobs_.DeleteUpload(rec.id, storage::UploadCursor{rec.offset, rec.blob_state});
  if (!st.ok() && !st.Is(Code::kUploadUnknown)) return RecordStorageError(st);
  stats_.uploads_in_progress.fetch_sub(1, std::memory_order_relaxed);
  return {};
}

Result<size_t> Registry::SweepStaleUploads() {
  int64_t now = clock_.NowMillis();
  // One node at a time sweeps; the others skip this round.
  auto mine = meta_.AcquireLease("job/upload-sweep", node_token_, now, options_.job_lease_ms);
  if (!mine.ok()) return RecordStorageError(mine.status());
  if (!*mine) return size_t{0};
  int64_t cutoff = now - options_.upload_expiry_ms;
  size_t removed = 0;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(auto stale, meta_.ListStaleUploads(cutoff, 256));
    if (stale.empty()) break;
    size_t skipped = 0;
    for (const auto& up : stale) {
      // Take the session's lease before removing it, so that a request that resumes it
      // at this moment (on any node) either wins and keeps it, or finds it gone.
      auto leased = meta_.LeaseUpload(up.id, node_token_, now, options_.upload_lease_ms);
      if (!leased.ok()) {
        if (leased.status().Is(Code::kAborted) || leased.status().Is(Code::kUploadUnknown)) {
          ++skipped;  // being written right now, or already gone
          continue;
        }
        return RecordStorageError(leased.status());
      }
      if (leased->updated_at_ms >= cutoff) {
        (void)meta_.ReleaseUpload(up.id, node_token_);  // best effort: it expires anyway
        ++skipped;  // it moved on since it was listed
        continue;
      }
      BERTH_RETURN_IF_ERROR(RecordStorageError(meta_.DeleteUpload(up.id)));
      Status st = blobs_.DeleteUpload(up.id, storage::UploadCursor{up.offset, up.blob_state});
      if (!st.ok() && !st.Is(Code::kUploadUnknown)) return RecordStorageError(st);
      ++removed;
    }
    if (stale.size() < 256 || skipped == stale.size()) break;
  }
  stats_.uploads_expired.fetch_add(removed, std::memory_order_relaxed);
  stats_.uploads_in_progress.fetch_sub(static_cast<int64_t>(removed), std::memory_order_relaxed);
  return removed;
}

// ---- manifests

Result<std::shared_ptr<const storage::ManifestRecord>> Registry::GetManifest(
    std::string_view repo, const oci::Reference& ref) {
  BERTH_RETURN_IF_ERROR(oci::ValidateRepositoryName(repo));
  // Read before the lookup: a result may be cached only under the epoch it started at.
  std::optional<uint64_t> epoch = manifests_.enabled() ? meta_.ReadEpoch() : std::nullopt;
  // References are not read: a pull does not need them, and the cache then holds more
  // manifests in the same memory.
  auto rec = ref.is_digest() ? meta_.GetManifestForPull(repo, ref.digest())
                             : meta_.GetManifestByTagForPull(repo, ref.tag());
  if (rec.ok()) {
    auto shared = std::make_shared<const storage::ManifestRecord>(std::move(rec).value());
    if (epoch) CacheManifest(repo, ref, shared, *epoch);
    return shared;
  }
  if (rec.status().Is(Code::kManifestUnknown) || rec.status().Is(Code::kNotFound)) {
    BERTH_RETURN_IF_ERROR(RequireRepository(repo));
    return Status(Code::kManifestUnknown,
                  "manifest '" + ref.str() + "' not found in repository '" + std::string(repo) +
                      "'",
                  ref.str());
  }
  if (rec.status().Is(Code::kNameUnknown)) return RequireRepository(repo);
  return RecordStorageError(rec.status());
}

std::shared_ptr<const storage::ManifestRecord> Registry::CachedManifest(std::string_view repo,
                                                                        const oci::Reference& ref) {
  if (!manifests_.enabled()) return nullptr;
  std::optional<uint64_t> epoch = meta_.ReadEpoch();
  if (!epoch) return nullptr;
  return manifests_.Find(repo, RefKey(ref), *epoch);
}

void Registry::CacheManifest(std::string_view repo, const oci::Reference& ref,
                             const std::shared_ptr<const storage::ManifestRecord>& rec,
                             uint64_t epoch) {
  manifests_.Insert(repo, RefKey(ref), rec, epoch);
  // Clients resolve a tag, then fetch the manifest by its digest: the same row answers.
  if (!ref.is_digest()) manifests_.Insert(repo, rec->digest.str(), rec, epoch);
}

Result<PutManifestResult> Registry::PutManifest(std::string_view repo, const oci::Reference& ref,
                                                std::string_view content_type,
                                                std::string bytes) {
  BERTH_RETURN_IF_ERROR(oci::ValidateRepositoryName(repo));
  std::optional<oci::Digest> expected;
  if (ref.is_digest()) expected = ref.digest();
  BERTH_ASSIGN_OR_RETURN(storage::ManifestRecord rec,
                         PrepareManifest(repo, expected, content_type, std::move(bytes)));
  BERTH_ASSIGN_OR_RETURN(storage::RepositoryRecord target, RepositoryForPush(repo));
  return CommitManifest(target, std::move(rec), ref.is_digest() ? std::string_view() : ref.tag(),
                        false);
}

Result<storage::ManifestRecord> Registry::PrepareManifest(
    std::string_view repo, const std::optional<oci::Digest>& expected,
    std::string_view content_type, std::string bytes) {
  if (bytes.size() > options_.max_manifest_bytes) {
    return Status(Code::kTooLarge,
                  "manifest is " + std::to_string(bytes.size()) + " bytes; the limit is " +
                      std::to_string(options_.max_manifest_bytes));
  }
  BERTH_ASSIGN_OR_RETURN(oci::ParsedManifest parsed, oci::ParseManifest(bytes, content_type));
  oci::DigestAlgorithm alg = expected ? expected->algorithm() : oci::DigestAlgorithm::kSha256;
  oci::Digest digest = oci::Digest::Of(bytes, alg);
  if (expected && *expected != digest) {
    return Status(Code::kDigestInvalid,
                  "manifest content has digest " + digest.str() + ", not " + expected->str(),
                  expected->str());
  }
  storage::ManifestRecord rec;
  rec.repository = std::string(repo);
  rec.digest = digest;
  rec.media_type = parsed.media_type;
  rec.artifact_type = parsed.artifact_type;
  rec.size = static_cast<int64_t>(bytes.size());
  rec.pushed_at_ms = clock_.NowMillis();
  rec.subject = parsed.subject ? std::optional(parsed.subject->digest) : std::nullopt;
  json::object ann;
  for (const auto& [k, v] : parsed.annotations) ann[k] = v;
  rec.annotations_json = json::serialize(ann);
  for (const auto& d : parsed.blobs()) rec.blob_refs.push_back(d.digest);
  for (const auto& d : parsed.manifests) rec.child_refs.push_back(d.digest);
  // ECR's imageSizeInBytes of an image: the sum of its layers as its descriptors say
  // (an index's is the largest of its children's, known once they are found).
  for (const auto& l : parsed.layers) rec.image_size += l.size;
  rec.bytes = std::move(bytes);
  return rec;
}

Result<PutManifestResult> Registry::CommitManifest(const storage::RepositoryRecord& repo,
                                                   storage::ManifestRecord rec,
                                                   std::string_view tag, bool ecr) {
  for (const oci::Digest& child : rec.child_refs) {
    auto img = meta_.GetImage(repo.name, child);
    if (img.ok()) rec.image_size = std::max(rec.image_size, img->manifest.image_size);
    // A missing child is reported by PutManifest, in the transaction that checks it.
  }
  storage::PutManifestOptions options;
  options.immutable_tag = !tag.empty() && IsTagImmutable(repo.tag_mutability, tag);
  auto outcome = meta_.PutManifest(rec, tag, options);
  if (!outcome.ok()) {
    const Status& st = outcome.status();
    if (st.Is(Code::kTagInvalid)) {
      std::string why = repo.tag_mutability.mode == storage::TagMutability::kImmutable
                            ? "the repository is immutable"
                            : "the tag is immutable in this repository (imageTagMutability " +
                                  std::string(TagMutabilityName(repo.tag_mutability.mode)) + ")";
      return Status(Code::kTagInvalid,
                    "The image tag '" + std::string(tag) + "' already exists in the '" + repo.name +
                        "' repository and cannot be overwritten because " + why,
                    std::string(tag));
    }
    if (ecr && st.Is(Code::kManifestBlobUnknown)) {
      auto missing = oci::Digest::Parse(st.detail());
      if (missing.ok() && std::find(rec.child_refs.begin(), rec.child_refs.end(), *missing) !=
                              rec.child_refs.end()) {
        return Status(Code::kManifestUnknown,
                      "Some of the images referenced by the manifest list were not found in "
                      "the repository with name '" +
                          repo.name + "' in the registry with id '" + repo.account_id + "': [" +
                          st.detail() + "]",
                      st.detail());
      }
      return Status(Code::kManifestBlobUnknown,
                    "Layers with digests '[" + st.detail() +
                        "]' required for pushing image into repository with name '" + repo.name +
                        "' in the registry with id '" + repo.account_id + "' do not exist",
                    st.detail());
    }
    return RecordStorageError(st);
  }
  bool unchanged = tag.empty() ? !outcome->manifest_created : outcome->tag_unchanged;
  if (ecr && unchanged) {
    std::string what = "Image with digest '" + rec.digest.str() + "'";
    if (!tag.empty()) what += " and tag '" + std::string(tag) + "'";
    return Status(Code::kAlreadyExists,
                  what + " already exists in the repository with name '" + repo.name +
                      "' in the registry with id '" + repo.account_id + "'",
                  rec.digest.str());
  }
  return PutManifestResult{rec.digest, rec.subject, rec.media_type};
}

Status Registry::DeleteManifest(std::string_view repo, const oci::Reference& ref) {
  BERTH_RETURN_IF_ERROR(RequireRepository(repo));
  Status st = ref.is_digest() ? meta_.DeleteManifest(repo, ref.digest())
                              : meta_.DeleteTag(repo, ref.tag());
  if (st.Is(Code::kManifestUnknown) || st.Is(Code::kNotFound)) {
    return Status(Code::kManifestUnknown,
                  "manifest '" + ref.str() + "' not found in repository '" + std::string(repo) +
                      "'",
                  ref.str());
  }
  return RecordStorageError(st);
}

namespace {

// A tag page's cache key: `after` then `limit`. Split at the last '\n' (a limit has
// none), so two different pages never share a key, whatever `after` holds.
std::string TagPageKey(std::string_view after, size_t limit) {
  std::string key(after);
  key += '\n';
  key += std::to_string(limit);
  return key;
}

}  // namespace

Result<std::shared_ptr<const std::vector<std::string>>> Registry::ListTags(std::string_view repo,
                                                                           std::string_view after,
                                                                           size_t limit) {
  // Read before the lookups: a page may be cached only under the epoch it started at.
  std::optional<uint64_t> epoch = tag_pages_.enabled() ? meta_.ReadEpoch() : std::nullopt;
  BERTH_RETURN_IF_ERROR(RequireRepository(repo));
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> tags, meta_.ListTags(repo, after, limit));
  auto page = std::make_shared<const std::vector<std::string>>(std::move(tags));
  if (epoch) tag_pages_.Insert(repo, TagPageKey(after, limit), page, *epoch);
  return page;
}

std::shared_ptr<const std::vector<std::string>> Registry::CachedTags(std::string_view repo,
                                                                     std::string_view after,
                                                                     size_t limit) {
  if (!tag_pages_.enabled()) return nullptr;
  std::optional<uint64_t> epoch = meta_.ReadEpoch();
  if (!epoch) return nullptr;
  return tag_pages_.Find(repo, TagPageKey(after, limit), *epoch);
}

Result<std::string> Registry::Referrers(std::string_view repo, const oci::Digest& subject,
                                        std::string_view artifact_type) {
  BERTH_RETURN_IF_ERROR(RequireRepository(repo));
  // The OCI referrers response is one index; it is built from keyset pages and capped
  // (a subject with more referrers than that is a misuse, and the index must fit a
  // manifest-sized response).
  constexpr size_t kPage = 1000, kMaxReferrers = 10000;
  std::vector<storage::ManifestRecord> refs;
  for (std::string after;;) {
    BERTH_ASSIGN_OR_RETURN(auto page,
                           meta_.ListReferrers(repo, subject, artifact_type, after, kPage));
    for (auto& r : page) refs.push_back(std::move(r));
    if (page.size() < kPage || refs.size() >= kMaxReferrers) break;
    after = refs.back().digest.str();
  }
  json::array manifests;
  for (const auto& r : refs) {
    json::object d;
    d["mediaType"] = r.media_type;
    d["digest"] = r.digest.str();
    d["size"] = r.size;
    if (!r.artifact_type.empty()) d["artifactType"] = r.artifact_type;
    std::error_code ec;
    json::value ann = json::parse(r.annotations_json, ec);
    if (!ec && ann.is_object() && !ann.as_object().empty()) d["annotations"] = ann;
    manifests.push_back(std::move(d));
  }
  json::object index;
  index["schemaVersion"] = 2;
  index["mediaType"] = oci::kOciIndex;
  index["manifests"] = std::move(manifests);
  return json::serialize(index);
}

}  // namespace berth::registry
