#include "cli/migrate.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "auth/identity_store.h"
#include "auth/secret_file.h"
#include "oci/digest.h"
#include "storage/keys.h"

namespace berth::cli {
namespace {

namespace fs = std::filesystem;
using storage::BlobRecord;
using storage::ImageRecord;
using storage::ManifestRecord;
using storage::RepositoryRecord;

constexpr size_t kCopyChunk = 1 << 20;  // bytes per read/write while streaming a blob
constexpr size_t kMaxReportedDifferences = 20;

Status In(std::string_view what, const Status& st) {
  return Status(st.code(), std::string(what) + ": " + st.message(), st.detail());
}

std::string TrimmedKey(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

// Streams a committed blob out of `blobs`, feeding `sink` chunk by chunk and hashing
// with the digest's algorithm; kDigestInvalid when the bytes do not hash to `digest`.
Status StreamBlob(storage::BlobStore& blobs, const oci::Digest& digest, std::string_view where,
                  const std::function<Status(std::span<const char>)>& sink, uint64_t* size_out) {
  BERTH_ASSIGN_OR_RETURN(auto reader, blobs.Open(digest));
  oci::Hasher hasher(digest.algorithm());
  std::vector<char> buf(kCopyChunk);
  uint64_t offset = 0;
  for (;;) {
    BERTH_ASSIGN_OR_RETURN(size_t n, reader->ReadAt(offset, buf));
    if (n == 0) break;
    std::span<const char> chunk(buf.data(), n);
    hasher.Update(chunk);
    if (sink) BERTH_RETURN_IF_ERROR(sink(chunk));
    offset += n;
  }
  if (offset != reader->size()) {
    return Status(Code::kSizeInvalid, "blob " + digest.str() + " in " + std::string(where) +
                                          " ended after " + std::to_string(offset) + " of " +
                                          std::to_string(reader->size()) + " bytes");
  }
  oci::Digest got = hasher.Peek();
  if (got != digest) {
    return Status(Code::kDigestInvalid, "blob " + digest.str() + " in " + std::string(where) +
                                            " holds bytes whose digest is " + got.str(),
                  digest.str());
  }
  if (size_out) *size_out = offset;
  return Status::Ok();
}

class Migration {
 public:
  Migration(const MigrationEnd& from, const MigrationEnd& to, const MigrateOptions& options)
      : from_(from), to_(to), options_(options) {}

  Result<MigrateReport> Run() {
    BERTH_RETURN_IF_ERROR(CopyAuth());
    std::string after;
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(auto names, from_.meta->ListRepositories(after, options_.page_size));
      if (names.empty()) break;
      for (const std::string& name : names) {
        BERTH_RETURN_IF_ERROR(In("repository " + name, CopyRepository(name)));
        ++report_.repositories;
        Progress("copied " + name);
      }
      after = names.back();
    }
    if (options_.verify) {
      Progress("verifying " + to_.description);
      BERTH_RETURN_IF_ERROR(Verify());
    }
    return report_;
  }

 private:
  void Progress(const std::string& line) const {
    if (options_.progress) options_.progress(line);
  }

  // ---- identities and the token key
  Status CopyAuth() {
    if (from_.auth_docs == nullptr || to_.auth_docs == nullptr) return Status::Ok();
    auth::SharedDocuments& src = *from_.auth_docs;
    auth::SharedDocuments& dst = *to_.auth_docs;
    BERTH_ASSIGN_OR_RETURN(auto identities, src.Get(auth::kSharedIdentitiesName));
    if (identities.has_value()) {
      std::string from_source = "the identities of " + from_.description;
      std::string into_source = "the identities of " + to_.description;
      size_t added = 0, replaced = 0;
      auto merged = auth::UpdateSharedDocument(
          dst, auth::kSharedIdentitiesName, 50,
          [&](const std::optional<std::string>& current) -> Result<std::optional<std::string>> {
            BERTH_ASSIGN_OR_RETURN(auto m, auth::MergeIdentityDocuments(current, into_source,
                                                                        *identities, from_source));
            added = m.added;
            replaced = m.replaced;
            if (m.added == 0 && m.replaced == 0) return std::optional<std::string>();
            return std::optional<std::string>(std::move(m.document));
          });
      BERTH_RETURN_IF_ERROR(merged.status());
      report_.identities_added = added;
      report_.identities_replaced = replaced;
    }
    BERTH_ASSIGN_OR_RETURN(auto key, src.Get(auth::kSharedTokenKeyName));
    if (key.has_value()) {
      std::string text = TrimmedKey(*key);
      bool copied = false;
      auto set = auth::UpdateSharedDocument(
          dst, auth::kSharedTokenKeyName, 50,
          [&](const std::optional<std::string>& current) -> Result<std::optional<std::string>> {
            copied = !current.has_value() || TrimmedKey(*current) != text;
            if (!copied) return std::optional<std::string>();
            return std::optional<std::string>(text);
          });
      BERTH_RETURN_IF_ERROR(set.status());
      report_.token_key_copied = copied;
    }
    return Status::Ok();
  }

  // ---- one repository
  Status CopyRepository(const std::string& name) {
    BERTH_ASSIGN_OR_RETURN(RepositoryRecord repo, from_.meta->GetRepository(name));
    Status created = to_.meta->CreateRepository(repo);
    if (created.ok()) {
      ++report_.repositories_created;
    } else if (created.Is(Code::kAlreadyExists)) {
      BERTH_RETURN_IF_ERROR(UpdateAttributes(repo));
    } else {
      return created;
    }
    BERTH_RETURN_IF_ERROR(CopyBlobs(name));
    BERTH_RETURN_IF_ERROR(CopyManifests(name));
    return Status::Ok();
  }

  // A repository the destination already has (an earlier run, or made there): the
  // attributes that can change are brought in line; the others must already match.
  Status UpdateAttributes(const RepositoryRecord& want) {
    BERTH_ASSIGN_OR_RETURN(RepositoryRecord have, to_.meta->GetRepository(want.name));
    auto differs = [&](std::string_view field) {
      return Status::FailedPrecondition(
          "the destination already has this repository with another " + std::string(field) +
          "; delete it there (or fix it) and run the migration again");
    };
    if (have.created_at_ms != want.created_at_ms) return differs("creation time");
    if (have.account_id != want.account_id) return differs("account");
    if (have.scan_on_push != want.scan_on_push) return differs("scanning configuration");
    if (have.encryption_type != want.encryption_type || have.kms_key != want.kms_key) {
      return differs("encryption configuration");
    }
    if (!(have.tag_mutability == want.tag_mutability)) {
      BERTH_RETURN_IF_ERROR(to_.meta->SetTagMutability(want.name, want.tag_mutability));
    }
    if (have.policy != want.policy) {
      if (want.policy.has_value()) {
        BERTH_RETURN_IF_ERROR(to_.meta->SetRepositoryPolicy(want.name, *want.policy));
      } else {
        BERTH_RETURN_IF_ERROR(to_.meta->DeleteRepositoryPolicy(want.name).status());
      }
    }
    if (have.tags != want.tags) {
      std::vector<std::string> remove;
      for (const auto& t : have.tags) {
        bool kept = std::any_of(want.tags.begin(), want.tags.end(),
                                [&](const storage::ResourceTag& w) { return w.key == t.key; });
        if (!kept) remove.push_back(t.key);
      }
      BERTH_RETURN_IF_ERROR(to_.meta->UpdateRepositoryTags(want.name, want.tags, remove,
                                                           want.tags.size() + have.tags.size()));
    }
    return Status::Ok();
  }

  // ---- blobs
  Status CopyBlobs(const std::string& repo) {
    std::string after;
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(auto page,
                             from_.meta->ListLinkedBlobs(repo, after, options_.page_size));
      if (page.empty()) return Status::Ok();
      for (const BlobRecord& blob : page) BERTH_RETURN_IF_ERROR(CopyBlob(repo, blob));
      after = page.back().digest.str();
    }
  }

