// Platforms (os/architecture/variant): parsing, normalization, matching an index
// entry, and reading an image's platform from its config blob.
//
// Normalization follows containerd: x86_64 → amd64, aarch64 → arm64, i386 → 386,
// "8" → "v8"; for matching, arm64 without a variant equals arm64/v8, arm without a
// variant equals arm/v7 and amd64 without one equals amd64/v1.
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "oci/manifest.h"

namespace berth::client {

// Parses "os/arch[/variant]" (normalized). kInvalidArgument on a malformed value.
Result<oci::Platform> ParsePlatform(std::string_view s);
// "linux/arm64/v8".
std::string PlatformString(const oci::Platform& p);
// The machine berth runs on (linux/amd64, linux/arm64, …).
oci::Platform HostPlatform();
oci::Platform NormalizePlatform(oci::Platform p);

// True when `have` (an index entry or config) satisfies `want`. An empty variant in
// `want` accepts any variant.
bool PlatformMatches(const oci::Platform& want, const oci::Platform& have);

// Index of the entry of `manifests` that matches `want` best (an exact variant beats
// an implied one). kNotFound listing the platforms the index has.
Result<size_t> SelectPlatform(const std::vector<oci::Descriptor>& manifests,
                              const oci::Platform& want);

// os, architecture, variant, os.version, os.features of an image config blob.
Result<oci::Platform> PlatformFromConfig(std::string_view config_json);

// Docker's list of valid os/arch pairs (used by `manifest annotate`).
bool IsValidOsArch(std::string_view os, std::string_view arch);

}  // namespace berth::client
