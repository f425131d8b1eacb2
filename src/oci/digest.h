// Content digests ("sha256:<64 hex>", "sha512:<128 hex>") and streaming hashing.
//
// Digest is a validated value type. Hasher computes a digest incrementally with
// OpenSSL's EVP interface (SHA-NI accelerated where the CPU has it). A Hasher
// is not thread-safe; use one per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace berth::oci {

enum class DigestAlgorithm : uint8_t { kSha256, kSha512 };

std::string_view AlgorithmName(DigestAlgorithm alg);  // "sha256" / "sha512"

class Digest {
 public:
  Digest() = default;  // empty, invalid; only for containers
  // Parses "<alg>:<hex>". Errors are kDigestInvalid with a message naming what is wrong
  // (unknown algorithm, wrong length, non-lower-hex character, missing ':').
  static Result<Digest> Parse(std::string_view s);
  // Digest of an in-memory byte string.
  static Digest Of(std::string_view bytes, DigestAlgorithm alg = DigestAlgorithm::kSha256);

  DigestAlgorithm algorithm() const { return alg_; }
  std::string_view algorithm_name() const { return AlgorithmName(alg_); }
  // The lower-case hex part.
  std::string_view hex() const { return std::string_view(str_).substr(str_.find(':') + 1); }
  // "<alg>:<hex>".
  const std::string& str() const { return str_; }
  bool empty() const { return str_.empty(); }

  friend bool operator==(const Digest& a, const Digest& b) { return a.str_ == b.str_; }
  friend auto operator<=>(const Digest& a, const Digest& b) { return a.str_ <=> b.str_; }

 private:
  Digest(DigestAlgorithm alg, std::string s) : alg_(alg), str_(std::move(s)) {}
  friend class Hasher;
  DigestAlgorithm alg_ = DigestAlgorithm::kSha256;
  std::string str_;
};

class Hasher {
 public:
  explicit Hasher(DigestAlgorithm alg = DigestAlgorithm::kSha256);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void Update(std::span<const char> data);
  void Update(std::string_view data) { Update(std::span<const char>(data.data(), data.size())); }
  void Update(const std::string& data) { Update(std::string_view(data)); }
  // Bytes fed so far.
  uint64_t size() const { return size_; }
  DigestAlgorithm algorithm() const { return alg_; }
  // Digest of everything fed so far; the hasher can continue to be updated afterwards.
  Digest Peek() const;
  // The hash state after size() bytes, as text that Restore turns back into a Hasher
  // which continues exactly where this one is (on another node, after a restart):
  // about 200 bytes, independent of the host's byte order.
  std::string SaveState() const;
  // kCorruption when `state` is not something SaveState wrote.
  static Result<Hasher> Restore(std::string_view state);

 private:
  struct Ctx;
  DigestAlgorithm alg_;
  std::unique_ptr<Ctx> ctx_;
  uint64_t size_ = 0;
};

}  // namespace berth::oci

template <>
struct std::hash<berth::oci::Digest> {
  size_t operator()(const berth::oci::Digest& d) const noexcept {
    return std::hash<std::string>()(d.str());
  }
};