  Status CopyBlob(const std::string& repo, const BlobRecord& blob) {
    auto linked = to_.meta->GetLinkedBlob(repo, blob.digest);
    if (!linked.ok() && !linked.status().Is(Code::kBlobUnknown)) return linked.status();
    // The destination's record counts only if its store has the bytes: a recorded blob
    // whose bytes are missing (or bytes that were never recorded) is repaired here.
    auto stat = to_.blobs->Stat(blob.digest);
    if (!stat.ok() && !stat.status().Is(Code::kBlobUnknown)) return stat.status();
    const bool bytes_there = stat.ok() && stat->size == blob.size;
    if (linked.ok() && bytes_there) {
      ++report_.blobs_present;
      return Status::Ok();
    }
    if (bytes_there) {
      BERTH_RETURN_IF_ERROR(to_.meta->CommitBlob(repo, blob, ""));
      ++report_.blobs_linked;
      return Status::Ok();
    }
    if (options_.before_blob_copy) BERTH_RETURN_IF_ERROR(options_.before_blob_copy(blob.digest));
    BERTH_RETURN_IF_ERROR(In("blob " + blob.digest.str(), CopyBytes(blob)));
    BERTH_RETURN_IF_ERROR(to_.meta->CommitBlob(repo, blob, ""));
    ++report_.blobs_copied;
    report_.bytes_copied += blob.size;
    return Status::Ok();
  }

