// S3 BlobStore.
//
// Uploads. S3 objects cannot be appended to, so an upload is:
//  - a marker object uploads/<id> (CreateUpload, conditional on absence), which says the
//    upload exists and is what ListUploads finds;
//  - a multipart upload at data/<id>, created with the first full part; a
//    writer buffers bytes into one part buffer of `part_size` and uploads each part as
//    soon as it fills, so parts stream while the request body arrives and a writer
//    never holds more than one part in memory;
//  - a tail object uploads/<id>/tail-<offset>-<nonce>: what Close() found in the buffer
//    (less than a part), written with one PutObject so that it is durable.
// The cursor returned by Close() (its `state`, below) names the multipart upload, the
// number of full parts and their part size, a hash chained over the parts' ETags, and
// the tail. The next AppendUpload, on this node or another, reads that tail back (less
// than one part) into the new writer's buffer and carries on with the next part
// number: nothing else is read or copied again. Whatever a request wrote after the
// recorded cursor (parts with higher numbers, other tails: every writer names its tail
// with a nonce of its own) is never referenced: later parts are overwritten or left
// out of the completion, other tails are deleted with the upload.
//
// Commit. A multipart upload is completed at the key it was created with, and the
// blob's digest is unknown until the end; S3 has no rename. So the bytes of a blob of
// at least one part stay where they were uploaded, and its key under blobs/ holds a
// pointer: an empty object whose user metadata names the data object and its size
// (x-amz-meta-berth-data, x-amz-meta-berth-size). No byte is copied, whatever the
// size (CopyObject, which AWS limits to 5 GiB, is never used on them). CommitUpload
//  1. returns at once (discarding the upload) when the blob already exists;
//  2. checks the parts against the cursor (ListParts: sizes and the ETag chain),
//     copies the tail into the last part (UploadPartCopy, server-side, less than one
//     part) and completes the multipart upload at data/<id>;
//  3. writes the pointer with PutObject If-None-Match: * (atomic: the blob appears
//     whole or not at all). Losing a race to another upload of the same digest
//     deletes this upload's data object: one copy per digest;
//  4. deletes everything under uploads/<id>/ and the marker last.
// An upload without a full part (less than `part_size` bytes) has its tail object
// copied to the blob key with CopyObject instead (small; blobs/ then holds the bytes).
// Every step can be repeated: a retried commit finds the multipart upload completed
// (then the object data/<id> is checked instead), its own pointer, or the blob present.
// A crash between 2 and 3 leaves a data object nothing points at, for the garbage
// collector's sweep of data/.
//
// Cursor state: "&"-separated name=value pairs, values percent-encoded:
//   ps=<part size>&n=<full parts>&u=<multipart upload id>&h=<ETag chain>
//   &t=<tail name>&pt=<previous tail name>
// Fields that are empty or zero are left out; the empty state is an empty upload. The
// tail holds size - n * ps bytes. `pt` is the tail this cursor superseded: once this
// cursor is recorded (the next AppendUpload is given it) nobody can need that tail, so
// AppendUpload deletes it.
#include "storage/blob/s3/s3_blob_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "oci/digest.h"
#include "storage/keys.h"

