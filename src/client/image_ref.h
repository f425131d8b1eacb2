// Image names and transports as users type them.
//
//   ImageName      [HOST[:PORT]/]PATH[:TAG][@DIGEST], docker's grammar: the first path
//                  component is a registry host when it contains '.' or ':' or is
//                  "localhost"; otherwise the host is docker.io and single-component
//                  paths get "library/".
//   ImageLocation  docker://NAME | oci:DIR[:TAG] | docker-archive:FILE[:NAME:TAG]
//                  (skopeo's transports; the path ends at the first ':').
//
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "oci/digest.h"

namespace berth::client {

inline constexpr std::string_view kDockerHub = "docker.io";

struct ImageName {
  std::string registry;    // "docker.io", "127.0.0.1:5000"
  std::string repository;  // "library/busybox"
  std::string tag;         // may be empty when a digest is given
  std::optional<oci::Digest> digest;

  // registry/repository
  std::string Name() const { return registry + "/" + repository; }
  // registry/repository[:tag][@digest] (docker's fully qualified form).
  std::string String() const;
  // The manifest reference for /v2: the digest when present, else the tag.
  std::string Reference() const { return digest ? digest->str() : tag; }
  // Host to talk to: "registry-1.docker.io" for Docker Hub, else `registry`.
  std::string ApiHost() const;
};

// Parses a docker image name. A missing tag becomes `default_tag` (pass "" to keep
// it empty). Errors: kInvalidArgument naming the input and what is wrong
// (upper case, bad tag, bad digest, empty).
Result<ImageName> ParseImageName(std::string_view s, std::string_view default_tag = "latest");

// "HOST" or "HOST/REPO" as given to `berth tags`/`catalog`: splits a registry host from
// an optional repository without docker.io defaulting when the first part is a host.
Result<ImageName> ParseRepositoryName(std::string_view s);

enum class Transport { kDocker, kOciLayout, kDockerArchive };

struct ImageLocation {
  Transport transport = Transport::kDocker;
  ImageName name;    // kDocker; for kDockerArchive the optional name inside the archive
  bool has_name = false;
  std::string path;  // kOciLayout directory / kDockerArchive file
  std::string tag;   // kOciLayout: org.opencontainers.image.ref.name (may be empty)

  std::string String() const;
};

// Parses "docker://…", "oci:…", "docker-archive:…". A bare name without a transport
// is taken as docker:// (the registry) when `bare_is_docker`, else an error.
Result<ImageLocation> ParseImageLocation(std::string_view s, bool bare_is_docker = true);

// Docker's file-safe form of a reference, used for manifest-list directories:
// ':' → '-', '/' → '_'.
std::string FileSafeName(std::string_view ref);

}  // namespace berth::client
