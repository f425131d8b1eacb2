// Byte-level helpers over libarchive for the client: reproducible gzip (no timestamp,
// no name, fixed level), gunzip, and an index of an uncompressed tar file's members
// (so that a member can be read, or uploaded, in place by offset).
// Each object is single-threaded; the free functions are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "client/registry_client.h"
#include "oci/digest.h"

struct archive;  // libarchive

namespace berth::client {

// Streams bytes through gzip into a file, hashing both sides. The output is a pure
// function of the input (gzip header without mtime or name).
class GzipFileWriter {
 public:
  // Creates (truncates) `path`.
  static Result<std::unique_ptr<GzipFileWriter>> Create(const std::filesystem::path& path);
  ~GzipFileWriter();
  GzipFileWriter(const GzipFileWriter&) = delete;
  GzipFileWriter& operator=(const GzipFileWriter&) = delete;

  Status Write(std::string_view data);
  // Flushes and closes; afterwards the accessors below are valid.
  Status Finish();

  oci::Digest compressed_digest() const { return compressed_.Peek(); }
  uint64_t compressed_size() const { return compressed_.size(); }
  oci::Digest uncompressed_digest() const { return uncompressed_.Peek(); }
  uint64_t uncompressed_size() const { return uncompressed_.size(); }

 private:
  GzipFileWriter() = default;
  static long OnWrite(::archive*, void* self, const void* buf, size_t n);
  ::archive* a_ = nullptr;
  int fd_ = -1;
  bool finished_ = false;
  Status write_error_;
  oci::Hasher compressed_;
  oci::Hasher uncompressed_;
};

struct ConvertedBlob {
  oci::Digest digest;  // of the output file
  uint64_t size = 0;
  oci::Digest other_digest;  // of the input (gzip) / of the output's decompressed form
};

// True when the blob starts with the gzip magic bytes.
Result<bool> IsGzip(const LocalBlob& blob);
// gzip(blob) → out. other_digest is the digest of the uncompressed input (the diff_id).
Result<ConvertedBlob> GzipToFile(const LocalBlob& blob, const std::filesystem::path& out);
// gunzip(blob) → out. digest/size describe the uncompressed output.
Result<ConvertedBlob> GunzipToFile(const LocalBlob& blob, const std::filesystem::path& out);
// Digest of a local file range.
Result<oci::Digest> DigestOf(const LocalBlob& blob);
// Whole content of a local file range (small blobs only).
Result<std::string> ReadAll(const LocalBlob& blob, uint64_t max_bytes = 64 * kMiB);
// Copies a local file range to `out` (atomically: temp file, then rename).
Status CopyToFile(const LocalBlob& blob, const std::filesystem::path& out);

// Regular-file members of an uncompressed tar (ustar, pax and GNU long names),
// by normalized path ("./a/b" → "a/b").
Result<std::map<std::string, LocalBlob>> IndexTar(const std::filesystem::path& tar);

}  // namespace berth::client
