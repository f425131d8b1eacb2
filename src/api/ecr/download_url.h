// Presigned layer downloads (GetDownloadUrlForLayer). Berth serves the blob itself at
// GET /ecr-download/<token>: the token names the repository and the digest, carries
// an expiry, and is signed with HMAC-SHA256 under a registry secret, so any node with
// the same secret can serve it without shared state; the signature is the
// authorization. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "oci/digest.h"

namespace berth::api::ecr {

inline constexpr std::string_view kDownloadPathPrefix = "/ecr-download/";

struct DownloadGrant {
  std::string repository;
  oci::Digest digest;
  int64_t expires_at_s = 0;  // epoch seconds
};

// URL-safe: base64url(payload) "." base64url(HMAC-SHA256(key, payload)).
std::string SignDownloadToken(const DownloadGrant& grant, std::string_view key);
// kDenied when the token is malformed, not signed with `key`, or expired at `now_s`.
Result<DownloadGrant> VerifyDownloadToken(std::string_view token, std::string_view key,
                                          int64_t now_s);

}  // namespace berth::api::ecr
