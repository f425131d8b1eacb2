// Manifest and blob media types Berth understands.
#pragma once

#include <string_view>

namespace berth::oci {

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerSchema1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
inline constexpr std::string_view kOciEmptyJson = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";

// True for the two index types (OCI index, Docker manifest list).
constexpr bool IsIndexMediaType(std::string_view mt) {
  return mt == kOciIndex || mt == kDockerManifestList;
}
// True for the four manifest media types Berth stores.
constexpr bool IsManifestMediaType(std::string_view mt) {
  return mt == kOciManifest || mt == kOciIndex || mt == kDockerManifest ||
         mt == kDockerManifestList;
}

}  // namespace berth::oci
