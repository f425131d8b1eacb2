// S3Client: a blocking client for one bucket of an S3-compatible object store (AWS S3,
// Ceph radosgw, MinIO), for the S3 BlobStore.
//
// Threading: an S3Client is thread-safe; any number of threads may call it at once.
// Every call blocks its thread on network I/O, so call it from Berth's blocking pool,
// never from an I/O thread. Each call borrows a keep-alive connection from a small pool
// (or opens one) and returns it when the response is fully read; connections are never
// shared by two calls. An ObjectReader is not thread-safe and holds its connection until
// its body is read or it is destroyed; it may outlive the S3Client that made it.
//
// Keys: every key given to or returned by the client is relative to S3Config::prefix,
// which the client adds on the wire and strips from listings.
//
// Errors are values; no exception leaves this API. Each call maps the store's answer
// to a Code once:
//   NoSuchKey / 404 on an object          → kNotFound
//   NoSuchUpload                          → kUploadUnknown
//   NoSuchBucket / 404 on HeadBucket      → kFailedPrecondition "bucket B does not exist at E"
//   403, SignatureDoesNotMatch, InvalidAccessKeyId, ...
//                                         → kUnauthorized "credentials refused by E: ..."
//   InvalidRange                          → kRangeInvalid
//   PreconditionFailed / a changed ETag   → kAborted (the object changed under a read)
//   connection refused, reset, timeout    → kUnavailable "object store E unreachable: ..."
//   5xx, 429, SlowDown, ... after retries → kUnavailable naming the S3 code
//   an untrusted TLS certificate          → kFailedPrecondition (retrying cannot help)
// Retries: every operation here is idempotent by key and part number, so each is retried
// on 5xx (but 501), 429, SlowDown / RequestTimeout / InternalError (also inside a 200
// body, which CompleteMultipartUpload and the copies can return) and connection errors,
// up to S3Config::max_retries times with exponential back-off and full jitter; each
// retry is logged once at warn. A request that failed on a reused keep-alive connection
// before any response byte (the server had closed it) is resent at once on a new
// connection without counting as a retry.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "storage/blob/s3/s3_credentials.h"

