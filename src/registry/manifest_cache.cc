#include "registry/manifest_cache.h"

#include <functional>
#include <utility>

namespace berth::registry {
namespace {

// What an entry costs beyond its strings: the map node, the shared record's control
// block and the record itself, roughly.
constexpr size_t kEntryOverhead = 256;

bool IsOdd(uint64_t epoch) { return (epoch & 1) != 0; }

size_t Weight(std::string_view repository, std::string_view ref, const storage::ManifestRecord& r) {
  size_t digests = (r.blob_refs.size() + r.child_refs.size() + 2) *
                   (sizeof(oci::Digest) + r.digest.str().size());
  return kEntryOverhead + repository.size() + ref.size() + r.repository.size() + r.bytes.size() +
         r.media_type.size() + r.artifact_type.size() + r.annotations_json.size() + digests;
}

}  // namespace

size_t ManifestCache::KeyHash::operator()(const KeyView& k) const {
  size_t h = std::hash<std::string_view>()(k.repository);
  // Boost's hash_combine.
  return h ^ (std::hash<std::string_view>()(k.ref) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

ManifestCache::ManifestCache(size_t max_bytes) : shard_budget_(max_bytes / kShards) {}

ManifestCache::Shard& ManifestCache::ShardOf(const KeyView& key) {
  return shards_[KeyHash()(key) % kShards];
}

std::shared_ptr<const storage::ManifestRecord> ManifestCache::Find(std::string_view repository,
                                                                   std::string_view ref,
                                                                   uint64_t epoch) {
  if (!enabled() || IsOdd(epoch)) return nullptr;
  KeyView key{repository, ref};
  Shard& shard = ShardOf(key);
  std::lock_guard lock(shard.mu);
  // Stale entries are left for Insert to drop: freeing them is not the I/O thread's job.
  if (shard.epoch != epoch) return nullptr;
  auto it = shard.entries.find(key);
  if (it == shard.entries.end()) return nullptr;
  return it->second;
}

void ManifestCache::Insert(std::string_view repository, std::string_view ref,
                           std::shared_ptr<const storage::ManifestRecord> record, uint64_t epoch) {
  if (!enabled() || IsOdd(epoch) || record == nullptr) return;
  size_t weight = Weight(repository, ref, *record);
  if (weight > shard_budget_) return;
  KeyView key{repository, ref};
  Shard& shard = ShardOf(key);
  Map dropped;  // freed after the lock is released
  std::lock_guard lock(shard.mu);
  // Read before a write that has since ended: stale already.
  if (epoch < shard.epoch) return;
  if (epoch > shard.epoch || shard.bytes + weight > shard_budget_) {
    dropped.swap(shard.entries);
    shard.bytes = 0;
    shard.epoch = epoch;
  }
  // Two reads at one epoch return the same record: an existing entry stays.
  auto [it, inserted] =
      shard.entries.try_emplace(Key{std::string(repository), std::string(ref)}, std::move(record));
  if (inserted) shard.bytes += weight;
}

size_t ManifestCache::bytes() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.bytes;
  }
  return n;
}

size_t ManifestCache::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.entries.size();
  }
  return n;
}

}  // namespace berth::registry
