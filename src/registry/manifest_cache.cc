#include "registry/manifest_cache.h"

#include <functional>

namespace berth::registry {

size_t HashKey(std::string_view repository, std::string_view ref) {
  size_t h = std::hash<std::string_view>()(repository);
  // Boost's hash_combine.
  return h ^ (std::hash<std::string_view>()(ref) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

size_t CacheWeight(const storage::ManifestRecord& r) {
  size_t digests = (r.blob_refs.size() + r.child_refs.size() + 2) *
                   (sizeof(oci::Digest) + r.digest.str().size());
  return r.repository.size() + r.bytes.size() + r.media_type.size() + r.artifact_type.size() +
         r.annotations_json.size() + digests + sizeof(r);
}

size_t CacheWeight(const std::vector<std::string>& tags) {
  size_t n = sizeof(tags);
  for (const auto& t : tags) n += sizeof(t) + t.size();
  return n;
}

}  // namespace berth::registry