namespace berth::storage::s3 {

struct S3Config {
  // "http://host:port" or "https://host[:port]", no path. Required.
  std::string endpoint;
  // Required.
  std::string bucket;
  // Region of the credential scope. radosgw accepts any name unless its zonegroup says
  // otherwise. Default: "us-east-1".
  std::string region = "us-east-1";
  // Prepended to every key, e.g. "registry/". Default: "" (keys at the bucket's root).
  std::string prefix;
  // true: http://host/bucket/key. false: http://bucket.host/key (virtual host; needs DNS
  // for bucket.host, and a wildcard certificate over https). Default: true, what
  // radosgw and MinIO serve out of the box.
  bool path_style = true;
  // PEM file of the CAs to trust over https instead of the system's. Default: "".
  std::string ca_file;
  // Check the server's certificate and host name over https. Default: true.
  bool verify_tls = true;
  // Retries after the first attempt, for retryable failures. Default: 4.
  int max_retries = 4;
  // Back-off before retry n (1-based): uniform in [0, min(retry_max_delay,
  // retry_base_delay * 2^(n-1))] ("full jitter", so many clients do not retry in step).
  // Default: 100 ms and 5 s.
  std::chrono::milliseconds retry_base_delay{100};
  std::chrono::milliseconds retry_max_delay{5000};
  // Resolving, connecting and the TLS handshake. Default: 5 s.
  std::chrono::milliseconds connect_timeout{5000};
  // Longest wait for progress on a connection: each write, each read, and the wait for
  // a response's header (which includes the server's own work, e.g. a server-side
  // copy). Default: 60 s.
  std::chrono::milliseconds io_timeout{60000};
  // Keep-alive connections kept for reuse; more are opened under load and closed when
  // returned. Default: 16.
  size_t max_idle_connections = 16;
  // An idle connection older than this is closed rather than reused: servers drop idle
  // connections (radosgw's beast frontend after about a minute, AWS after ~20 s).
  // Default: 15 s.
  std::chrono::milliseconds idle_timeout{15000};
  // Request bodies at least this large are sent as UNSIGNED-PAYLOAD over https only,
  // where TLS already protects them and hashing would cost a pass over every part. Over
  // http, and below this size, the body's SHA-256 is signed, so the store refuses a body
  // damaged in transit. Default: 1 MiB.
  uint64_t unsigned_payload_min_size = 1 << 20;
};

// Bytes [offset, offset + length) of an object; length nullopt = to the end.
struct ByteRange {
  uint64_t offset = 0;
  std::optional<uint64_t> length;
};

struct ObjectInfo {
  uint64_t size = 0;
  std::string etag;           // as sent, with its quotes: "\"9b2cf535f27731c974343645a3985328\""
  std::string last_modified;  // HTTP date, "" when the store did not send one
  // User metadata (x-amz-meta-NAME: value), by NAME in lower case.
  std::map<std::string, std::string> metadata;
};

struct ListObjectsRequest {
  std::string prefix;              // relative to S3Config::prefix
  std::string delimiter;           // "" for none; "/" groups keys into common_prefixes
  std::string start_after;         // relative key; first page only
  std::string continuation_token;  // from the previous page
  int max_keys = 1000;             // 1..1000
};

struct ListedObject {
  std::string key;  // relative to S3Config::prefix
  uint64_t size = 0;
  std::string etag;
};

struct ListObjectsPage {
  std::vector<ListedObject> objects;
  std::vector<std::string> common_prefixes;  // relative, with the delimiter at the end
  bool truncated = false;
  std::string next_continuation_token;  // set when truncated
};

struct CompletedPart {
  int part_number = 0;  // 1..10000
  std::string etag;     // from UploadPart / UploadPartCopy
};

struct PartInfo {
  int part_number = 0;
  uint64_t size = 0;
  std::string etag;
};

struct ListPartsPage {
  std::vector<PartInfo> parts;
  bool truncated = false;
  int next_part_number_marker = 0;  // pass as part_number_marker for the next page
};

// An incomplete multipart upload, as ListMultipartUploads reports it.
struct MultipartUploadListing {
  std::string key;  // relative to S3Config::prefix
  std::string upload_id;
};

struct ListMultipartUploadsPage {
  std::vector<MultipartUploadListing> uploads;
  bool truncated = false;
  std::string next_key_marker;  // pass both markers for the next page
  std::string next_upload_id_marker;
};

struct DeleteFailure {
  std::string key;  // relative
  std::string code;
  std::string message;
};

// The body of a GetObject, delivered in order into the caller's buffers, so that an
// object of any size is never held in memory. Not thread-safe.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Bytes this reader yields: the range's length, or the object's size.
  virtual uint64_t size() const = 0;
  // Size of the whole object.
  virtual uint64_t object_size() const = 0;
  virtual const std::string& etag() const = 0;
  // Fills `out` with the next bytes of the body and returns how many; fewer than
  // out.size() only at the end, and 0 once everything was read. A connection lost
  // midway is resumed with a ranged GET conditioned on the ETag (If-Match), within the
  // client's retry budget; kAborted if the object changed meanwhile. After an error the
  // reader is unusable.
  virtual Result<size_t> Read(std::span<char> out) = 0;
};

// Seams for tests. Default: the real clock (signing time) and a real sleep (back-off).
struct S3ClientHooks {
  const Clock* clock = nullptr;
  std::function<void(std::chrono::milliseconds)> sleep;
};

class S3Client {
 public:
  virtual ~S3Client() = default;
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Checks the configuration (endpoint URL, bucket name, CA file); does not connect.
  // kInvalidArgument for a bad endpoint or bucket, kFailedPrecondition for an
  // unreadable CA file.
  static Result<std::unique_ptr<S3Client>> Create(S3Config config, S3Credentials credentials,
                                                  S3ClientHooks hooks = {});

  const S3Config& config() const { return config_; }

  // ---- Bucket ----
  // OK when the bucket exists and the credentials may use it.
  virtual Status HeadBucket() = 0;
  // Creates the bucket; OK when it already exists and is ours.
  virtual Status CreateBucket() = 0;
  // Deletes the (empty) bucket; kFailedPrecondition when it is not empty.
  virtual Status DeleteBucket() = 0;

