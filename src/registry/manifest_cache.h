// EpochCache: values recently read from the metadata store, keyed by (repository,
// ref), so that a read can be answered on the I/O thread without a hop to the blocking
// pool and back for a lookup of a few microseconds. ManifestCache holds manifests by
// (repository, tag) and (repository, digest); TagPageCache holds pages of tag lists.
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
// evenly over a few shards with a mutex each. A shard that would overflow drops its
// least recently used entries until the new one fits: when there are more manifests
// than fit (100k+ tags pulled at random), the cache stays full and keeps what is pulled
// again, where emptying the whole shard kept it half full on average and dropped the
// hot entries with the cold. A shard whose entries are of an older epoch (they can
// never be served again) is emptied. A manifest too large for a shard is not cached.
// max_bytes = 0 disables the cache: nothing is kept, every read goes to the store.
//
// Thread-safe. Find and Insert never block on I/O: fine on an I/O thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/meta/metadata_store.h"

namespace berth::registry {

size_t HashKey(std::string_view repository, std::string_view ref);

// What a cached value weighs, beyond its key (one overload per cached type).
size_t CacheWeight(const storage::ManifestRecord& r);
size_t CacheWeight(const std::vector<std::string>& tags);

template <typename Value>
class EpochCache {
 public:
  explicit EpochCache(size_t max_bytes) : shard_budget_(max_bytes / kShards) {}
  EpochCache(const EpochCache&) = delete;
  EpochCache& operator=(const EpochCache&) = delete;

  bool enabled() const { return shard_budget_ > 0; }

  // What `ref` (for manifests a tag, or a digest as "alg:hex") of `repository` names, if
  // it was cached under `epoch`, the store's read epoch now; null otherwise.
  std::shared_ptr<const Value> Find(std::string_view repository, std::string_view ref,
                                    uint64_t epoch) {
    if (!enabled() || IsOdd(epoch)) return nullptr;
    KeyView key{repository, ref};
    Shard& shard = ShardOf(key);
    std::lock_guard lock(shard.mu);
    // Stale entries are left for Insert to drop: freeing them is not the I/O thread's job.
    if (shard.epoch != epoch) return nullptr;
    auto it = shard.index.find(key);
    if (it == shard.index.end()) return nullptr;
    // Most recently used first (a relink: nothing is allocated).
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
    return it->second->value;
  }
  // Caches `value`, which the store returned for `ref` in a read that started after
  // the store's read epoch was `epoch`. Does nothing when `epoch` is odd (a write was
  // in progress).
  void Insert(std::string_view repository, std::string_view ref,
              std::shared_ptr<const Value> value, uint64_t epoch) {
    if (!enabled() || IsOdd(epoch) || value == nullptr) return;
    size_t weight = kEntryOverhead + repository.size() + ref.size() + CacheWeight(*value);
    if (weight > shard_budget_) return;
    KeyView key{repository, ref};
    Shard& shard = ShardOf(key);
    List dropped;  // freed after the lock is released
    std::lock_guard lock(shard.mu);
    // Read before a write that has since ended: stale already.
    if (epoch < shard.epoch) return;
    if (epoch > shard.epoch) {
      shard.index.clear();
      dropped.swap(shard.lru);
      shard.bytes = 0;
      shard.epoch = epoch;
    }
    // Two reads at one epoch return the same value: an existing entry stays.
    if (shard.index.contains(key)) return;
    while (shard.bytes + weight > shard_budget_) {
      Entry& victim = shard.lru.back();
      shard.index.erase(KeyView{victim.repository, victim.ref});
      shard.bytes -= victim.weight;
      dropped.splice(dropped.end(), shard.lru, std::prev(shard.lru.end()));
    }
    shard.lru.push_front(
        Entry{std::string(repository), std::string(ref), std::move(value), weight});
    const Entry& e = shard.lru.front();
    shard.index.emplace(KeyView{e.repository, e.ref}, shard.lru.begin());
    shard.bytes += weight;
  }

  // What the entries weigh in all, and how many there are (tests, metrics).
  size_t bytes() const {
    size_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.bytes;
    }
    return n;
  }
  size_t size() const {
    size_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.index.size();
    }
    return n;
  }

 private:
  // What an entry costs beyond its key and value: the list node, the index's node
  // and the shared value's control block, roughly.
  static constexpr size_t kEntryOverhead = 256;
  static bool IsOdd(uint64_t epoch) { return (epoch & 1) != 0; }

  struct Entry {
    std::string repository;
    std::string ref;
    std::shared_ptr<const Value> value;
    size_t weight;
  };
  struct KeyView {
    std::string_view repository;
    std::string_view ref;
  };
  struct KeyHash {
    size_t operator()(const KeyView& k) const { return HashKey(k.repository, k.ref); }
  };
  struct KeyEq {
    bool operator()(const KeyView& a, const KeyView& b) const {
      return a.repository == b.repository && a.ref == b.ref;
    }
  };
  // Entries, most recently used first. List nodes never move, so the index keys on
  // views of the strings in them: a lookup allocates nothing, a key is stored once.
  using List = std::list<Entry>;
  using Index = std::unordered_map<KeyView, typename List::iterator, KeyHash, KeyEq>;

  struct Shard {
    mutable std::mutex mu;
    uint64_t epoch = 0;  // every entry was read at this epoch
    List lru;
    Index index;
    size_t bytes = 0;
  };

  // Enough that the I/O threads rarely meet on one mutex, few enough that a shard (4 MiB
  // under the default cap) holds all but the very largest manifests.
  static constexpr size_t kShards = 8;

  Shard& ShardOf(const KeyView& key) { return shards_[KeyHash()(key) % kShards]; }

  const size_t shard_budget_;
  std::array<Shard, kShards> shards_;
};

using ManifestCache = EpochCache<storage::ManifestRecord>;
using TagPageCache = EpochCache<std::vector<std::string>>;

}  // namespace berth::registry