namespace berth::storage {
namespace {

using s3::ByteRange;
using s3::CompletedPart;
using s3::S3Client;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kMinPartSize = 5 * kMiB;    // S3's minimum for all parts but the last
constexpr uint64_t kMaxPartSize = 5ull << 30;  // S3's maximum part
constexpr int kMaxParts = 10000;               // S3's maximum part number
constexpr int kMaxFullParts = kMaxParts - 1;   // the last part number is the tail's
constexpr int64_t kMaxPresignSeconds = 7 * 24 * 3600;
constexpr int kListPage = 1000;
// How long Check() waits for the bucket to answer.
constexpr std::chrono::milliseconds kCheckTimeout{3000};
// User metadata of a pointer at a blob key (see the header comment).
constexpr std::string_view kPointerDataField = "berth-data";
constexpr std::string_view kPointerSizeField = "berth-size";

Status BlobUnknown(const oci::Digest& digest) {
  return Status(Code::kBlobUnknown, "blob " + digest.str() + " not found", digest.str());
}

Status UploadUnknown(std::string_view id) {
  return Status(Code::kUploadUnknown, "upload " + std::string(id.substr(0, 64)) + " not found",
                std::string(id.substr(0, 64)));
}

Status ShortUpload(std::string_view id, const std::string& why) {
  return Status(Code::kRangeInvalid, "upload " + std::string(id) + ": " + why, std::string(id));
}

// ---- Cursor state ----

struct UploadState {
  uint64_t part_size = 0;    // 0 while the upload has no part (the store's default then)
  int parts = 0;             // full parts 1..parts, each of part_size bytes
  std::string multipart_id;  // "" until the first part
  std::string parts_hash;    // ETag chain over parts 1..parts; "" when parts == 0
  std::string tail;          // tail object name; "" when the tail is empty
  std::string prev_tail;     // superseded tail, deleted by the next AppendUpload
};

bool Unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    if (Unreserved(c)) {
      out += c;
    } else {
      auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      if (!Unreserved(s[i])) return std::nullopt;
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string EncodeState(const UploadState& st) {
  std::string out;
  auto add = [&](std::string_view name, const std::string& value) {
    if (value.empty()) return;
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += PercentEncode(value);
  };
  // The part size is pinned by the first cursor that holds anything, so that nodes
  // configured with another part size continue the upload with this one.
  if (st.parts > 0 || !st.multipart_id.empty() || !st.tail.empty()) {
    add("ps", std::to_string(st.part_size));
  }
  if (st.parts > 0) add("n", std::to_string(st.parts));
  // Also without parts: a multipart upload whose first part failed is reused (and
  // aborted with the upload).
  add("u", st.multipart_id);
  add("h", st.parts_hash);
  add("t", st.tail);
  add("pt", st.prev_tail);
  return out;
}

// Parses and checks a cursor against itself: the tail must hold size - n * ps bytes,
// at most one part.
Result<UploadState> DecodeState(std::string_view upload_id, const UploadCursor& at) {
  UploadState st;
  auto bad = [&](const std::string& why) {
    return Status(Code::kCorruption,
                  "upload " + std::string(upload_id) + ": malformed cursor state (" + why + ")",
                  std::string(upload_id));
  };
  std::string_view s = at.state;
  std::map<std::string, std::string, std::less<>> fields;
  while (!s.empty()) {
    size_t amp = s.find('&');
    std::string_view pair = s.substr(0, amp);
    s = amp == std::string_view::npos ? std::string_view() : s.substr(amp + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) return bad("a field without a name or value");
    auto value = PercentDecode(pair.substr(eq + 1));
    if (!value || value->empty()) return bad("a bad value");
    if (!fields.emplace(std::string(pair.substr(0, eq)), std::move(*value)).second) {
      return bad("a repeated field");
    }
  }
  for (auto& [name, value] : fields) {
    if (name == "ps") {
      auto v = ParseU64(value);
      if (!v || *v < kMinPartSize || *v > kMaxPartSize) return bad("part size");
      st.part_size = *v;
    } else if (name == "n") {
      auto v = ParseU64(value);
      if (!v || *v < 1 || *v > kMaxFullParts) return bad("part count");
      st.parts = static_cast<int>(*v);
    } else if (name == "u") {
      st.multipart_id = value;
    } else if (name == "h") {
      if (value.size() != 16 || !IsLowerHex(value)) return bad("part hash");
      st.parts_hash = value;
    } else if (name == "t" || name == "pt") {
      if (!IsValidUploadTailName(value)) return bad("tail name");
      (name == "t" ? st.tail : st.prev_tail) = value;
    } else {
      return bad("unknown field '" + name + "'");
    }
  }
  if (st.parts > 0 && (st.multipart_id.empty() || st.parts_hash.empty())) {
    return bad("parts without a multipart upload or hash");
  }
  if (st.parts == 0 && !st.parts_hash.empty()) return bad("a hash without parts");
  if ((st.parts > 0 || !st.multipart_id.empty() || !st.tail.empty()) && st.part_size == 0) {
    return bad("no part size");
  }
  const uint64_t full = static_cast<uint64_t>(st.parts) * st.part_size;
  if (at.size < full) {
    return ShortUpload(upload_id, "the cursor records " + std::to_string(at.size) +
                                      " bytes but its parts hold " + std::to_string(full));
  }
  const uint64_t tail = at.size - full;
  if (tail > 0 && st.tail.empty()) {
    return ShortUpload(upload_id, "the cursor records " + std::to_string(at.size) +
                                      " bytes but the store holds " + std::to_string(full));
  }
  if (tail == 0 && !st.tail.empty()) return bad("a tail object for an empty tail");
  if (tail > st.part_size) return bad("a tail larger than a part");
  return st;
}

// The ETag chain: h_k = first 16 hex of sha256(h_{k-1} "\n" etag_k), quotes dropped.
std::string ChainHash(std::string_view previous, std::string_view etag) {
  std::string e;
  for (char c : etag) {
    if (c != '"') e += c;
  }
  std::string input(previous);
  input += '\n';
  input += e;
  return std::string(oci::Digest::Of(input).hex().substr(0, 16));
}

// ---- Shared by the store, its writers and readers ----

struct Shared {
  std::shared_ptr<S3Client> client;
  // The same store with short timeouts and no retries, for Check(): /readyz must say
  // that a bucket does not answer, not wait a minute for it.
  std::shared_ptr<S3Client> check_client;
  S3BlobStoreOptions options;

  void PartUploaded(int part, uint64_t bytes) const {
    if (options.hooks.on_part_uploaded) options.hooks.on_part_uploaded(part, bytes);
  }
  void UploadBytesRead(uint64_t bytes) const {
    if (options.hooks.on_upload_bytes_read) options.hooks.on_upload_bytes_read(bytes);
  }
  void BufferReserved(size_t capacity) const {
    if (options.hooks.on_buffer_reserved) options.hooks.on_buffer_reserved(capacity);
  }
  Status Fault(std::string_view step) const {
    return options.hooks.commit_fault ? options.hooks.commit_fault(step) : Status::Ok();
  }
};

// A byte buffer that grows on demand up to a fixed cap (one part): small uploads never
// allocate a whole part.
class PartBuffer {
 public:
  PartBuffer(const Shared& shared, size_t cap) : shared_(shared), cap_(cap) {}

  size_t size() const { return len_; }
  size_t cap() const { return cap_; }
  bool full() const { return len_ == cap_; }
  std::span<const char> bytes() const { return {data_.get(), len_}; }
  char* end() { return data_.get() + len_; }
  void clear() { len_ = 0; }

  // Makes room for `more` bytes (len + more <= cap).
  void Reserve(size_t more) {
    const size_t need = len_ + more;
    if (need <= allocated_) return;
    size_t grown = std::min(cap_, std::max({need, allocated_ * 2, size_t{64} << 10}));
    auto data = std::make_unique_for_overwrite<char[]>(grown);
    if (len_ > 0) std::memcpy(data.get(), data_.get(), len_);
    data_ = std::move(data);
    allocated_ = grown;
    shared_.BufferReserved(allocated_);
  }

  void Append(std::span<const char> data) {
    Reserve(data.size());
    std::memcpy(data_.get() + len_, data.data(), data.size());
    len_ += data.size();
  }
  void Grew(size_t n) { len_ += n; }

 private:
  const Shared& shared_;
  const size_t cap_;
  std::unique_ptr<char[]> data_;
  size_t allocated_ = 0;
  size_t len_ = 0;
};

class S3BlobWriter final : public BlobWriter {
 public:
  S3BlobWriter(std::shared_ptr<const Shared> shared, std::string upload_id, UploadCursor at,
               UploadState state)
      : shared_(std::move(shared)),
        upload_id_(std::move(upload_id)),
        at_(std::move(at)),
        state_(std::move(state)),
        buffer_(*shared_, state_.part_size) {}

  PartBuffer& buffer() { return buffer_; }

  Status Write(std::span<const char> data) override {
    if (closed_) return Status::FailedPrecondition("blob writer is closed");
    if (failed_) return Status::FailedPrecondition("blob writer failed earlier; close it");
    Status st = WriteAll(data);
    if (!st.ok()) failed_ = true;
    return st;
  }

  uint64_t size() const override {
    return static_cast<uint64_t>(state_.parts) * state_.part_size + buffer_.size();
  }

  Result<UploadCursor> Close() override {
    if (closed_) {
      if (!close_error_.ok()) return close_error_;
      return cursor_;
    }
    closed_ = true;
    if (!dirty_) {
      cursor_ = at_;
      return cursor_;
    }
    UploadState next = state_;
    next.tail.clear();
    next.prev_tail = state_.tail;  // still the tail of `at_`
    if (buffer_.size() > 0) {
      // The nonce keeps a writer that outlived its request from overwriting the tail of
      // the one that replaced it.
      std::string name = UploadTailName(size(), NewUploadId().substr(0, 16));
      auto put = shared_->client->PutObject(UploadTailKey(upload_id_, name), buffer_.bytes());
      if (!put.ok()) {
        // `at_` still stands: nothing it names was touched.
        close_error_ = put.status();
        return close_error_;
      }
      next.tail = std::move(name);
    }
    cursor_ = UploadCursor{size(), EncodeState(next)};
    return cursor_;
  }

 private:
  Status WriteAll(std::span<const char> data) {
    const uint64_t ps = state_.part_size;
    while (!data.empty()) {
      dirty_ = true;
      if (buffer_.full()) BERTH_RETURN_IF_ERROR(FlushBuffer());
      if (buffer_.size() == 0 && data.size() >= ps) {
        // A whole part straight from the caller's memory, without a copy.
        BERTH_RETURN_IF_ERROR(UploadNextPart(data.first(ps)));
        data = data.subspan(ps);
        continue;
      }
      size_t n = std::min<size_t>(ps - buffer_.size(), data.size());
      buffer_.Append(data.first(n));
      data = data.subspan(n);
      if (buffer_.full()) BERTH_RETURN_IF_ERROR(FlushBuffer());
    }
    return Status::Ok();
  }

  Status FlushBuffer() {
    BERTH_RETURN_IF_ERROR(UploadNextPart(buffer_.bytes()));
    buffer_.clear();
    return Status::Ok();
  }

  Status UploadNextPart(std::span<const char> part) {
    if (state_.parts >= kMaxFullParts) {
      return Status(Code::kTooLarge, "upload " + upload_id_ + " would exceed " +
                                         std::to_string(kMaxParts) + " parts of " +
                                         std::to_string(state_.part_size) +
                                         " bytes (raise the object store's part size)");
    }
    const std::string key = UploadDataKey(upload_id_);
    if (state_.multipart_id.empty()) {
      BERTH_ASSIGN_OR_RETURN(state_.multipart_id, shared_->client->CreateMultipartUpload(key));
    }
    const int number = state_.parts + 1;
    BERTH_ASSIGN_OR_RETURN(std::string etag,
                           shared_->client->UploadPart(key, state_.multipart_id, number, part));
    state_.parts_hash = ChainHash(state_.parts_hash, etag);
    state_.parts = number;
    shared_->PartUploaded(number, part.size());
    return Status::Ok();
  }

  const std::shared_ptr<const Shared> shared_;
  const std::string upload_id_;
  const UploadCursor at_;
  UploadState state_;  // parts uploaded so far; tail fields as of `at_`
  PartBuffer buffer_;
  bool dirty_ = false;   // a byte was written: Close() makes a new cursor
  bool failed_ = false;  // a part upload failed: no more writes
  bool closed_ = false;
  UploadCursor cursor_;
  Status close_error_;
};

// Reads a blob: one GetObject stays open while reads follow each other; a read
// elsewhere starts a ranged GetObject there.
class S3BlobReader final : public BlobReader {
 public:
  // `key`: the object holding the bytes (the blob key, or the data object it points at).
  S3BlobReader(std::shared_ptr<const Shared> shared, oci::Digest digest, std::string key,
               uint64_t size)
      : shared_(std::move(shared)), digest_(std::move(digest)), key_(std::move(key)), size_(size) {}

  uint64_t size() const override { return size_; }

  Result<size_t> ReadAt(uint64_t offset, std::span<char> out) override {
    if (offset >= size_ || out.empty()) return size_t{0};
    if (!stream_ || position_ != offset) {
      stream_.reset();
      std::optional<ByteRange> range;
      if (offset > 0) range = ByteRange{offset, std::nullopt};
      auto stream = shared_->client->GetObject(key_, range);
      if (!stream.ok()) {
        if (stream.status().Is(Code::kNotFound)) return BlobUnknown(digest_);
        return stream.status();
      }
      stream_ = std::move(stream).value();
      position_ = offset;
    }
    const size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - offset));
    auto n = stream_->Read(out.first(want));
    if (!n.ok()) {
      stream_.reset();
      return n.status();
    }
    position_ += *n;
    if (*n == 0 && want > 0) {
      stream_.reset();
      return Status::Corruption("blob " + digest_.str() + " ended at byte " +
                                std::to_string(offset) + " of " + std::to_string(size_));
    }
    return *n;
  }

