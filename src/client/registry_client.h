// RegistryClient: a typed client for one registry's OCI distribution API (/v2).
//
// It resolves the scheme once (HTTPS; plain HTTP only for --insecure or loopback
// hosts, after a failed TLS handshake, as docker does), answers auth challenges
// (Basic, and Bearer via the token endpoint named by the challenge, one token per
// scope), retries idempotent requests with exponential back-off on transient
// failures (network errors, 5xx, 429), and maps error bodies to Status codes
// (MANIFEST_UNKNOWN → kManifestUnknown, 401 → kUnauthorized, …).
//
// Blob uploads are monolithic up to `chunk_size` and chunked (PATCH with
// Content-Range) above it. With an `upload_state_dir`, the upload URL is remembered
// after every accepted chunk, so a later UploadBlob of the same blob to the same
// repository (after a crash or SIGKILL) asks the registry for the upload's offset
// (GET upload status) and sends only the remaining bytes.
//
// Thread-safe: one client may serve many threads (layers copied in parallel).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "client/auth.h"
#include "client/http.h"
#include "oci/digest.h"
#include "oci/manifest.h"

namespace berth::client {

inline constexpr uint64_t kMiB = 1024 * 1024;

struct RegistryOptions {
  TransportOptions transport;
  // Allow plain HTTP (after HTTPS fails) and skip certificate checks. Default: false;
  // loopback hosts may always fall back to HTTP.
  bool insecure = false;
  // Attempts for an idempotent request or an upload chunk. Default: 5.
  int max_attempts = 5;
  // First back-off delay; doubles per attempt. Default: 200 ms.
  int backoff_ms = 200;
  // Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size.
  // Default: 32 MiB.
  uint64_t chunk_size = 32 * kMiB;
  // Where upload resume state is kept (one small JSON file per blob upload).
  // Default: empty (no resume).
  std::filesystem::path upload_state_dir;
};

// Manifest bytes exactly as served, with their media type and digest.
struct ManifestData {
  std::string bytes;
  std::string media_type;
  oci::Digest digest;
};

// A byte range of a local file that holds a blob (an OCI layout blob, a member of an
// uncompressed tar, or a spooled download).
struct LocalBlob {
  std::filesystem::path path;
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Reports the bytes of one blob done so far (absolute, not a delta).
using ProgressFn = std::function<void(uint64_t done)>;

// All four manifest media types, for Accept.
extern const std::vector<std::string> kAllManifestTypes;

class RegistryClient {
 public:
  // `host` is "HOST[:PORT]", optionally prefixed with http:// or https:// to force
  // the scheme. `creds` may be empty (anonymous).
  RegistryClient(std::string host, RegistryOptions options, std::optional<Credentials> creds);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  const std::string& host() const { return host_; }
  const RegistryOptions& options() const { return options_; }

  // GET /v2/ without credentials: picks the scheme and records the auth challenge.
  // kUnavailable "cannot reach registry HOST: …" when nothing answers.
  Status Ping();
  // Verifies the credentials: after the ping, authenticates as the challenge asks
  // (Basic: GET /v2/ with them; Bearer: a token request). kUnauthorized on refusal.
  // Returns false when the registry asked for no authentication at all.
  Result<bool> VerifyLogin();

  Result<ManifestData> GetManifest(std::string_view repo, std::string_view ref,
                                   const std::vector<std::string>& accept = kAllManifestTypes);
  // HEAD: the descriptor (media type, digest, size), or nullopt when absent.
  Result<std::optional<oci::Descriptor>> HeadManifest(std::string_view repo, std::string_view ref);
  // PUT by tag or digest; returns the digest the registry reports (else computed).
  Result<oci::Digest> PutManifest(std::string_view repo, std::string_view ref,
                                  std::string_view bytes, std::string_view media_type);
  Status DeleteManifest(std::string_view repo, const oci::Digest& digest);

  // HEAD blob: its size, or nullopt when the repository does not have it.
  Result<std::optional<uint64_t>> BlobSize(std::string_view repo, const oci::Digest& digest);
  // Streams a blob to `sink`, verifying size and digest (kDigestInvalid on mismatch).
  Status GetBlob(std::string_view repo, const oci::Descriptor& desc,
                 const std::function<Status(std::string_view)>& sink, const ProgressFn& progress);
  // A small blob (a config) in memory; kTooLarge above `max_bytes`.
  Result<std::string> GetBlobBytes(std::string_view repo, const oci::Descriptor& desc,
                                   uint64_t max_bytes = 16 * kMiB);
  // Cross-repository mount (POST ?mount=&from=). True when mounted (201); false when
  // the registry declined (the upload session it opened is cancelled).
  Result<bool> MountBlob(std::string_view repo, const oci::Digest& digest,
                         std::string_view from_repo);
  // Uploads a blob from a local file range (see the class comment).
  Status UploadBlob(std::string_view repo, const oci::Descriptor& desc, const LocalBlob& blob,
                    const ProgressFn& progress);

  // All tags / repositories, following Link pagination.
  Result<std::vector<std::string>> ListTags(std::string_view repo);
  Result<std::vector<std::string>> Catalog();

 private:
  struct Auth;
  Result<HttpResponse> Send(HttpRequest req, const std::string& scope);
  Result<HttpResponse> SendRetrying(const HttpRequest& req, const std::string& scope);
  Result<std::string> Authorization(const std::string& scope, bool refresh,
                                    const std::vector<Challenge>& challenges);
  Result<std::string> FetchToken(const Challenge& c, const std::string& scope);
  std::string Url(std::string_view path) const;
  std::string Absolute(std::string_view location) const;
  Status UploadChunks(std::string_view repo, const oci::Descriptor& desc, const LocalBlob& blob,
                      const ProgressFn& progress, const std::filesystem::path& state_file);
  Result<std::vector<std::string>> ListPaged(std::string path, const std::string& key,
                                             const std::string& scope);
  void Backoff(int attempt) const;

  std::string host_;
  std::string forced_scheme_;
  RegistryOptions options_;
  std::optional<Credentials> creds_;
  std::unique_ptr<HttpClient> http_;

  mutable std::mutex mu_;
  std::string base_url_;                      // guarded by mu_; "" until Ping
  std::vector<Challenge> challenges_;         // guarded by mu_
  std::map<std::string, std::string> authz_;  // scope → Authorization; guarded by mu_
};

// Maps an error reply to a Status: OCI error code first, then the HTTP status.
Status ErrorFromResponse(const HttpResponse& resp, std::string_view what);

// Scopes of the token protocol.
std::string PullScope(std::string_view repo);
std::string PushScope(std::string_view repo);

}  // namespace berth::client
