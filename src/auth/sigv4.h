// AWS Signature Version 4 (AWS4-HMAC-SHA256, Authorization header form): signing
// for Berth's own client and verification for the ECR JSON API.
//
// Canonicalization follows the AWS SigV4 documentation as botocore (the aws CLI and
// boto3) implements it for every service but S3 (UriMode::kS3 selects S3's URI rule):
//   - URI: the raw path as sent, with "." / ".." segments and empty segments removed,
//     then percent-encoded again (so "%20" on the wire signs as "%2520"; "/" and
//     unreserved characters stay as they are);
//   - query: each name and value percent-decoded then RFC 3986-encoded, pairs sorted
//     by name then value, "name=" for a bare name;
//   - headers: names lower-cased, values trimmed with inner whitespace runs collapsed,
//     repeated headers joined by ',' in the order received.
// Known-answer tests: the AWS SigV4 test suite and requests captured from botocore
// (sigv4_test.cc, testdata/capture_botocore_sigv4.py).
//
// Verification reports a SigV4Error alongside the Status so the ECR layer can pick
// the exception name; every Status is kUnauthorized with a message for people
// (kInternal when the credential lookup itself fails).
//
// All functions are pure apart from the injected Clock and CredentialLookup:
// thread-safe if the lookup is.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/auth_result.h"
#include "auth/caller.h"
#include "base/clock.h"
#include "base/status.h"