 private:
  const std::shared_ptr<const Shared> shared_;
  const oci::Digest digest_;
  const std::string key_;
  const uint64_t size_;
  std::unique_ptr<s3::ObjectReader> stream_;
  uint64_t position_ = 0;
};

class S3BlobStore final : public BlobStore {
 public:
  explicit S3BlobStore(std::shared_ptr<const Shared> shared) : shared_(std::move(shared)) {}

  Status Check() override {
    Status st = shared_->check_client->HeadBucket();
    if (st.ok()) return st;
    const s3::S3Config& c = client().config();
    std::string msg = st.message();
    if (msg.find(c.bucket) == std::string::npos) msg += " (bucket " + c.bucket + ")";
    return Status(st.code(), "s3 blob store: " + msg, st.detail());
  }

  Result<BlobStat> Stat(const oci::Digest& digest) override {
    if (digest.empty()) return EmptyDigest();
    BERTH_ASSIGN_OR_RETURN(Location where, Locate(digest));
    return BlobStat{where.size};
  }

  Result<std::unique_ptr<BlobReader>> Open(const oci::Digest& digest) override {
    if (digest.empty()) return EmptyDigest();
    BERTH_ASSIGN_OR_RETURN(Location where, Locate(digest));
    return std::unique_ptr<BlobReader>(
        std::make_unique<S3BlobReader>(shared_, digest, std::move(where.key), where.size));
  }

