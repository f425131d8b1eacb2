// Registry: images as the ECR control plane sees them (PutImage, listings, batch
// deletes), ECR's layer API over upload sessions, and recorded pull times.
#include "registry/registry.h"

namespace berth::registry {
namespace {

bool IsMissingManifest(const Status& st) {
  return st.Is(Code::kManifestUnknown) || st.Is(Code::kNotFound);
}

Status ImageNotFound(std::string_view repo, std::string_view account, std::string_view ref) {
  return Status(Code::kManifestUnknown,
                "The image with imageId '" + std::string(ref) +
                    "' does not exist within the repository with name '" + std::string(repo) +
                    "' in the registry with id '" + std::string(account) + "'",
                std::string(ref));
}

}  // namespace

// ---- images

Result<PutManifestResult> Registry::PutImage(std::string_view account, std::string_view repo,
                                             PutImageRequest request) {
  BERTH_ASSIGN_OR_RETURN(storage::RepositoryRecord target, GetRepository(account, repo));
  if (!request.tag.empty()) {
    // A malformed tag is a bad argument here; kTagInvalid means an immutable tag.
    Status valid = oci::ValidateTag(request.tag);
    if (!valid.ok()) return Status(Code::kInvalidArgument, valid.message(), valid.detail());
  }
  BERTH_ASSIGN_OR_RETURN(
      storage::ManifestRecord rec,
      PrepareManifest(repo, request.digest, request.media_type, std::move(request.manifest)));
  return CommitManifest(target, std::move(rec), request.tag, true);
}

Result<std::vector<storage::ImageRecord>> Registry::ListImages(std::string_view account,
                                                               std::string_view repo,
                                                               storage::TagFilter filter,
                                                               std::string_view after,
                                                               size_t limit) {
  BERTH_RETURN_IF_ERROR(GetRepository(account, repo).status());
  auto images = meta_.ListImages(repo, filter, after, limit);
  if (!images.ok()) {
    if (images.status().Is(Code::kNameUnknown)) return RepositoryNotFound(repo, account);
    return RecordStorageError(images.status());
  }
  ApplyPendingPulls(*images);
  return images;
}

Result<storage::ImageRecord> Registry::DescribeImage(std::string_view account,
                                                     std::string_view repo,
                                                     const oci::Digest& digest) {
  BERTH_RETURN_IF_ERROR(GetRepository(account, repo).status());
  auto image = meta_.GetImage(repo, digest);
  if (!image.ok()) {
    if (IsMissingManifest(image.status())) return ImageNotFound(repo, account, digest.str());
    if (image.status().Is(Code::kNameUnknown)) return RepositoryNotFound(repo, account);
    return RecordStorageError(image.status());
  }
  std::vector<storage::ImageRecord> one{std::move(image).value()};
  ApplyPendingPulls(one);
  return std::move(one.front());
}

Result<storage::ManifestRecord> Registry::GetImageManifest(std::string_view account,
                                                           std::string_view repo,
                                                           const oci::Reference& ref) {
  BERTH_RETURN_IF_ERROR(GetRepository(account, repo).status());
  auto rec = ref.is_digest() ? meta_.GetManifest(repo, ref.digest())
                             : meta_.GetManifestByTag(repo, ref.tag());
  if (!rec.ok()) {
    if (IsMissingManifest(rec.status())) return ImageNotFound(repo, account, ref.str());
    if (rec.status().Is(Code::kNameUnknown)) return RepositoryNotFound(repo, account);
    return RecordStorageError(rec.status());
  }
  return rec;
}

Result<storage::RemovedTag> Registry::UntagImage(std::string_view account, std::string_view repo,
                                                 std::string_view tag) {
  BERTH_RETURN_IF_ERROR(GetRepository(account, repo).status());
  // ECR: untagging an image's last tag deletes the image (unless a list holds it).
  auto removed = meta_.RemoveTag(repo, tag, {.delete_untagged_manifest = true});
  if (!removed.ok()) {
    if (IsMissingManifest(removed.status())) return ImageNotFound(repo, account, tag);
    if (removed.status().Is(Code::kNameUnknown)) return RepositoryNotFound(repo, account);
    return RecordStorageError(removed.status());
  }
  return removed;
}

Result<std::vector<std::string>> Registry::DeleteImage(std::string_view account,
                                                       std::string_view repo,
                                                       const oci::Digest& digest) {
  BERTH_RETURN_IF_ERROR(GetRepository(account, repo).status());
  // The tags are read first only to report them; the deletion itself is one transaction.
  std::vector<std::string> tags;
  for (std::string after;;) {
    auto page = meta_.TagsOf(repo, digest, after, 1000);
    if (!page.ok()) return RecordStorageError(page.status());
    tags.insert(tags.end(), page->begin(), page->end());
    if (page->size() < 1000) break;
    after = tags.back();
  }
  Status st = meta_.DeleteManifest(repo, digest);
  if (IsMissingManifest(st)) return ImageNotFound(repo, account, digest.str());
  if (st.Is(Code::kManifestReferenced)) {
    return Status(Code::kManifestReferenced,
                  "The image with digest '" + digest.str() +
                      "' is referenced by the manifest list '" + st.detail() +
                      "' in the repository with name '" + std::string(repo) +
                      "'; delete the manifest list first",
                  st.detail());
  }
  BERTH_RETURN_IF_ERROR(RecordStorageError(st));
  return tags;
}

// ---- layers

Result<uint64_t> Registry::UploadLayerPart(std::string_view account, std::string_view repo,
                                           std::string_view upload_id, uint64_t first,
                                           std::string_view bytes) {
  BERTH_RETURN_IF_ERROR(GetRepository(account, repo).status());
  BERTH_ASSIGN_OR_RETURN(auto appender, BeginAppend(repo, upload_id, first));
  Status st = appender->Write(std::span<const char>(bytes.data(), bytes.size()));
  auto size = appender->Finish();
  BERTH_RETURN_IF_ERROR(st);
  return size;
}

Result<storage::BlobRecord> Registry::CompleteLayerUpload(std::string_view account,
                                                          std::string_view repo,
                                                          std::string_view upload_id,
                                                          const std::vector<oci::Digest>& digests) {
  BERTH_RETURN_IF_ERROR(GetRepository(account, repo).status());
  BERTH_ASSIGN_OR_RETURN(storage::UploadRecord upload, GetUpload(repo, upload_id));
  if (upload.offset == 0) {
    return Status(Code::kSizeInvalid, "The upload with id '" + upload.id + "' contains no data",
                  upload.id);
  }
  if (digests.empty()) return Status(Code::kInvalidArgument, "no layer digest given");
  Status last;
  for (const oci::Digest& d : digests) {
    bool existed = meta_.GetLinkedBlob(repo, d).ok();
    auto blob = CompleteUpload(repo, upload.id, d);
    if (blob.ok()) {
      if (existed) {
        return Status(Code::kAlreadyExists,
                      "The layer '" + d.str() + "' already exists in the repository with name '" +
                          std::string(repo) + "' in the registry with id '" + std::string(account) +
                          "'",
                      d.str());
      }
      return blob;
    }
    if (!blob.status().Is(Code::kDigestInvalid)) return blob.status();
    last = blob.status();
  }
  return Status(Code::kDigestInvalid,
                "The layer digest does not match the uploaded content: " + last.message(),
                digests.front().str());
}

// ---- pull times

void Registry::RecordPull(std::string_view repo, const oci::Digest& digest) {
  int64_t now = clock_.NowMillis();
  std::lock_guard lock(pulls_mu_);
  auto it = pending_pulls_.find(PullKeyLess::View(repo, digest.str()));
  if (it != pending_pulls_.end()) {
    it->second = std::max(it->second, now);
  } else if (pending_pulls_.size() < options_.max_pending_pulls) {
    pending_pulls_.emplace(std::make_pair(std::string(repo), digest.str()), now);
  }
}

Status Registry::FlushPulls() {
  PendingPulls pending;
  {
    std::lock_guard lock(pulls_mu_);
    pending.swap(pending_pulls_);
  }
  if (pending.empty()) return {};
  std::vector<storage::PullRecord> pulls;
  pulls.reserve(pending.size());
  for (const auto& [key, at] : pending) {
    auto digest = oci::Digest::Parse(key.second);
    if (digest.ok()) pulls.push_back({key.first, *digest, at});
  }
  Status st = meta_.RecordPulls(pulls);
  if (!st.ok()) {
    // Keep them for the next flush (newer pulls recorded meanwhile win).
    std::lock_guard lock(pulls_mu_);
    for (auto& [key, at] : pending) {
      auto [it, inserted] = pending_pulls_.emplace(key, at);
      if (!inserted) it->second = std::max(it->second, at);
    }
  }
  return RecordStorageError(st);
}

void Registry::ApplyPendingPulls(std::vector<storage::ImageRecord>& images) {
  std::lock_guard lock(pulls_mu_);
  if (pending_pulls_.empty()) return;
  for (auto& img : images) {
    auto it =
        pending_pulls_.find(PullKeyLess::View(img.manifest.repository, img.manifest.digest.str()));
    if (it != pending_pulls_.end()) {
      img.last_pulled_at_ms = std::max(img.last_pulled_at_ms, it->second);
    }
  }
}

}  // namespace berth::registry