namespace berth::auth {

inline constexpr std::string_view kSigV4Algorithm = "AWS4-HMAC-SHA256";
// x-amz-content-sha256 value for a payload left out of the signature.
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// Hex SHA-256 of the empty string: the payload hash of a request without a body.
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Header lines as received, in order, names in any case. Views: the caller keeps the
// strings alive for the duration of the call.
using HeaderList = std::vector<std::pair<std::string_view, std::string_view>>;

// ---- Canonicalization (exposed for tests and for the client) ----

// How the path becomes the CanonicalURI.
enum class UriMode : uint8_t {
  // Every service but S3 (botocore's SigV4Auth): "." / ".." and empty segments
  // removed, then percent-encoded again.
  kNormalized = 0,
  // S3 (botocore's S3SigV4Auth): the path URI-encoded exactly once and nothing removed,
  // because an object key is opaque ("a//b/../c" is a key of its own). Escapes in the
  // raw path are decoded first, so an already-encoded path and its unencoded form sign
  // alike ("/test%24file.text" and "/test$file.text" both sign as "/test%24file.text").
  kS3,
};

// RFC 3986 percent-encoding: every byte except A-Z a-z 0-9 - . _ ~ becomes %XX
// (upper-case hex); '/' is kept when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);
// The CanonicalURI of a raw request path (see the header comment). "" becomes "/".
std::string CanonicalUri(std::string_view raw_path);
std::string CanonicalUri(std::string_view raw_path, UriMode mode);
// The CanonicalQueryString of a raw query string (without the '?').
std::string CanonicalQueryString(std::string_view raw_query);
// Trimmed, inner whitespace runs collapsed to one space: the canonical form of one
// header value (case is kept).
std::string CanonicalHeaderValue(std::string_view value);

// "20150830T123600Z" for a time in seconds since the epoch.
std::string FormatAmzDate(int64_t epoch_seconds);
// Parses "YYYYMMDDTHHMMSSZ" (the x-amz-date format).
Result<int64_t> ParseAmzDate(std::string_view s);
// Parses an RFC 7231 IMF-fixdate such as "Sun, 30 Aug 2015 12:36:00 GMT" (Date header).
Result<int64_t> ParseHttpDate(std::string_view s);

// kSecret = "AWS4" + secret; kDate = HMAC(kSecret, date); ... HMAC(kService, "aws4_request").
std::string DeriveSigningKey(std::string_view secret_access_key, std::string_view date,
                             std::string_view region, std::string_view service);

// ---- Signing ----

struct SigningRequest {
  std::string_view method;  // "POST"
  std::string_view path;    // raw path as it will be sent: "/"
  std::string_view query;   // raw query string as it will be sent, without '?'
  // Every header to sign; must include host. Authorization, x-amz-date, and the
  // headers botocore never signs (user-agent, connection, expect, ...) are skipped.
  HeaderList headers;
  // Hex SHA-256 of the body (kEmptyPayloadSha256 for none), or kUnsignedPayload.
  std::string_view payload_sha256;
  std::string_view access_key_id;
  std::string_view secret_access_key;
  std::string_view region;   // "us-east-1"
  std::string_view service;  // "ecr"
  int64_t time_seconds = 0;  // signing time, seconds since the epoch
  // kS3 for S3 and S3-compatible stores. Default: kNormalized (every other service).
  UriMode uri_mode = UriMode::kNormalized;
};

struct SigningResult {
  std::string authorization;      // the Authorization header value
  std::string amz_date;           // the X-Amz-Date header value to send with it
  std::string signed_headers;     // "content-type;host;x-amz-date;x-amz-target"
  std::string signature;          // 64 hex
  std::string canonical_request;  // for debugging a mismatch
  std::string string_to_sign;
};

// kInvalidArgument when there is no host header or a field is empty.
Result<SigningResult> SignRequest(const SigningRequest& req);

// ---- Presigning (query-string authentication) ----

// A request whose authentication travels in its query string (X-Amz-Algorithm,
// X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature),
// so that whoever holds the URL can send it without credentials until it expires.
struct PresigningRequest {
  std::string_view method;  // "GET"
  std::string_view path;    // raw path as it will be sent
  std::string_view query;   // raw query the URL already carries (without '?'), or ""
  // Headers the holder of the URL must send, signed; must include host (usually the
  // only one, so that any client can use the URL).
  HeaderList headers;
  // The payload hash to sign. Default: kUnsignedPayload, what S3 expects in a URL.
  std::string_view payload_sha256 = kUnsignedPayload;
  std::string_view access_key_id;
  std::string_view secret_access_key;
  // Temporary credentials: sent (and signed) as X-Amz-Security-Token. Default: none.
  std::string_view session_token;
  std::string_view region;
  std::string_view service;  // "s3"
  int64_t time_seconds = 0;  // signing time, seconds since the epoch
  // Lifetime of the URL: 1 to 604800 (7 days, SigV4's limit).
  int64_t expires_seconds = 0;
  UriMode uri_mode = UriMode::kNormalized;
};

struct PresigningResult {
  // The query to send after '?': the given query, then the X-Amz-* parameters
  // (percent-encoded), X-Amz-Signature last.
  std::string query;
  std::string signature;          // 64 hex
  std::string canonical_request;  // for debugging a mismatch
  std::string string_to_sign;
};

// kInvalidArgument when there is no host header, a field is empty, or expires_seconds
// is out of range.
Result<PresigningResult> Presign(const PresigningRequest& req);

// ---- Verification ----

// Why a request was refused. The ECR exception each maps to is noted.
enum class SigV4Error : uint8_t {
  kNone = 0,
  // No Authorization header: MissingAuthenticationTokenException.
  kMissingAuthentication,
  // Authorization header or its date header unusable (not AWS4-HMAC-SHA256, missing
  // Credential/SignedHeaders/Signature, bad credential scope syntax, no or unparsable
  // X-Amz-Date/Date, repeated Authorization): IncompleteSignatureException.
  kMalformed,
  // host, the date header in use, or a header of SigV4Options::signed_when_present
  // the request carries is not among SignedHeaders, or a signed header is absent
  // from the request: IncompleteSignatureException.
  kHeaderNotSigned,
  // Credential scope date differs from the request's date: InvalidSignatureException.
  kScopeDateMismatch,
  // Credential scope names another service than expected: InvalidSignatureException.
  kWrongService,
  // Credential scope names a region other than the configured one: InvalidSignatureException.
  kWrongRegion,
  // Request time more than max_skew_seconds from now, either way ("Signature
  // expired: ..." / "Signature not yet current: ..."): InvalidSignatureException.
  kRequestTimeSkewed,
  // Access key id unknown: UnrecognizedClientException.
  kUnknownAccessKey,
  // x-amz-content-sha256 does not match the body, or is UNSIGNED-PAYLOAD where that
  // is not allowed: InvalidSignatureException.
  kPayloadHashMismatch,
  // Signature does not match: InvalidSignatureException.
  kSignatureMismatch,
  // The credential lookup failed (storage error): ServerException.
  kInternal,
};

// Stable snake_case name for logs and tests, e.g. "signature_mismatch".
std::string_view SigV4ErrorName(SigV4Error e);

// A parsed Authorization header.
struct SigV4Authorization {
  std::string access_key_id;
  std::string date;  // YYYYMMDD from the credential scope
  std::string region;
  std::string service;
  std::vector<std::string> signed_headers;  // as listed (lower-case)
  std::string signed_headers_text;          // the raw "a;b;c"
  std::string signature;                    // 64 lower-case hex
};
AuthResult<SigV4Authorization, SigV4Error> ParseAuthorizationHeader(std::string_view value);

struct SigV4Request {
  std::string_view method;
  std::string_view path;   // raw, as sent (the request target before '?')
  std::string_view query;  // raw, as sent (after '?'), "" when none
  HeaderList headers;      // every header line received, in order
  // Hex SHA-256 of the body as received. nullopt: the body was not hashed (a streamed
  // body); the request must then carry x-amz-content-sha256, which is signed as given
  // and which the caller must check against the body itself.
  std::optional<std::string> payload_sha256;
};

// What the lookup returns for an access key id: the secret to check the signature
// with and the identity to attribute the request to.
struct SigningCredential {
  std::string secret_access_key;
  Caller caller;
};
// NotFound for an unknown key (→ kUnknownAccessKey); any other error → kInternal.
using CredentialLookup = std::function<Result<SigningCredential>(std::string_view access_key_id)>;

struct SigV4Options {
  // Service the credential scope must name. Default: "ecr".
  std::string service = "ecr";
  // Region the credential scope must name; empty accepts any. Default: empty.
  std::string region;
  // Largest accepted difference between the request's date and now. Default: 900 (15 min).
  int64_t max_skew_seconds = 15 * 60;
  // Accept x-amz-content-sha256: UNSIGNED-PAYLOAD. Default: false.
  bool allow_unsigned_payload = false;
  // Headers that must be signed whenever the request carries them (lower-case), on top
  // of host and the date header: those that choose what the request does (ECR's
  // x-amz-target and content-type), so that a captured signature cannot be replayed
  // as another operation. Default: none.
  std::vector<std::string> signed_when_present;
};

struct SigV4Verified {
  Caller caller;       // from the lookup, with authenticated = true and access_key_id set
  std::string region;  // from the credential scope
  int64_t request_time_seconds = 0;
};

AuthResult<SigV4Verified, SigV4Error> VerifySigV4(const SigV4Request& req,
                                                  const CredentialLookup& lookup,
                                                  const Clock& clock,
                                                  const SigV4Options& options = {});

}  // namespace berth::auth