  Status Delete(const oci::Digest& digest) override {
    if (digest.empty()) return EmptyDigest();
    BERTH_ASSIGN_OR_RETURN(Location where, Locate(digest));
    // The blob key first: once it is gone the blob is, and a crash before the data
    // object goes leaves only garbage for the sweep of data/.
    BERTH_RETURN_IF_ERROR(client().DeleteObject(BlobKey(digest)));
    if (where.key != BlobKey(digest)) return client().DeleteObject(where.key);
    return Status::Ok();
  }

  Result<std::optional<std::string>> DownloadUrl(const oci::Digest& digest,
                                                 int64_t ttl_seconds) override {
    if (!options().redirect) return std::optional<std::string>();
    if (digest.empty()) return EmptyDigest();
    const int64_t ttl = std::clamp<int64_t>(ttl_seconds, 1, kMaxPresignSeconds);
    BERTH_ASSIGN_OR_RETURN(Location where, Locate(digest));
    BERTH_ASSIGN_OR_RETURN(std::string url,
                           client().PresignGetObject(where.key, std::chrono::seconds(ttl)));
    return std::optional<std::string>(std::move(url));
  }

  Result<UploadCursor> CreateUpload(std::string_view upload_id) override {
    if (!IsValidUploadId(upload_id)) {
      return Status::InvalidArgument("invalid upload id: expected 32 lower-case hex characters");
    }
    // The marker carries a token of this call, so that a retry whose first attempt did
    // create it (and lost the answer) can tell its own marker from someone else's.
    const std::string token = NewUploadId();
    const std::string key = UploadKey(upload_id);
    auto put = client().PutObjectIfAbsent(key, token);
    if (!put.ok()) {
      if (!put.status().Is(Code::kAlreadyExists)) return put.status();
      if (ReadSmallObject(key).value_or("") != token) {
        return Status(Code::kAlreadyExists, "upload " + std::string(upload_id) + " already exists",
                      std::string(upload_id));
      }
    }
    return UploadCursor{};
  }