  // ---- Objects ----
  virtual Result<ObjectInfo> HeadObject(std::string_view key) = 0;
  // Starts reading the object (or `range` of it). kRangeInvalid when the range starts
  // at or past the end; a zero-length range is kInvalidArgument.
  virtual Result<std::unique_ptr<ObjectReader>> GetObject(std::string_view key,
                                                          std::optional<ByteRange> range = {}) = 0;
  // Stores a small object from memory (up to 5 GiB; use multipart above ~64 MiB).
  // Returns its ETag.
  virtual Result<std::string> PutObject(std::string_view key, std::span<const char> body) = 0;
  // PutObject only if no object has the key (If-None-Match: *); kAlreadyExists when one
  // does. (A retry after a lost answer also finds the key taken: callers that must tell
  // the two apart store something recognisable.) Stores that ignore the condition
  // overwrite.
  // `metadata` is stored as user metadata (x-amz-meta-NAME; NAME lower-case).
  virtual Result<std::string> PutObjectIfAbsent(
      std::string_view key, std::span<const char> body,
      const std::map<std::string, std::string>& metadata = {}) = 0;
  // OK also when the key does not exist (S3 semantics).
  virtual Status DeleteObject(std::string_view key) = 0;
  // Deletes many keys, 1000 per request; returns the keys the store refused.
  virtual Result<std::vector<DeleteFailure>> DeleteObjects(std::span<const std::string> keys) = 0;
  virtual Result<ListObjectsPage> ListObjectsV2(const ListObjectsRequest& request) = 0;
  // Server-side copy (up to 5 GiB); returns the new object's ETag.
  virtual Result<std::string> CopyObject(std::string_view source_key,
                                         std::string_view destination_key) = 0;

  // ---- Multipart uploads ----
  // Returns the upload id. (A retried create can leave an orphan upload behind; a bucket
  // lifecycle rule AbortIncompleteMultipartUpload reclaims those.)
  virtual Result<std::string> CreateMultipartUpload(std::string_view key) = 0;
  // Uploads part `part_number` (1..10000; all but the last at least 5 MiB); returns its
  // ETag.
  virtual Result<std::string> UploadPart(std::string_view key, std::string_view upload_id,
                                         int part_number, std::span<const char> body) = 0;
  // Copies bytes of `source_key` (all of it when `range` is nullopt) into a part.
  virtual Result<std::string> UploadPartCopy(std::string_view key, std::string_view upload_id,
                                             int part_number, std::string_view source_key,
                                             std::optional<ByteRange> range) = 0;
  // Assembles the parts (in ascending part number) into the object; returns its ETag. If
  // a retry finds the upload gone because an earlier attempt completed it, the object's
  // ETag is checked and returned instead of kUploadUnknown.
  virtual Result<std::string> CompleteMultipartUpload(std::string_view key,
                                                      std::string_view upload_id,
                                                      std::span<const CompletedPart> parts) = 0;
  virtual Status AbortMultipartUpload(std::string_view key, std::string_view upload_id) = 0;
  // One page of the bucket's incomplete multipart uploads whose keys start with `prefix`
  // (relative), after the markers of the previous page ("" = from the start).
  virtual Result<ListMultipartUploadsPage> ListMultipartUploads(
      std::string_view prefix, std::string_view key_marker = "",
      std::string_view upload_id_marker = "", int max_uploads = 1000) = 0;
  // One page of the upload's parts, after part `part_number_marker` (0 = from the start).
  virtual Result<ListPartsPage> ListParts(std::string_view key, std::string_view upload_id,
                                          int part_number_marker = 0, int max_parts = 1000) = 0;

  // ---- Presigning ----
  // A URL anyone can GET the object with, without credentials, for `expires` (1 s to
  // 7 days). Pure: no request is made.
  virtual Result<std::string> PresignGetObject(std::string_view key,
                                               std::chrono::seconds expires) = 0;

 protected:
  explicit S3Client(S3Config config) : config_(std::move(config)) {}

 private:
  S3Config config_;
};

}  // namespace berth::storage::s3
