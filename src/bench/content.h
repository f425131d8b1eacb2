// Deterministic pseudo-random content for `berth bench`: blob bytes are a pure
// function of (seed, offset), generated on the fly at several GB/s, so a 1 GiB blob
// is never held in memory and the same blob can be regenerated for a retry or to
// check a digest. Not thread-safe; one instance per stream.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "oci/digest.h"

namespace berth::bench {

// SplitMix64: a tiny, fast PRNG (also the mixing function of the content generator).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    return Mix(z);
  }
  // Uniform in [0, n); n > 0.
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  static uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// The bytes of blob `seed`: 8-byte word i is Mix(seed * K + i).
class RandomContent {
 public:
  RandomContent(uint64_t seed, uint64_t size) : seed_(seed), size_(size) {}

  uint64_t size() const { return size_; }
  uint64_t offset() const { return offset_; }
  uint64_t remaining() const { return size_ - offset_; }
  // Fills up to out.size() bytes from the current offset; returns how many (0 at the end).
  size_t Read(std::span<char> out);
  void Seek(uint64_t offset) { offset_ = offset < size_ ? offset : size_; }

 private:
  uint64_t seed_;
  uint64_t size_;
  uint64_t offset_ = 0;
};

// The digest of RandomContent(seed, size), computed by streaming it through a Hasher.
oci::Digest RandomContentDigest(uint64_t seed, uint64_t size,
                                oci::DigestAlgorithm alg = oci::DigestAlgorithm::kSha256);

}  // namespace berth::bench