  Result<std::unique_ptr<BlobWriter>> AppendUpload(std::string_view upload_id,
                                                   const UploadCursor& at) override {
    if (!IsValidUploadId(upload_id)) return UploadUnknown(upload_id);
    BERTH_ASSIGN_OR_RETURN(UploadState state, DecodeState(upload_id, at));
    if (state.part_size == 0) state.part_size = options().part_size;
    const uint64_t tail_size = at.size - static_cast<uint64_t>(state.parts) * state.part_size;
    auto writer = std::make_unique<S3BlobWriter>(shared_, std::string(upload_id), at, state);
    if (tail_size > 0) {
      // Reading the tail also shows that the upload exists (one request, not two).
      Status read = ReadTail(upload_id, state.tail, tail_size, writer->buffer());
      if (read.Is(Code::kNotFound)) {
        BERTH_RETURN_IF_ERROR(CheckUploadExists(upload_id));
        return ShortUpload(upload_id, "its tail object " + state.tail + " is missing");
      }
      BERTH_RETURN_IF_ERROR(read);
    } else {
      BERTH_RETURN_IF_ERROR(CheckUploadExists(upload_id));
    }
    if (!state.prev_tail.empty()) {
      // This cursor is the recorded one, so the tail it superseded is garbage.
      Status st = client().DeleteObject(UploadTailKey(upload_id, state.prev_tail));
      if (!st.ok()) {
        spdlog::warn(
            "s3 blob store: cannot delete a superseded tail upload={} tail={} error=\"{}\"",
            upload_id, state.prev_tail, st.ToString());
      }
    }
    return std::unique_ptr<BlobWriter>(std::move(writer));
  }

  Status CommitUpload(std::string_view upload_id, const UploadCursor& at,
                      const oci::Digest& digest) override {
    if (!IsValidUploadId(upload_id)) return UploadUnknown(upload_id);
    if (digest.empty()) return EmptyDigest();
    BERTH_RETURN_IF_ERROR(CheckUploadExists(upload_id));
    BERTH_ASSIGN_OR_RETURN(UploadState state, DecodeState(upload_id, at));
    const std::string blob_key = BlobKey(digest);

    // One copy per digest: an existing blob wins and the upload goes.
    auto existing = Locate(digest);
    if (existing.ok()) {
      // An earlier attempt of ours may have completed our data object: unless the blob
      // is that object (our own pointer, written before a failure), it is a duplicate.
      if (state.parts > 0 && existing->key != UploadDataKey(upload_id)) {
        BERTH_RETURN_IF_ERROR(client().DeleteObject(UploadDataKey(upload_id)));
      }
      return Discard(upload_id, state);
    }
    if (!existing.status().Is(Code::kBlobUnknown)) return existing.status();

    if (state.parts == 0) {
      if (at.size == 0) return Finish(client().PutObject(blob_key, {}).status(), upload_id, state);
      // Less than a part: the tail object is the whole blob.
      auto copied = client().CopyObject(UploadTailKey(upload_id, state.tail), blob_key);
      if (!copied.ok() && copied.status().Is(Code::kNotFound)) {
        return ShortUpload(upload_id, "its tail object " + state.tail + " is missing");
      }
      return Finish(copied.status(), upload_id, state);
    }
    BERTH_RETURN_IF_ERROR(CompleteParts(upload_id, at, state));
    BERTH_RETURN_IF_ERROR(shared_->Fault("completed"));
    return Finish(PointAt(upload_id, at.size, digest), upload_id, state);
  }

  Status DeleteUpload(std::string_view upload_id, const std::optional<UploadCursor>& at) override {
    if (!IsValidUploadId(upload_id)) return UploadUnknown(upload_id);
    UploadState state;
    if (at) {
      // A damaged cursor must not keep an upload from being deleted: the listing below
      // finds everything anyway.
      auto decoded = DecodeState(upload_id, *at);
      if (decoded.ok()) state = std::move(decoded).value();
    }
    Status exists = CheckUploadExists(upload_id);
    if (exists.Is(Code::kUploadUnknown)) {
      // No marker; still remove what a crash may have left behind under the prefix.
      s3::ListObjectsRequest req;
      req.prefix = UploadObjectsPrefix(upload_id);
      req.max_keys = 1;
      BERTH_ASSIGN_OR_RETURN(auto page, client().ListObjectsV2(req));
      if (page.objects.empty()) return exists;
    } else if (!exists.ok()) {
      return exists;
    }
    return Discard(upload_id, state);
  }

