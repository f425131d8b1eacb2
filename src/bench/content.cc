#include "bench/content.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace berth::bench {
namespace {

inline uint64_t Word(uint64_t seed, uint64_t i) {
  return SplitMix64::Mix(seed * 0x9e3779b97f4a7c15ULL + i);
}

}  // namespace

size_t RandomContent::Read(std::span<char> out) {
  size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), remaining()));
  char* p = out.data();
  size_t done = 0;
  uint64_t off = offset_;
  // Unaligned head: part of one word.
  if (off % 8 != 0 && n > 0) {
    uint64_t w = Word(seed_, off / 8);
    size_t skip = off % 8;
    size_t take = std::min<size_t>(8 - skip, n);
    std::memcpy(p, reinterpret_cast<const char*>(&w) + skip, take);
    done += take;
    off += take;
  }
  // Whole words.
  uint64_t i = off / 8;
  while (n - done >= 8) {
    uint64_t w = Word(seed_, i++);
    std::memcpy(p + done, &w, 8);
    done += 8;
  }
  // Tail.
  if (done < n) {
    uint64_t w = Word(seed_, i);
    std::memcpy(p + done, &w, n - done);
    done = n;
  }
  offset_ += n;
  return n;
}

oci::Digest RandomContentDigest(uint64_t seed, uint64_t size, oci::DigestAlgorithm alg) {
  RandomContent content(seed, size);
  oci::Hasher hasher(alg);
  std::vector<char> buf(std::min<uint64_t>(size, 1 << 20) + 1);
  while (size_t n = content.Read(buf)) hasher.Update(std::span<const char>(buf.data(), n));
  return hasher.Peek();
}

}  // namespace berth::bench
