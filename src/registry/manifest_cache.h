// ManifestCache: manifests recently read from the metadata store, keyed by
// (repository, tag) and (repository, digest), so that a pull can be answered on the
// I/O thread without a hop to the blocking pool and back for a lookup of a few
// microseconds.
//
// Staleness. The cache never serves what the store would no longer return. Each entry
// carries the store's read epoch (MetadataStore::ReadEpoch) as read BEFORE the
// database read that produced it, and is served only while the epoch still has that
// value. The epoch is odd while a write that may change manifests, tags or
// repositories is in progress and takes a new even value once it has committed, before
// the writer returns. So:
//  - a read made while such a write was in progress has an odd epoch: not cached;
//  - a read that overlapped a write which started after its epoch was read is cached
//    under an epoch that has already moved on: never served;
//  - once a PUT or DELETE has been answered, the epoch has moved past every entry
//    read before it.
// Errors (unknown manifest, unknown repository) are not cached.
//
// Memory. At most `max_bytes` of entries (manifest bytes, keys and bookkeeping), split
// evenly over a few shards with a mutex each. A shard that would overflow is emptied
// before the new entry goes in; so is a shard whose entries are of an older epoch (they
// can never be served again). A manifest too large for a shard is not cached.
// max_bytes = 0 disables the cache.
//
// Thread-safe. Find and Insert never block on I/O: fine on an I/O thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "storage/meta/metadata_store.h"

namespace berth::registry {

class ManifestCache {
 public:
  explicit ManifestCache(size_t max_bytes);
  ManifestCache(const ManifestCache&) = delete;
  ManifestCache& operator=(const ManifestCache&) = delete;

  bool enabled() const { return shard_budget_ > 0; }

  // The manifest `ref` (a tag, or a digest as "alg:hex") of `repository` names, if it
  // was cached under `epoch`, the store's read epoch now; null otherwise.
  std::shared_ptr<const storage::ManifestRecord> Find(std::string_view repository,
                                                      std::string_view ref, uint64_t epoch);
  // Caches `record`, which the store returned for `ref` in a read that started after
  // the store's read epoch was `epoch`. Does nothing when `epoch` is odd (a write was
  // in progress).
  void Insert(std::string_view repository, std::string_view ref,
              std::shared_ptr<const storage::ManifestRecord> record, uint64_t epoch);

  // What the entries weigh in all, and how many there are (tests, metrics).
  size_t bytes() const;
  size_t size() const;

 private:
  struct Key {
    std::string repository;
    std::string ref;
  };
  struct KeyView {
    std::string_view repository;
    std::string_view ref;
  };
  // Hashing and comparing both Key and KeyView, so that a lookup allocates nothing.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(const KeyView& k) const;
    size_t operator()(const Key& k) const { return (*this)(KeyView{k.repository, k.ref}); }
  };
  struct KeyEq {
    using is_transparent = void;
    static KeyView View(const Key& k) { return {k.repository, k.ref}; }
    static KeyView View(const KeyView& k) { return k; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      KeyView x = View(a), y = View(b);
      return x.repository == y.repository && x.ref == y.ref;
    }
  };
  using Map =
      std::unordered_map<Key, std::shared_ptr<const storage::ManifestRecord>, KeyHash, KeyEq>;

  struct Shard {
    mutable std::mutex mu;
    uint64_t epoch = 0;  // every entry was read at this epoch
    Map entries;
    size_t bytes = 0;
  };

  // Enough that the I/O threads rarely meet on one mutex, few enough that a shard (4 MiB
  // under the default cap) holds all but the very largest manifests.
  static constexpr size_t kShards = 8;

  Shard& ShardOf(const KeyView& key);

  const size_t shard_budget_;
  std::array<Shard, kShards> shards_;
};

}  // namespace berth::registry
