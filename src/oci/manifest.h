// Manifest parsing and validation. The bytes are never rewritten: parsing is only
// for validation and for indexing references. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "oci/digest.h"

namespace berth::oci {

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string os_version;
  std::vector<std::string> os_features;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::string artifact_type;                        // optional
  std::optional<Platform> platform;                 // index entries only
  std::map<std::string, std::string> annotations;   // optional
};

enum class ManifestKind : uint8_t { kImage, kIndex };

struct ParsedManifest {
  ManifestKind kind = ManifestKind::kImage;
  // The effective media type: the manifest's "mediaType" field, else the Content-Type
  // it was sent with.
  std::string media_type;
  // Image manifests: config + layers. The config is included in blobs() below.
  std::optional<Descriptor> config;
  std::vector<Descriptor> layers;
  // Indexes: child manifests.
  std::vector<Descriptor> manifests;
  std::optional<Descriptor> subject;
  // artifactType field, or for images without one, config.mediaType (OCI rule for referrers).
  std::string artifact_type;
  std::map<std::string, std::string> annotations;

  // Every blob the manifest references (config first, then layers); empty for indexes.
  std::vector<Descriptor> blobs() const;
};

// Validates and parses `bytes` sent with `content_type` (may be empty or
// "application/json"-ish when the client did not set one).
// Checks: valid JSON object; schemaVersion == 2; the media type is one of the four
// supported types (schema 1 → kUnsupported? no: kManifestInvalid with a message that
// schema 1 is not supported); "mediaType" field (when present) equals the Content-Type
// (when that is a manifest type); descriptors have a mediaType string, a valid digest
// and a non-negative integer size; images have a config; indexes have a manifests array.
// All errors are kManifestInvalid with a message naming the offending field.
Result<ParsedManifest> ParseManifest(std::string_view bytes, std::string_view content_type);

}  // namespace berth::oci