  // Streams the bytes into a new upload at the destination, hashing them on the way,
  // and commits it under the digest only if they match.
  Status CopyBytes(const BlobRecord& blob) {
    const std::string id = storage::NewUploadId();
    BERTH_ASSIGN_OR_RETURN(storage::UploadCursor cursor, to_.blobs->CreateUpload(id));
    Status st = [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(auto writer, to_.blobs->AppendUpload(id, cursor));
      uint64_t size = 0;
      Status streamed = StreamBlob(
          *from_.blobs, blob.digest, from_.description,
          [&](std::span<const char> chunk) { return writer->Write(chunk); }, &size);
      if (!streamed.ok()) return streamed;
      if (size != blob.size) {
        return Status(Code::kSizeInvalid, "the source's blob store holds " +
                                              std::to_string(size) + " bytes, its metadata says " +
                                              std::to_string(blob.size));
      }
      BERTH_ASSIGN_OR_RETURN(cursor, writer->Close());
      return to_.blobs->CommitUpload(id, cursor, blob.digest);
    }();
    if (!st.ok()) (void)to_.blobs->DeleteUpload(id, cursor);
    return st;
  }

  // ---- manifests, tags and pull times
  // Children must be in place before an index that lists them: manifests without
  // children go first, then indexes in rounds until none is left (nesting depth).
  Status CopyManifests(const std::string& repo) {
    std::vector<oci::Digest> indexes;
    std::string after;
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(auto page, from_.meta->ListImages(repo, storage::TagFilter::kAny,
                                                               after, options_.page_size));
      if (page.empty()) break;
      for (const ImageRecord& image : page) {
        BERTH_ASSIGN_OR_RETURN(ManifestRecord m,
                               from_.meta->GetManifest(repo, image.manifest.digest));
        if (!m.child_refs.empty()) {
          indexes.push_back(m.digest);
          continue;
        }
        BERTH_RETURN_IF_ERROR(CopyManifest(m, image));
      }
      after = page.back().manifest.digest.str();
    }
    while (!indexes.empty()) {
      std::vector<oci::Digest> waiting;
      for (const oci::Digest& digest : indexes) {
        BERTH_ASSIGN_OR_RETURN(ManifestRecord m, from_.meta->GetManifest(repo, digest));
        bool ready = true;
        for (const oci::Digest& child : m.child_refs) {
          auto have = to_.meta->GetManifestForPull(repo, child);
          if (have.ok()) continue;
          if (!have.status().Is(Code::kManifestUnknown)) return have.status();
          ready = false;
          break;
        }
        if (!ready) {
          waiting.push_back(digest);
          continue;
        }
        BERTH_ASSIGN_OR_RETURN(ImageRecord image, from_.meta->GetImage(repo, digest));
        BERTH_RETURN_IF_ERROR(CopyManifest(m, image));
      }
      if (waiting.size() == indexes.size()) {
        return Status::FailedPrecondition(
            "index " + waiting.front().str() +
            " lists a manifest that the source does not hold (its metadata is inconsistent)");
      }
      indexes = std::move(waiting);
    }
    return Status::Ok();
  }

