// Image sources and destinations behind the transports berth copies between:
// docker:// (a registry), oci: (an OCI image layout directory) and docker-archive:
// (a `docker save` tarball).
//
// A source serves manifests by digest and blobs as local file ranges (a registry
// source downloads — "spools" — a blob into the cache first, verifying its digest);
// a destination receives blobs from local file ranges, then manifests, then Commit().
// Manifest bytes are passed through unchanged wherever the format stores manifests
// (registry, OCI layout), so digests are preserved; a docker-archive stores only the
// config and uncompressed layers (diff_ids preserved, manifest rebuilt on the way out).
//
// ClientContext carries what every command needs: registry options, the docker
// config (credentials), the cache directory, and one RegistryClient per host.
// Sources and destinations are used by one copy at a time; their blob methods may be
// called from several worker threads at once.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "base/status.h"
#include "client/docker_config.h"
#include "client/image_ref.h"
#include "client/registry_client.h"
#include "oci/manifest.h"

namespace berth::client {

// $XDG_CACHE_HOME/berth, else ~/.cache/berth.
std::filesystem::path DefaultCacheDir();

class ClientContext {
 public:
  // `config` may be nullopt (anonymous access everywhere).
  ClientContext(RegistryOptions options, std::optional<DockerConfig> config,
                std::filesystem::path cache_dir);
  // The shared client for `host`, with the stored credentials for it.
  Result<std::shared_ptr<RegistryClient>> Registry(const std::string& host);
  const RegistryOptions& options() const { return options_; }
  const std::filesystem::path& cache_dir() const { return cache_dir_; }
  // Verified downloads, by digest: cache_dir/blobs/<alg>/<hex>.
  std::filesystem::path SpoolPath(const oci::Digest& d) const;
  std::filesystem::path TempDir() const { return cache_dir_ / "tmp"; }

 private:
  RegistryOptions options_;
  std::optional<DockerConfig> config_;
  std::filesystem::path cache_dir_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<RegistryClient>> clients_;  // guarded by mu_
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual std::string Describe() const = 0;
  // The manifest the location names (by tag, digest, or the only one).
  virtual Result<ManifestData> GetManifest() = 0;
  // A child of an index.
  virtual Result<ManifestData> GetManifestByDigest(const oci::Descriptor& d) = 0;
  // The blob as a local file range; `progress` reports download progress, if any.
  virtual Result<LocalBlob> FetchBlob(const oci::Descriptor& d, const ProgressFn& progress) = 0;
  // A small blob in memory (a config).
  virtual Result<std::string> ReadBlob(const oci::Descriptor& d) = 0;
  // Registry host and repository, for cross-repository mounts; nullopt otherwise.
  virtual std::optional<std::pair<std::string, std::string>> RegistryRepo() const {
    return std::nullopt;
  }
  // Removes temporary files after a successful copy.
  virtual void Cleanup() {}
};

class ImageDestination {
 public:
  virtual ~ImageDestination() = default;
  virtual std::string Describe() const = 0;
  // False for docker-archive, which holds single images only.
  virtual bool SupportsIndex() const { return true; }
  virtual Result<bool> HasBlob(const oci::Descriptor& d) = 0;
  // Makes the blob present without sending it (cross-repository mount); false when
  // not possible.
  virtual Result<bool> TryMount(const oci::Descriptor& d, const ImageSource& src) {
    return false;
  }
  virtual Status PutBlob(const oci::Descriptor& d, const LocalBlob& blob,
                         const ProgressFn& progress) = 0;
  // `top_level`: the manifest the location names (stored under its tag); otherwise a
  // child of an index, stored by digest.
  virtual Status PutManifest(const ManifestData& m, bool top_level) = 0;
  virtual Status Commit() { return Status::Ok(); }
};

Result<std::unique_ptr<ImageSource>> OpenSource(const ImageLocation& loc, ClientContext& ctx);
Result<std::unique_ptr<ImageDestination>> OpenDestination(const ImageLocation& loc,
                                                          ClientContext& ctx);

// The media type of manifest bytes: the given one when it is a manifest type, else
// the document's mediaType, else inferred from its shape.
std::string ManifestMediaType(std::string_view bytes, std::string_view given);

}  // namespace berth::client
