// Local manifest lists for `berth manifest create/annotate/inspect/push/rm`, stored
// exactly like the docker CLI stores them, so that docker and berth see the same
// lists: $DOCKER_CONFIG/manifests/<list>/<image>, one directory per list and one
// JSON file per image, names made file-safe (':' → '-', '/' → '_'). Each file is
// docker's ImageManifest: {"Ref", "Descriptor" (mediaType, digest, size, platform),
// "Raw" (base64 manifest bytes), "SchemaV2Manifest" | "OCIManifest"}. Berth adds an
// optional "BerthListFormat" ("oci" | "docker") and "BerthCopyChild" (created with
// --copy-children), which docker ignores.
//
// Thread-compatible.
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "base/status.h"
#include "client/image_ref.h"
#include "oci/manifest.h"

namespace berth::client {

struct ListEntry {
  std::string ref;             // the image as docker names it: "host/repo:tag"
  oci::Descriptor descriptor;  // media type, digest, size and platform of the image
  std::string raw;             // manifest bytes
  std::string format;          // list format chosen at create ("oci", "docker", "")
  // From another repository: copied (or mounted) into the list's repository at push.
  bool copy_child = false;
};

// Docker's JSON object for an entry (what docker writes into the file).
boost::json::object EntryToJson(const ListEntry& e);
Result<ListEntry> EntryFromJson(const boost::json::object& o, std::string_view what);

// The list document (docker's bytes: 3-space indent, no trailing newline). Its media
// type: `format` "oci" → OCI index, "docker" → Docker manifest list, "" → OCI index
// when the first entry (in file-name order) is an OCI manifest, else Docker manifest
// list (docker's rule).
std::string BuildListJson(const std::vector<ListEntry>& entries, std::string_view format,
                          std::string* media_type);

class ManifestListStore {
 public:
  // `root` is $DOCKER_CONFIG/manifests.
  explicit ManifestListStore(std::filesystem::path root) : root_(std::move(root)) {}

  std::filesystem::path ListDir(const ImageName& list) const;
  bool Exists(const ImageName& list) const;
  // Entries in file-name order (docker's order). kNotFound "No such manifest: LIST".
  Result<std::vector<ListEntry>> Load(const ImageName& list) const;
  Status Put(const ImageName& list, const ImageName& image, const ListEntry& entry);
  // kNotFound "No such manifest: LIST".
  Status Remove(const ImageName& list);
  // The file of one image in a list (kNotFound when absent).
  Result<std::filesystem::path> EntryFile(const ImageName& list, const ImageName& image) const;

 private:
  std::filesystem::path root_;
};

}  // namespace berth::client