  Status CopyManifest(const ManifestRecord& m, const ImageRecord& image) {
    auto have = to_.meta->GetManifestForPull(m.repository, m.digest);
    if (have.ok()) {
      ++report_.manifests_present;
    } else if (have.status().Is(Code::kManifestUnknown)) {
      BERTH_RETURN_IF_ERROR(In("manifest " + m.digest.str(), to_.meta->PutManifest(m, "").status()));
      ++report_.manifests_copied;
    } else {
      return have.status();
    }
    for (const std::string& tag : image.tags) {
      auto at = to_.meta->GetManifestByTagForPull(m.repository, tag);
      if (at.ok() && at->digest == m.digest) continue;
      if (!at.ok() && !at.status().Is(Code::kManifestUnknown)) return at.status();
      BERTH_RETURN_IF_ERROR(In("tag " + tag, to_.meta->PutManifest(m, tag).status()));
      ++report_.tags_set;
    }
    if (image.last_pulled_at_ms > 0) {
      BERTH_ASSIGN_OR_RETURN(ImageRecord there, to_.meta->GetImage(m.repository, m.digest));
      if (there.last_pulled_at_ms < image.last_pulled_at_ms) {
        BERTH_RETURN_IF_ERROR(
            to_.meta->RecordPulls({{m.repository, m.digest, image.last_pulled_at_ms}}));
        ++report_.pulls_recorded;
      }
    }
    return Status::Ok();
  }

  // ---- verification: the destination holds what the source does
  Status Verify() {
    std::string after;
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(auto names, from_.meta->ListRepositories(after, options_.page_size));
      if (names.empty()) break;
      for (const std::string& name : names) {
        BERTH_RETURN_IF_ERROR(VerifyRepository(name));
      }
      after = names.back();
    }
    if (differences_.empty()) return Status::Ok();
    std::string msg = std::to_string(differences_.size()) +
                      (differences_.size() >= kMaxReportedDifferences ? "+" : "") +
                      " difference(s) between " + from_.description + " and " +
                      to_.description + " after copying:";
    for (const std::string& d : differences_) msg += "\n  " + d;
    return Status::Corruption(msg);
  }

  void Differ(std::string what) {
    if (differences_.size() < kMaxReportedDifferences) differences_.push_back(std::move(what));
  }

  Status VerifyRepository(const std::string& name) {
    BERTH_ASSIGN_OR_RETURN(RepositoryRecord want, from_.meta->GetRepository(name));
    auto have = to_.meta->GetRepository(name);
    if (!have.ok()) {
      Differ(name + ": " + have.status().message());
      return Status::Ok();
    }
    if (have->created_at_ms != want.created_at_ms || have->account_id != want.account_id ||
        !(have->tag_mutability == want.tag_mutability) || have->scan_on_push != want.scan_on_push ||
        have->encryption_type != want.encryption_type || have->kms_key != want.kms_key ||
        have->tags != want.tags || have->policy != want.policy) {
      Differ(name + ": repository attributes differ");
    }
    std::string after;
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(auto page, from_.meta->ListLinkedBlobs(name, after, options_.page_size));
      if (page.empty()) break;
      for (const BlobRecord& blob : page) BERTH_RETURN_IF_ERROR(VerifyBlob(name, blob));
      after = page.back().digest.str();
    }
    after.clear();
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(auto page, from_.meta->ListImages(name, storage::TagFilter::kAny,
                                                               after, options_.page_size));
      if (page.empty()) break;
      for (const ImageRecord& image : page) BERTH_RETURN_IF_ERROR(VerifyImage(name, image));
      after = page.back().manifest.digest.str();
    }
    return Status::Ok();
  }

  Status VerifyBlob(const std::string& repo, const BlobRecord& want) {
    auto have = to_.meta->GetLinkedBlob(repo, want.digest);
    if (!have.ok()) {
      Differ(repo + ": blob " + want.digest.str() + ": " + have.status().message());
      return Status::Ok();
    }
    if (have->size != want.size) Differ(repo + ": blob " + want.digest.str() + ": size differs");
    if (!verified_blobs_.insert(want.digest.str()).second) return Status::Ok();
    uint64_t size = 0;
    Status st = StreamBlob(*to_.blobs, want.digest, to_.description, nullptr, &size);
    if (st.Is(Code::kBlobUnknown) || st.Is(Code::kDigestInvalid) || st.Is(Code::kSizeInvalid)) {
      Differ(repo + ": " + st.message());
      return Status::Ok();
    }
    BERTH_RETURN_IF_ERROR(st);
    if (size != want.size) Differ(repo + ": blob " + want.digest.str() + ": size differs");
    ++report_.blobs_verified;
    report_.bytes_verified += size;
    return Status::Ok();
  }

  Status VerifyImage(const std::string& repo, const ImageRecord& want) {
    const oci::Digest& digest = want.manifest.digest;
    BERTH_ASSIGN_OR_RETURN(ManifestRecord src, from_.meta->GetManifest(repo, digest));
    auto dst = to_.meta->GetManifest(repo, digest);
    if (!dst.ok()) {
      Differ(repo + "@" + digest.str() + ": " + dst.status().message());
      return Status::Ok();
    }
    if (dst->bytes != src.bytes || oci::Digest::Of(dst->bytes, digest.algorithm()) != digest) {
      Differ(repo + "@" + digest.str() + ": manifest bytes differ");
    }
    if (dst->pushed_at_ms != src.pushed_at_ms || dst->media_type != src.media_type ||
        dst->artifact_type != src.artifact_type || dst->subject != src.subject ||
        dst->blob_refs != src.blob_refs || dst->child_refs != src.child_refs ||
        dst->image_size != src.image_size) {
      Differ(repo + "@" + digest.str() + ": manifest record differs");
    }
    BERTH_ASSIGN_OR_RETURN(ImageRecord there, to_.meta->GetImage(repo, digest));
    for (const std::string& tag : want.tags) {
      if (!std::binary_search(there.tags.begin(), there.tags.end(), tag)) {
        Differ(repo + ":" + tag + ": tag missing or pointing elsewhere");
      }
    }
    report_.tags_verified += want.tags.size();
    if (there.last_pulled_at_ms < want.last_pulled_at_ms) {
      Differ(repo + "@" + digest.str() + ": last pull time not copied");
    }
    ++report_.manifests_verified;
    return Status::Ok();
  }

  const MigrationEnd& from_;
  const MigrationEnd& to_;
  const MigrateOptions& options_;
  MigrateReport report_;
  std::set<std::string> verified_blobs_;
  std::vector<std::string> differences_;
};

}  // namespace

