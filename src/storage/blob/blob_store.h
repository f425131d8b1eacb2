// BlobStore: content-addressed storage of blob bytes, plus the byte stream of
// upload sessions in progress. It knows nothing of repositories or HTTP.
//
// Contract (every backend passes blob/blob_store_conformance.h):
//  - A blob is visible (Stat/Open succeed) only after CommitUpload made it durable;
//    a crash at any moment leaves either no blob or the complete blob.
//  - Blobs are immutable; committing a digest that already exists discards the upload
//    and succeeds (one copy per digest).
//  - The store does not hash; the caller verifies the digest before committing.
//  - All methods are thread-safe. Methods block (disk or network I/O): call them off
//    the I/O threads, except BlobWriter::Write which is meant for the streaming path.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "base/status.h"
#include "oci/digest.h"

namespace berth::storage {

struct BlobStat {
  uint64_t size = 0;
};

// Reads a committed blob or an upload's bytes. Not thread-safe.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  virtual uint64_t size() const = 0;
  // Reads up to out.size() bytes at `offset`; returns the count (0 at end).
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<char> out) = 0;
  // A file descriptor usable with sendfile(2), or -1 when the backend has none.
  virtual int native_fd() const { return -1; }
};

// Appends to an upload's byte stream. Not thread-safe; one writer per upload at a time.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual Status Write(std::span<const char> data) = 0;
  // Bytes in the upload, including those written before this writer was opened.
  virtual uint64_t size() const = 0;
  // Makes what was written so far durable enough to be resumed (flushes buffers).
  virtual Status Close() = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  BlobStore() = default;
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

  // kBlobUnknown when absent.
  virtual Result<BlobStat> Stat(const oci::Digest& digest) = 0;
  virtual Result<std::unique_ptr<BlobReader>> Open(const oci::Digest& digest) = 0;
  // Removes a blob (garbage collection). kBlobUnknown when absent.
  virtual Status Delete(const oci::Digest& digest) = 0;

  // Creates an empty upload. kAlreadyExists if the id is taken.
  virtual Status CreateUpload(std::string_view upload_id) = 0;
  // Opens the upload for appending; `expected_offset` must equal its current size
  // (kRangeInvalid otherwise), so that a stale writer never corrupts the stream.
  virtual Result<std::unique_ptr<BlobWriter>> AppendUpload(std::string_view upload_id,
                                                           uint64_t expected_offset) = 0;
  // Current size of the upload. kUploadUnknown when absent.
  virtual Result<uint64_t> UploadSize(std::string_view upload_id) = 0;
  // Reads the upload's bytes (to rebuild a hash state on another node).
  virtual Result<std::unique_ptr<BlobReader>> OpenUpload(std::string_view upload_id) = 0;
  // Durably turns the upload into the blob `digest` (already verified by the caller) and
  // removes the upload. kUploadUnknown when the upload is absent.
  virtual Status CommitUpload(std::string_view upload_id, const oci::Digest& digest) = 0;
  // Removes an upload. kUploadUnknown when absent.
  virtual Status DeleteUpload(std::string_view upload_id) = 0;
};

}  // namespace berth::storage
