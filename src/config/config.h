// Typed configuration for `berth serve`. Precedence: defaults < YAML file (--config)
// < BERTH_* environment variables < command-line flags. Validated at startup.
// Reference: docs/configuration.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/status.h"

namespace berth::config {

struct HttpConfig {
  // Close a keep-alive connection idle this long. Default: 60.
  int idle_timeout_seconds = 60;
  // Abort a request whose body stalls this long between bytes. Default: 60.
  int read_timeout_seconds = 60;
  // A new connection's first request headers must be complete this long after it was
  // accepted (a client that sends nothing, or a byte at a time, is cut). Default: 20.
  int header_timeout_seconds = 20;
  // Largest request header block accepted (431 above). Default: 16384.
  uint32_t max_header_bytes = 16 * 1024;
  // I/O threads; 0 = one per core. Default: 0.
  int io_threads = 0;
  // Threads for blocking storage work (SQLite, fsync). Many of them mostly wait on
  // fsync; more waiting writers let more PUTs share one group commit. Default: 16.
  int blocking_threads = 16;
  // Threads for short metadata reads on the pull path (a manifest the cache does not
  // hold); 0 = one per core. Few threads that stay busy cost far less per read than
  // waking one of the many blocking threads (see http/blocking.h). Default: 0.
  int read_threads = 0;
  // Threads for work that waits on the blob store (uploads, blob reads); 0 = share
  // blocking_threads.
  int blob_threads = 16;
};

struct TlsConfig {
  // PEM certificate chain and private key; both empty = plain HTTP. Default: empty.
  std::string cert;
  std::string key;
  bool enabled() const { return !cert.empty(); }
};

struct UploadConfig {
  // Upload sessions untouched this long are removed with their bytes. Default: 86400 (24 h).
  int64_t expiry_seconds = 24 * 3600;
  // How often the sweeper runs. Default: 600.
  int64_t sweep_interval_seconds = 600;
  // Write upload bodies with O_DIRECT (whole 1 MiB blocks straight to disk, skipping
  // the page cache) where the file system supports it. Default: true.
  bool direct_io = true;
  // How long an upload session stays claimed by a request that stopped sending (a
  // killed node, a dead client) before a request on any node may continue it.
  // Default: 30.
  int64_t lease_seconds = 30;
};

struct LimitsConfig {
  // Largest manifest accepted (413 above). Default: 4 MiB, as on ECR.
  uint64_t max_manifest_bytes = 4 * 1024 * 1024;
};

struct CacheConfig {
  // Memory for manifests kept for pulls by tag and digest, answered without a
  // metadata-store lookup; 0 = no cache. Default: 33554432 (32 MiB).
  uint64_t manifest_bytes = 32 * 1024 * 1024;
};

struct EcrConfig {
  // The account (12 digits) that owns repositories of callers without one, and that
  // registryId, ARNs and messages name. Default: "000000000000".
  std::string account_id = "000000000000";
  // The region in repository ARNs. Default: "us-east-1".
  std::string region = "us-east-1";
  // How long GetDownloadUrlForLayer's URLs stay valid. Default: 3600.
  int64_t download_url_ttl_seconds = 3600;
  // Secret signing those URLs; empty = a random one per process (set the same value
  // on every node behind one load balancer). Default: empty.
  std::string download_url_secret;
  // How often recorded pull times (lastRecordedPullTime) are written. Default: 60.
  int64_t pull_time_flush_seconds = 60;
};

struct LogConfig {
  // trace, debug, info, warn, error. Default: info.
  std::string level = "info";
  // Access log on stdout: true = one line per request. Default: true.
  bool access_log = true;
};

struct AuthConfig {
  // Require credentials (registry tokens on /v2, SigV4 on the ECR API). `--no-auth`
  // turns it off for throwaway local use. Default: true.
  bool enabled = true;
  // Lifetime of the registry tokens GetAuthorizationToken mints. Default: 43200 (12 h).
  int64_t token_ttl_seconds = 12 * 3600;
};

// An S3-compatible bucket for blob bytes (Ceph radosgw, MinIO, AWS S3). Credentials come
// from the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or the shared
// credentials file with AWS_PROFILE), never from this file.
struct S3StorageConfig {
  // "http://host:port" or "https://host". Required with type s3.
  std::string endpoint;
  // Required with type s3.
  std::string bucket;
  // Region of the SigV4 credential scope. Default: us-east-1.
  std::string region = "us-east-1";
  // Prefix of every key, e.g. "registry/". Default: "" (the bucket's root).
  std::string prefix;
  // true: http://host/bucket/key; false: http://bucket.host/key. Default: true.
  bool path_style = true;
  // Create the bucket at startup when it does not exist. Default: false.
  bool create_bucket = false;
  // Answer blob GETs with 307 to a presigned URL of the bucket instead of streaming the
  // bytes through the node (clients then need to reach the endpoint). Default: false.
  bool redirect = false;
  // Bytes of each multipart part, buffered per upload in flight (5 MiB..5 GiB).
  // Default: 8388608 (8 MiB).
  uint64_t part_size = 8 * 1024 * 1024;
};

struct BlobStorageConfig {
  // filesystem (under data_dir) or s3. Default: filesystem.
  std::string type = "filesystem";
  S3StorageConfig s3;
};

struct PostgresStorageConfig {
  // libpq URL, e.g. "postgresql://berth@db:5432/berth". No password here: libpq reads
  // PGPASSWORD or ~/.pgpass. Required with type postgres.
  std::string url;
  // Most connections this node opens. Default: 16.
  int max_connections = 16;
};

struct MetadataStorageConfig {
  // sqlite (data_dir/meta.db) or postgres. Default: sqlite.
  std::string type = "sqlite";
  PostgresStorageConfig postgres;
};

// Where the registry keeps its data. The defaults need nothing but data_dir; several
// nodes behind one load balancer share an s3 bucket and a postgres database.
struct StorageConfig {
  BlobStorageConfig blobs;
  MetadataStorageConfig metadata;
  bool shared() const { return blobs.type == "s3" || metadata.type == "postgres"; }
};

struct Config {
  // Address to listen on. Default: 0.0.0.0:5000.
  std::string listen = "0.0.0.0:5000";
  // Data directory (blobs, uploads, meta.db). Default: ./berth-data.
  std::string data_dir = "./berth-data";
  // Create a repository on first push instead of refusing with NAME_UNKNOWN. Default: false.
  bool create_on_push = false;
  // Where clients reach the registry ("https://registry.example.com"): repositoryUri,
  // proxyEndpoint and download URLs derive from it. Default: empty = derived from the
  // listen address (http://127.0.0.1:PORT when listening on 0.0.0.0).
  std::string public_url;
  HttpConfig http;
  TlsConfig tls;
  AuthConfig auth;
  UploadConfig uploads;
  LimitsConfig limits;
  CacheConfig cache;
  EcrConfig ecr;
  LogConfig log;
  StorageConfig storage;
};

// Overlays a YAML file onto `cfg`. Unknown keys are errors (a typo must not pass silently).
Status LoadYamlFile(const std::string& path, Config& cfg);
// Overlays BERTH_* variables from `env` (name → value), e.g. BERTH_LISTEN,
// BERTH_DATA_DIR, BERTH_CREATE_ON_PUSH, BERTH_HTTP_IDLE_TIMEOUT_SECONDS, BERTH_TLS_CERT.
Status ApplyEnvironment(const std::map<std::string, std::string>& env, Config& cfg);
// The process environment as a map (BERTH_* only).
std::map<std::string, std::string> BerthEnvironment();
// Checks ranges and combinations; the message says which key is wrong.
Status Validate(const Config& cfg);
// The public URL: `public_url` without a trailing '/', or derived from the listen
// host, the bound port and whether TLS is on.
std::string PublicUrl(const Config& cfg, uint16_t bound_port);

}  // namespace berth::config
