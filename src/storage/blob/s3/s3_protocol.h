// The S3 wire protocol without sockets, for S3Client (s3_client.cc) and its tests:
// endpoint addressing, request targets and SigV4 signing, presigned URLs, a small XML
// reader for S3's responses, response parsing, and the error and retry policy.
//
// Internal to storage/blob/s3. All functions are pure: thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "storage/blob/s3/s3_client.h"
#include "storage/blob/s3/s3_credentials.h"

namespace berth::storage::s3 {

// ---- Addressing ----

// Where requests for one bucket go, from S3Config::endpoint, bucket and path_style.
struct S3Endpoint {
  bool tls = false;
  std::string connect_host;  // DNS name or IP literal (no brackets) to connect to
  std::string port;          // numeric
  std::string host_header;   // Host: [bucket.]host[:port], port left out when the default
  std::string url_base;      // "http://" + host_header, for presigned URLs
  std::string path_prefix;   // "/bucket" (path style) or "" (virtual host)
  std::string display;       // the configured endpoint, for messages
  std::string bucket;
};

// kInvalidArgument, saying what is wrong, for anything but http(s)://host[:port][/] or
// a bucket name S3 would refuse; virtual-host addressing also needs a DNS name.
Result<S3Endpoint> ResolveEndpoint(const S3Config& config);

// Query parameters, unencoded; an empty value is sent as a bare name ("?uploads").
using QueryParams = std::vector<std::pair<std::string, std::string>>;
// "/bucket/enc(key)" (path style) or "/enc(key)"; the bucket's own path for key "".
// Each byte but unreserved characters and '/' is percent-encoded, once.
std::string RequestPath(const S3Endpoint& endpoint, std::string_view key);
// "a=1&b&c=x%2Fy", in the given order.
std::string EncodeQuery(const QueryParams& query);

// Headers as sent, in order.
using Headers = std::vector<std::pair<std::string, std::string>>;

struct SignedRequest {
  std::string target;  // path, plus '?' and the query when there is one
  Headers headers;     // Host, X-Amz-Date, x-amz-content-sha256, [x-amz-security-token],
                       // the given ones, Authorization
};

// Signs an S3 request (SigV4, S3 URI rule) at `now_seconds`. `payload_sha256` is the
// body's hex SHA-256, auth::kEmptyPayloadSha256 or auth::kUnsignedPayload.
Result<SignedRequest> SignS3Request(const S3Endpoint& endpoint, const S3Credentials& credentials,
                                    std::string_view region, std::string_view method,
                                    std::string_view key, const QueryParams& query, Headers headers,
                                    std::string_view payload_sha256, int64_t now_seconds);

// A presigned URL for `method` on `key` (query-string SigV4, UNSIGNED-PAYLOAD, only the
// host header signed). kInvalidArgument unless 1 <= expires_seconds <= 604800.
Result<std::string> PresignS3Url(const S3Endpoint& endpoint, const S3Credentials& credentials,
                                 std::string_view region, std::string_view method,
                                 std::string_view key, int64_t expires_seconds,
                                 int64_t now_seconds);

// "bytes=first-last" or "bytes=first-"; nullopt for the whole object (offset 0, no
// length). kInvalidArgument for a zero length.
Result<std::optional<std::string>> RangeHeader(const ByteRange& range);

// ---- XML ----

namespace xml {

// One element: its local name (a namespace prefix is dropped), its text (entities
// decoded, CDATA included, surrounding whitespace kept), and its child elements.
// Attributes are not kept: S3 responses carry nothing in them.
struct Element {
  std::string name;
  std::string text;
  std::vector<Element> children;

  const Element* Child(std::string_view child_name) const;
  // The text of the first child named so, "" when there is none.
  std::string_view ChildText(std::string_view child_name) const;
};

// Parses a document into its root element. kCorruption, with the byte offset, for
// malformed XML or elements nested deeper than 64.
Result<Element> Parse(std::string_view document);
// Escapes & < > " ' for element text.
std::string Escape(std::string_view text);

}  // namespace xml

// ---- Responses ----

// An S3 error: the HTTP status and the <Error> body's Code and Message ("" when the
// response had no body, as HEAD responses never do).
struct S3Error {
  int http_status = 0;
  std::string code;
  std::string message;
  std::string request_id;
};

// The <Error> document in `body`, nullopt when `body` is not one.
std::optional<S3Error> ParseErrorBody(int http_status, std::string_view body);

// Keys come back relative: `strip_prefix` (S3Config::prefix) is removed from keys and
// common prefixes; percent-decoded when the response says EncodingType url.
Result<ListObjectsPage> ParseListObjectsV2(std::string_view body, std::string_view strip_prefix);
Result<ListPartsPage> ParseListParts(std::string_view body);
Result<ListMultipartUploadsPage> ParseListMultipartUploads(std::string_view body,
                                                           std::string_view strip_prefix);
// The UploadId of an InitiateMultipartUploadResult.
Result<std::string> ParseInitiateMultipartUpload(std::string_view body);
// The ETag of a CompleteMultipartUploadResult, CopyObjectResult or CopyPartResult.
Result<std::string> ParseResultETag(std::string_view body, std::string_view root);
Result<std::vector<DeleteFailure>> ParseDeleteResult(std::string_view body,
                                                     std::string_view strip_prefix);

std::string CompleteMultipartUploadBody(std::span<const CompletedPart> parts);
// Quiet mode: the response lists only the failures.
std::string DeleteObjectsBody(std::span<const std::string> full_keys);

// ---- Errors and retries ----

// What a failed request was, for messages.
struct OpContext {
  std::string_view op;  // "PutObject"
  std::string_view endpoint;
  std::string_view bucket;
  std::string_view key;  // full key, "" for bucket operations
  std::string_view upload_id;
  std::string_view access_key_id;
};

// Retrying may help: 5xx but 501, 429, and the codes S3 documents as transient
// (SlowDown, RequestTimeout, InternalError, ServiceUnavailable, ...).
bool IsRetryable(const S3Error& error);
// The Status for an S3 error (see the table in s3_client.h). `attempts` > 1 is noted.
Status ErrorStatus(const S3Error& error, const OpContext& ctx, int attempts);
// The Status for a failure to talk to the store at all ("connect: Connection refused").
Status UnreachableStatus(std::string_view what, const OpContext& ctx, int attempts);

// The back-off before retry `retry` (1-based): unit_random ∈ [0, 1) times
// min(cap, base * 2^(retry-1)).
std::chrono::milliseconds RetryDelay(int retry, std::chrono::milliseconds base,
                                     std::chrono::milliseconds cap, double unit_random);

}  // namespace berth::storage::s3