  Result<std::vector<BlobListing>> ListBlobs(std::string_view after, size_t limit) override {
    std::vector<BlobListing> out;
    if (limit == 0) return out;
    s3::ListObjectsRequest req;
    req.prefix = std::string(kBlobsPrefix);
    if (!after.empty()) {
      // Keys sort as digests do (blobs/<alg>/<2 hex>/<hex>: the fan-out is a prefix of
      // the hex), so the listing can start right after `after`'s key.
      auto parsed = oci::Digest::Parse(after);
      if (parsed.ok()) req.start_after = BlobKey(*parsed);
    }
    for (;;) {
      req.max_keys = static_cast<int>(std::min<size_t>(kListPage, limit - out.size() + 1));
      BERTH_ASSIGN_OR_RETURN(auto page, client().ListObjectsV2(req));
      for (const auto& object : page.objects) {
        auto digest = DigestFromBlobKey(object.key);
        if (!digest || digest->str() <= after) continue;  // not a blob key (a stray object)
        uint64_t size = object.size;
        if (size == 0) {
          // A pointer (or the empty blob): its metadata has the size.
          auto where = Locate(*digest);
          if (!where.ok() && where.status().Is(Code::kBlobUnknown)) continue;  // just deleted
          if (!where.ok()) return where.status();
          size = where->size;
        }
        out.push_back({std::move(*digest), size});
        if (out.size() >= limit) return out;
      }
      if (!page.truncated) return out;
      req.start_after.clear();
      req.continuation_token = page.next_continuation_token;
    }
  }

  Result<std::vector<std::string>> ListUploads(std::string_view after, size_t limit) override {
    std::vector<std::string> out;
    if (limit == 0) return out;
    s3::ListObjectsRequest req;
    req.prefix = std::string(kUploadsPrefix);
    // Markers (uploads/<id>) and, grouped by the delimiter, whatever lies under
    // uploads/<id>/: both name an upload the store holds something for.
    req.delimiter = "/";
    // Past `after`'s marker and all of its objects ('~' sorts after every key byte used).
    if (IsValidUploadId(after)) req.start_after = UploadObjectsPrefix(after) + "~";
    for (;;) {
      req.max_keys = kListPage;
      BERTH_ASSIGN_OR_RETURN(auto page, client().ListObjectsV2(req));
      std::vector<std::string> ids;
      for (const auto& object : page.objects) {
        if (auto id = UploadIdFromKey(object.key)) ids.push_back(std::move(*id));
      }
      for (const auto& prefix : page.common_prefixes) {
        if (auto id = UploadIdFromKey(prefix)) ids.push_back(std::move(*id));
      }
      std::sort(ids.begin(), ids.end());
      for (auto& id : ids) {
        if (id <= after || (!out.empty() && id <= out.back())) continue;
        out.push_back(std::move(id));
        if (out.size() >= limit) return out;
      }
      if (!page.truncated) return out;
      req.start_after.clear();
      req.continuation_token = page.next_continuation_token;
    }
  }

 private:
  S3Client& client() const { return *shared_->client; }
  const S3BlobStoreOptions& options() const { return shared_->options; }

  static Status EmptyDigest() { return Status(Code::kDigestInvalid, "empty digest"); }

  static Status BlobError(const Status& st, const oci::Digest& digest) {
    return st.Is(Code::kNotFound) ? BlobUnknown(digest) : st;
  }

  // How a store says that a multipart upload is no more (completed or aborted): AWS
  // answers NoSuchUpload, radosgw 16.2 NoSuchKey to ListParts and Abort.
  static bool MultipartUploadGone(const Status& st) {
    return st.Is(Code::kUploadUnknown) || st.Is(Code::kNotFound);
  }

  Status CheckUploadExists(std::string_view upload_id) {
    auto marker = client().HeadObject(UploadKey(upload_id));
    if (marker.ok()) return Status::Ok();
    if (marker.status().Is(Code::kNotFound)) return UploadUnknown(upload_id);
    return marker.status();
  }

  // The whole of a small object (a marker); nullopt when it cannot be read.
  std::optional<std::string> ReadSmallObject(const std::string& key) {
    auto reader = client().GetObject(key);
    if (!reader.ok() || (*reader)->size() > 4096) return std::nullopt;
    std::string out((*reader)->size(), '\0');
    auto n = (*reader)->Read(out);
    if (!n.ok() || *n != out.size()) return std::nullopt;
    return out;
  }

  // Reads the tail object into the writer's buffer; it must hold exactly `size` bytes.
  // kNotFound when it is not there.
  Status ReadTail(std::string_view upload_id, const std::string& tail, uint64_t size,
                  PartBuffer& buffer) {
    auto reader = client().GetObject(UploadTailKey(upload_id, tail));
    if (!reader.ok()) return reader.status();
    if ((*reader)->size() != size || size > buffer.cap()) {
      return ShortUpload(upload_id, "its tail object " + tail + " holds " +
                                        std::to_string((*reader)->size()) + " bytes, not " +
                                        std::to_string(size));
    }
    buffer.Reserve(size);
    size_t got = 0;
    while (got < size) {
      BERTH_ASSIGN_OR_RETURN(size_t n, (*reader)->Read(std::span<char>(buffer.end(), size - got)));
      if (n == 0) return ShortUpload(upload_id, "its tail object " + tail + " ended early");
      buffer.Grew(n);
      got += n;
    }
    shared_->UploadBytesRead(size);
    return Status::Ok();
  }

