// Reproducible single-layer images from a directory (`berth pack`).
//
// The layer is a tar of DIR with entries sorted by path, every mtime set to
// `mtime` (SOURCE_DATE_EPOCH, default 0), uid/gid 0 and no user/group names, file
// modes kept; it is gzip-compressed without a timestamp or name. The config's
// `created` is the same fixed time. Hence the same directory content and flags
// always give the same layer, config and manifest digests.
// Thread-compatible.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "client/transport.h"
#include "oci/manifest.h"

namespace berth::client {

struct PackOptions {
  std::filesystem::path dir;
  oci::Platform platform;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  // K=V entries; PATH defaults to the usual system path when not given.
  std::vector<std::string> env;
  std::string workdir;
  std::string user;
  std::map<std::string, std::string> labels;
  // Seconds since the epoch for every mtime and `created`. Default: 0.
  int64_t mtime = 0;
  // "oci" (default) or "docker" media types.
  std::string format = "oci";
};

struct PackedImage {
  ManifestData manifest;
  std::string config;
  oci::Digest config_digest;
  std::filesystem::path config_path;
  std::filesystem::path layer_path;
  oci::Digest layer_digest;
  uint64_t layer_size = 0;
  oci::Digest diff_id;
};

// Builds the image into files under `work_dir`. kInvalidArgument for a missing DIR,
// an unreadable file, or a malformed --env.
Result<PackedImage> PackDirectory(const PackOptions& options, const std::filesystem::path& work_dir);

// A source serving a packed image, to be written with CopyImage.
std::unique_ptr<ImageSource> NewPackedImageSource(PackedImage image);

}  // namespace berth::client
