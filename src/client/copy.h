// Copying images between transports (berth copy, manifest push --copy-children,
// pack). Order: blobs (in parallel, skipping those the destination has, mounting
// across repositories of one registry when possible), then child manifests by digest,
// then the top-level manifest under its tag; manifest bytes are never rewritten, so
// digests are preserved. Thread-compatible (one copy at a time per source/destination).
#pragma once

#include <optional>
#include <vector>

#include "base/status.h"
#include "client/progress.h"
#include "client/transport.h"
#include "oci/manifest.h"

namespace berth::client {

struct CopyOptions {
  // Copy every image of an index (and the index). Default: false.
  bool all = false;
  // From an index, copy only this platform's image (tagged at the destination).
  // Default: nullopt → the host platform, unless `all`.
  std::optional<oci::Platform> platform;
  // Blobs copied at once. Default: 4.
  int jobs = 4;
};

struct CopyReport {
  oci::Digest digest;      // of the manifest now under the destination's name
  std::string media_type;
  size_t images = 0;
  size_t blobs_sent = 0;
  size_t blobs_skipped = 0;  // already present
  size_t blobs_mounted = 0;
  uint64_t bytes_sent = 0;
};

Result<CopyReport> CopyImage(ImageSource& src, ImageDestination& dst, const CopyOptions& options,
                             Progress& progress);

// Copies the blobs of `images` (image manifests) and then the manifests themselves by
// digest (not tagged). Used to bring children into a list's repository.
Status CopyChildren(ImageSource& src, ImageDestination& dst,
                    const std::vector<ManifestData>& images, int jobs, Progress& progress,
                    CopyReport* report);

}  // namespace berth::client