  // Checks parts 1..n against the cursor, adds the tail as the last part and completes
  // the multipart upload at data/<id>, which then holds exactly at.size bytes.
  // A retry after an earlier attempt completed it checks that object instead.
  Status CompleteParts(std::string_view upload_id, const UploadCursor& at,
                       const UploadState& state) {
    const std::string data_key = UploadDataKey(upload_id);
    std::vector<CompletedPart> parts;
    Status listed = ListOurParts(upload_id, state, parts);
    if (MultipartUploadGone(listed)) {
      // Completed by an earlier attempt, or aborted.
      auto info = client().HeadObject(data_key);
      if (info.ok() && info->size == at.size) return Status::Ok();
      return ShortUpload(upload_id, "its multipart upload " + state.multipart_id + " is gone");
    }
    BERTH_RETURN_IF_ERROR(listed);
    const uint64_t tail_size = at.size - static_cast<uint64_t>(state.parts) * state.part_size;
    if (tail_size > 0) {
      auto etag = client().UploadPartCopy(data_key, state.multipart_id, state.parts + 1,
                                          UploadTailKey(upload_id, state.tail), std::nullopt);
      if (!etag.ok()) {
        if (etag.status().Is(Code::kNotFound)) {
          return ShortUpload(upload_id, "its tail object " + state.tail + " is missing");
        }
        return etag.status();
      }
      parts.push_back({state.parts + 1, std::move(etag).value()});
    }
    BERTH_RETURN_IF_ERROR(
        client().CompleteMultipartUpload(data_key, state.multipart_id, parts).status());
    BERTH_ASSIGN_OR_RETURN(auto info, client().HeadObject(data_key));
    if (info.size != at.size) {
      return Status(Code::kCorruption, "upload " + std::string(upload_id) + " completed with " +
                                           std::to_string(info.size) + " bytes instead of " +
                                           std::to_string(at.size));
    }
    return Status::Ok();
  }

  // Parts 1..state.parts as the store has them, checked against the cursor: each is
  // there, holds a whole part, and their ETags hash to the cursor's chain (so no part
  // was replaced by a request that outlived its lease).
  Status ListOurParts(std::string_view upload_id, const UploadState& state,
                      std::vector<CompletedPart>& out) {
    const std::string data_key = UploadDataKey(upload_id);
    std::string hash;
    int marker = 0;
    while (static_cast<int>(out.size()) < state.parts) {
      BERTH_ASSIGN_OR_RETURN(auto page,
                             client().ListParts(data_key, state.multipart_id, marker, kListPage));
      for (const auto& part : page.parts) {
        if (part.part_number > state.parts) break;
        const int want = static_cast<int>(out.size()) + 1;
        if (part.part_number != want) {
          return ShortUpload(upload_id, "part " + std::to_string(want) + " is missing");
        }
        if (part.size != state.part_size) {
          return ShortUpload(upload_id, "part " + std::to_string(want) + " holds " +
                                            std::to_string(part.size) + " bytes, not " +
                                            std::to_string(state.part_size));
        }
        hash = ChainHash(hash, part.etag);
        out.push_back({part.part_number, part.etag});
      }
      if (!page.truncated || page.parts.empty()) break;
      marker = page.next_part_number_marker;
    }
    if (static_cast<int>(out.size()) != state.parts) {
      return ShortUpload(upload_id, "it holds " + std::to_string(out.size()) + " parts, not " +
                                        std::to_string(state.parts));
    }
    if (hash != state.parts_hash) {
      return Status(Code::kCorruption,
                    "upload " + std::string(upload_id) +
                        ": its parts are not the ones its cursor recorded (a part was rewritten)",
                    std::string(upload_id));
    }
    return Status::Ok();
  }

  // Where a blob's bytes are: the blob key itself, or the data object its pointer names.
  struct Location {
    std::string key;
    uint64_t size = 0;
  };

  Result<Location> Locate(const oci::Digest& digest) {
    const std::string key = BlobKey(digest);
    auto info = client().HeadObject(key);
    if (!info.ok()) return BlobError(info.status(), digest);
    auto data = info->metadata.find(std::string(kPointerDataField));
    if (data == info->metadata.end()) return Location{key, info->size};
    auto size_field = info->metadata.find(std::string(kPointerSizeField));
    std::optional<uint64_t> size;
    if (size_field != info->metadata.end()) size = ParseU64(size_field->second);
    if (!size || !data->second.starts_with(kDataPrefix)) {
      return Status::Corruption("s3 blob store: blob " + digest.str() +
                                " has a malformed pointer (" + std::string(kPointerDataField) +
                                "=" + data->second + ")");
    }
    return Location{data->second, *size};
  }