Result<MigrateReport> Migrate(const MigrationEnd& from, const MigrationEnd& to,
                              const MigrateOptions& options) {
  if (from.blobs == nullptr || from.meta == nullptr || to.blobs == nullptr || to.meta == nullptr) {
    return Status::InvalidArgument("migrate: both ends need a blob store and a metadata store");
  }
  if (options.page_size == 0) return Status::InvalidArgument("migrate: page size must be > 0");
  return Migration(from, to, options).Run();
}

// ---- DataDirDocuments

Result<std::string> DataDirDocuments::PathOf(std::string_view name) const {
  if (name == auth::kSharedIdentitiesName) {
    return (fs::path(data_dir_) / auth::kIdentitiesFileName).string();
  }
  if (name == auth::kSharedTokenKeyName) return (fs::path(data_dir_) / "token.key").string();
  return Status::NotFound("a data directory keeps no document named " + std::string(name));
}

Result<std::optional<std::string>> DataDirDocuments::Get(std::string_view name) {
  BERTH_ASSIGN_OR_RETURN(std::string path, PathOf(name));
  BERTH_ASSIGN_OR_RETURN(auto stamp, auth::StatFile(path));
  if (!stamp.has_value()) return std::optional<std::string>();
  BERTH_ASSIGN_OR_RETURN(std::string text, auth::ReadSmallFile(path, 16 << 20));
  return std::optional<std::string>(std::move(text));
}

Status DataDirDocuments::Swap(std::string_view name, const std::optional<std::string>& expected,
                              std::string_view value) {
  BERTH_ASSIGN_OR_RETURN(std::string path, PathOf(name));
  // The same lock files the server's writers of these files take.
  BERTH_ASSIGN_OR_RETURN(auth::FileLock lock, auth::FileLock::Acquire(path + ".lock"));
  BERTH_ASSIGN_OR_RETURN(auto current, Get(name));
  if (current != expected) {
    return Status(Code::kAborted, path + " changed while it was being updated");
  }
  std::string text(value);
  if (name == auth::kSharedTokenKeyName) text += "\n";
  return auth::WriteFileAtomically(path, text, 0600);
}

}  // namespace berth::cli
