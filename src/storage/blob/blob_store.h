// BlobStore: content-addressed storage of blob bytes, plus the bytes of upload
// sessions in progress. It knows nothing of repositories, tags or HTTP, and holds no
// state of its own that another node could not see: an upload's position lives in an
// UploadCursor that the caller records (in the metadata store) after every append, so
// that the next append may run on another node, against another BlobStore instance.
//
// Contract (every backend passes blob/blob_store_conformance.h):
//  - A blob is visible (Stat/Open succeed) only after CommitUpload made it durable;
//    a crash at any moment leaves either no blob or the complete blob.
//  - Blobs are immutable; committing a digest that already exists discards the upload
//    and succeeds (one copy per digest).
//  - The store does not hash; the caller verifies the digest before committing (it
//    keeps a resumable hash state with the cursor, so nothing is ever re-read).
//  - What BlobWriter::Close returned is durable: a crash after it loses none of those
//    bytes, and an append from that cursor continues exactly there. Bytes written
//    after the last recorded cursor (a request that died midway) are discarded by the
//    next append from that cursor.
//  - All methods are thread-safe and block (disk or network I/O): call them off the
//    I/O threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "oci/digest.h"

namespace berth::storage {

struct BlobStat {
  uint64_t size = 0;
};

// One blob as enumeration reports it.
struct BlobListing {
  oci::Digest digest;
  uint64_t size = 0;
};

// Where an upload stands: the bytes it holds, and whatever the backend needs to
// continue it (an object store's multipart upload id and parts). Opaque to everybody
// but the backend that made it; the caller stores it verbatim with the session.
struct UploadCursor {
  uint64_t size = 0;
  std::string state;  // backend-defined; may be empty
  friend bool operator==(const UploadCursor&, const UploadCursor&) = default;
};

// Reads a committed blob, sequentially or at offsets. Not thread-safe. Reads that
// follow each other (offset == previous offset + count) are the fast path: a network
// backend keeps one response streaming for them.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  virtual uint64_t size() const = 0;
  // Reads up to out.size() bytes at `offset`; returns the count (0 at end).
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<char> out) = 0;
  // A file descriptor usable with sendfile(2), or -1 when the backend has none. The
  // HTTP layer never sees it: the API layer picks the body source (see api/blob_body.h).
  virtual int native_fd() const { return -1; }
};

// Appends to an upload. Not thread-safe; one writer per upload at a time (the caller
// holds the session's lease).
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual Status Write(std::span<const char> data) = 0;
  // Bytes in the upload, including those written before this writer was opened.
  virtual uint64_t size() const = 0;
  // Makes everything written so far durable and returns the cursor to record. After a
  // failed Write it may still succeed, with the bytes that did get stored.
  virtual Result<UploadCursor> Close() = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  BlobStore() = default;
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

  // Health: OK when the store answers (and, for a bucket, the bucket exists and the
  // credentials are accepted). The message names what is wrong otherwise.
  virtual Status Check() { return Status::Ok(); }

  // kBlobUnknown when absent.
  virtual Result<BlobStat> Stat(const oci::Digest& digest) = 0;
  virtual Result<std::unique_ptr<BlobReader>> Open(const oci::Digest& digest) = 0;
  // Removes a blob (garbage collection). kBlobUnknown when absent.
  virtual Status Delete(const oci::Digest& digest) = 0;
  // A URL a client may fetch the blob from directly for `ttl_seconds` (an object
  // store's presigned GET), or nullopt when the backend serves bytes only through
  // the node.
  virtual Result<std::optional<std::string>> DownloadUrl(const oci::Digest& digest,
                                                         int64_t ttl_seconds) {
    return std::optional<std::string>();
  }

  // Creates an empty upload and returns its cursor. kAlreadyExists if the id is taken.
  virtual Result<UploadCursor> CreateUpload(std::string_view upload_id) = 0;
  // Opens the upload for appending at `at` (the cursor last recorded). kUploadUnknown
  // when the upload is gone; kRangeInvalid when the store holds fewer bytes than
  // `at.size` (it never does unless its data was damaged).
  virtual Result<std::unique_ptr<BlobWriter>> AppendUpload(std::string_view upload_id,
                                                           const UploadCursor& at) = 0;
  // Durably turns the upload's first `at.size` bytes into the blob `digest` (verified by
  // the caller) and removes the upload. kUploadUnknown when the upload is absent.
  virtual Status CommitUpload(std::string_view upload_id, const UploadCursor& at,
                              const oci::Digest& digest) = 0;
  // Reads back the upload's first `at.size` bytes, for verifying a digest of another
  // algorithm than the one hashed on the way in. Optional: kUnsupported where the
  // medium cannot read an upload before it is complete (S3 multipart uploads).
  virtual Result<std::unique_ptr<BlobReader>> OpenUpload(std::string_view upload_id,
                                                         const UploadCursor& at) {
    return Status(Code::kUnsupported, "this blob store cannot read an upload in progress");
  }
  // Removes an upload with everything it stored. `at` is the last recorded cursor, or
  // nullopt when it is unknown (an orphan found by ListUploads). kUploadUnknown when
  // absent.
  virtual Status DeleteUpload(std::string_view upload_id,
                              const std::optional<UploadCursor>& at) = 0;

  // ---- enumeration (garbage collection and orphan sweeps; never on a request path)
  // Committed blobs ordered by digest string, strictly after `after` (empty = from the
  // start), at most `limit`.
  virtual Result<std::vector<BlobListing>> ListBlobs(std::string_view after, size_t limit) = 0;
  // Ids of the uploads the store holds bytes for, sorted, strictly after `after`, at
  // most `limit`.
  virtual Result<std::vector<std::string>> ListUploads(std::string_view after, size_t limit) = 0;
};

}  // namespace berth::storage