  // Makes the completed data object of `upload_id` the blob `digest`, by writing the
  // pointer at the blob key. Another upload of the same digest may have been first:
  // then its blob stays and this data object goes.
  Status PointAt(std::string_view upload_id, uint64_t size, const oci::Digest& digest) {
    const std::string data_key = UploadDataKey(upload_id);
    const std::map<std::string, std::string> pointer = {
        {std::string(kPointerDataField), data_key},
        {std::string(kPointerSizeField), std::to_string(size)}};
    auto put = client().PutObjectIfAbsent(BlobKey(digest), {}, pointer);
    if (put.ok()) return Status::Ok();
    if (!put.status().Is(Code::kAlreadyExists)) return put.status();
    BERTH_ASSIGN_OR_RETURN(Location there, Locate(digest));
    if (there.key == data_key) return Status::Ok();  // ours: an earlier attempt wrote it
    return client().DeleteObject(data_key);
  }

  // After the blob is in place: the upload goes. A failure here fails the commit, whose
  // retry finds the blob and finishes the cleanup.
  Status Finish(Status committed, std::string_view upload_id, const UploadState& state) {
    BERTH_RETURN_IF_ERROR(committed);
    BERTH_RETURN_IF_ERROR(shared_->Fault("copied"));
    return Discard(upload_id, state);
  }

  // Aborts the multipart uploads at `key` other than `except` (ones a request started
  // and did not record: its first part failed after the upload was created).
  Status AbortOtherMultipartUploads(const std::string& key, const std::string& except) {
    std::string key_marker, id_marker;
    for (;;) {
      auto page = client().ListMultipartUploads(key, key_marker, id_marker, kListPage);
      if (!page.ok()) {
        // A store without the listing: the cursor's upload is aborted, and a bucket
        // lifecycle rule (AbortIncompleteMultipartUpload) reclaims the rest.
        if (page.status().Is(Code::kUnimplemented)) return Status::Ok();
        return page.status();
      }
      for (const auto& mpu : page->uploads) {
        if (mpu.key != key || mpu.upload_id == except) continue;
        Status st = client().AbortMultipartUpload(mpu.key, mpu.upload_id);
        if (!st.ok() && !MultipartUploadGone(st)) return st;
      }
      if (!page->truncated) return Status::Ok();
      key_marker = page->next_key_marker;
      id_marker = page->next_upload_id_marker;
    }
  }

  // Removes everything the upload holds: its multipart uploads (the cursor's, and any a
  // failed request started), every object under uploads/<id>/, and the marker last, so
  // that an interrupted discard still shows in ListUploads and can be finished.
  Status Discard(std::string_view upload_id, const UploadState& state) {
    const std::string data_key = UploadDataKey(upload_id);
    if (!state.multipart_id.empty()) {
      Status st = client().AbortMultipartUpload(data_key, state.multipart_id);
      if (!st.ok() && !MultipartUploadGone(st)) return st;
    }
    BERTH_RETURN_IF_ERROR(AbortOtherMultipartUploads(data_key, state.multipart_id));
    const std::string prefix = UploadObjectsPrefix(upload_id);
    s3::ListObjectsRequest req;
    req.prefix = prefix;
    req.max_keys = kListPage;
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(auto page, client().ListObjectsV2(req));
      std::vector<std::string> keys;
      for (auto& object : page.objects) keys.push_back(std::move(object.key));
      if (!keys.empty()) {
        BERTH_ASSIGN_OR_RETURN(auto failures, client().DeleteObjects(keys));
        if (!failures.empty()) {
          return Status::Unavailable("s3 blob store: cannot delete " + failures[0].key + ": " +
                                     failures[0].code + " " + failures[0].message);
        }
      }
      if (!page.truncated) break;
      req.continuation_token = page.next_continuation_token;
    }
    return client().DeleteObject(UploadKey(upload_id));
  }

  const std::shared_ptr<const Shared> shared_;
};

}  // namespace

Result<std::unique_ptr<BlobStore>> OpenS3BlobStore(const S3BlobStoreOptions& options) {
  if (options.part_size < kMinPartSize || options.part_size > kMaxPartSize) {
    return Status::InvalidArgument("s3 blob store: part size must be 5 MiB to 5 GiB, not " +
                                   std::to_string(options.part_size));
  }
  BERTH_ASSIGN_OR_RETURN(
      auto client, S3Client::Create(options.config, options.credentials, options.client_hooks));
  s3::S3Config check_config = options.config;
  check_config.max_retries = 0;
  check_config.connect_timeout = std::min(check_config.connect_timeout, kCheckTimeout);
  check_config.io_timeout = std::min(check_config.io_timeout, kCheckTimeout);
  BERTH_ASSIGN_OR_RETURN(
      auto check_client, S3Client::Create(check_config, options.credentials, options.client_hooks));
  auto shared = std::make_shared<Shared>();
  shared->client = std::move(client);
  shared->check_client = std::move(check_client);
  shared->options = options;
  return std::unique_ptr<BlobStore>(std::make_unique<S3BlobStore>(std::move(shared)));
}

}  // namespace berth::storage
