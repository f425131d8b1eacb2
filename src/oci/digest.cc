#include "oci/digest.h"

#include <openssl/sha.h>

#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include <cstdlib>

namespace berth::oci {
namespace {

size_t HexLength(DigestAlgorithm alg) { return alg == DigestAlgorithm::kSha256 ? 64 : 128; }

std::string ToHex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[p[i] >> 4];
    out[2 * i + 1] = kHex[p[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string_view AlgorithmName(DigestAlgorithm alg) {
  return alg == DigestAlgorithm::kSha256 ? "sha256" : "sha512";
}

Result<Digest> Digest::Parse(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos) {
    return Status(Code::kDigestInvalid,
                  "invalid digest: expected <algorithm>:<hex>, such as sha256:<64 hex characters>",
                  std::string(s.substr(0, 200)));
  }
  std::string_view alg_name = s.substr(0, colon);
  std::string_view hex = s.substr(colon + 1);
  DigestAlgorithm alg;
  if (alg_name == "sha256") {
    alg = DigestAlgorithm::kSha256;
  } else if (alg_name == "sha512") {
    alg = DigestAlgorithm::kSha512;
  } else {
    return Status(Code::kDigestInvalid,
                  "unsupported digest algorithm '" + std::string(alg_name.substr(0, 32)) +
                      "': use sha256 or sha512",
                  std::string(s.substr(0, 200)));
  }
  if (hex.size() != HexLength(alg)) {
    return Status(Code::kDigestInvalid,
                  "invalid " + std::string(alg_name) + " digest: expected " +
                      std::to_string(HexLength(alg)) + " hex characters, got " +
                      std::to_string(hex.size()),
                  std::string(s.substr(0, 200)));
  }
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return Status(Code::kDigestInvalid,
                    "invalid digest: the hex part must be lower-case hexadecimal",
                    std::string(s.substr(0, 200)));
    }
  }
  return Digest(alg, std::string(s));
}

Digest Digest::Of(std::string_view bytes, DigestAlgorithm alg) {
  Hasher h(alg);
  h.Update(bytes);
  return h.Peek();
}

// The low-level SHA-2 contexts rather than EVP: their state is a plain struct that
// SaveState can write out and Restore read back, so an upload's hash survives from
// one request (and node) to the next without re-reading its bytes. OpenSSL 3 marks
// them deprecated but keeps them, with the same assembly as EVP underneath.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
struct Hasher::Ctx {
  SHA256_CTX s256;
  SHA512_CTX s512;
};

Hasher::Hasher(DigestAlgorithm alg) : alg_(alg), ctx_(std::make_unique<Ctx>()) {
  int ok = alg == DigestAlgorithm::kSha256 ? SHA256_Init(&ctx_->s256) : SHA512_Init(&ctx_->s512);
  if (ok != 1) std::abort();
}
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(std::span<const char> data) {
  if (data.empty()) return;
  int ok = alg_ == DigestAlgorithm::kSha256 ? SHA256_Update(&ctx_->s256, data.data(), data.size())
                                            : SHA512_Update(&ctx_->s512, data.data(), data.size());
  if (ok != 1) std::abort();
  size_ += data.size();
}

Digest Hasher::Peek() const {
  unsigned char out[SHA512_DIGEST_LENGTH];
  size_t n;
  if (alg_ == DigestAlgorithm::kSha256) {
    SHA256_CTX copy = ctx_->s256;
    if (SHA256_Final(out, &copy) != 1) std::abort();
    n = SHA256_DIGEST_LENGTH;
  } else {
    SHA512_CTX copy = ctx_->s512;
    if (SHA512_Final(out, &copy) != 1) std::abort();
    n = SHA512_DIGEST_LENGTH;
  }
  std::string s(AlgorithmName(alg_));
  s += ':';
  s += ToHex(out, n);
  return Digest(alg_, std::move(s));
}

namespace {

// State text: "<alg>;v1;<bytes fed>;<chaining words>;<Nl>;<Nh>;<buffered bytes>", the
// integers in decimal and the words and bytes in hex, so that it does not depend on
// the host's byte order or struct layout.
template <typename Word>
void PutWords(std::string& out, const Word* w, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    out += std::to_string(w[i]);
  }
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) return parts;
    start = pos + 1;
  }
}

template <typename Word>
bool ParseWord(std::string_view s, Word& out) {
  if (s.empty() || s.size() > 20) return false;
  unsigned long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    unsigned long long next = v * 10 + static_cast<unsigned>(c - '0');
    if (next / 10 != v) return false;
    v = next;
  }
  if (v > std::numeric_limits<Word>::max()) return false;
  out = static_cast<Word>(v);
  return true;
}

template <typename Word>
bool ParseWords(std::string_view s, Word* out, size_t n) {
  auto parts = Split(s, ',');
  if (parts.size() != n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (!ParseWord(parts[i], out[i])) return false;
  }
  return true;
}

bool ParseHexBytes(std::string_view s, unsigned char* out, size_t max, size_t& n) {
  if (s.size() % 2 != 0 || s.size() / 2 > max) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  n = s.size() / 2;
  for (size_t i = 0; i < n; ++i) {
    int hi = nib(s[2 * i]), lo = nib(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

std::string Hasher::SaveState() const {
  std::string out(AlgorithmName(alg_));
  out += ";v1;" + std::to_string(size_) + ';';
  if (alg_ == DigestAlgorithm::kSha256) {
    const SHA256_CTX& c = ctx_->s256;
    PutWords(out, c.h, 8);
    out += ';' + std::to_string(c.Nl) + ';' + std::to_string(c.Nh) + ';';
    out += ToHex(reinterpret_cast<const unsigned char*>(c.data), c.num);
  } else {
    const SHA512_CTX& c = ctx_->s512;
    PutWords(out, c.h, 8);
    out += ';' + std::to_string(c.Nl) + ';' + std::to_string(c.Nh) + ';';
    out += ToHex(c.u.p, c.num);
  }
  return out;
}

Result<Hasher> Hasher::Restore(std::string_view state) {
  auto bad = [&] {
    return Status::Corruption("saved hash state is malformed (" +
                              std::string(state.substr(0, 40)) + "...)");
  };
  auto parts = Split(state, ';');
  if (parts.size() != 7 || parts[1] != "v1") return bad();
  std::optional<DigestAlgorithm> alg;
  if (parts[0] == "sha256") alg = DigestAlgorithm::kSha256;
  if (parts[0] == "sha512") alg = DigestAlgorithm::kSha512;
  if (!alg) return bad();
  Hasher h(*alg);
  if (!ParseWord(parts[2], h.size_)) return bad();
  size_t n = 0;
  if (*alg == DigestAlgorithm::kSha256) {
    SHA256_CTX& c = h.ctx_->s256;
    unsigned char buf[SHA256_CBLOCK];
    if (!ParseWords(parts[3], c.h, 8) || !ParseWord(parts[4], c.Nl) ||
        !ParseWord(parts[5], c.Nh) || !ParseHexBytes(parts[6], buf, sizeof(buf) - 1, n)) {
      return bad();
    }
    std::memcpy(c.data, buf, n);
    c.num = static_cast<unsigned int>(n);
    // Nl/Nh count bits; they must agree with the bytes fed, or the state is not ours.
    uint64_t bits = (static_cast<uint64_t>(c.Nh) << 32) | c.Nl;
    if (bits != h.size_ * 8 || h.size_ % SHA256_CBLOCK != n) return bad();
  } else {
    SHA512_CTX& c = h.ctx_->s512;
    if (!ParseWords(parts[3], c.h, 8) || !ParseWord(parts[4], c.Nl) ||
        !ParseWord(parts[5], c.Nh) || !ParseHexBytes(parts[6], c.u.p, SHA512_CBLOCK - 1, n)) {
      return bad();
    }
    c.num = static_cast<unsigned int>(n);
    if (c.Nh != 0 || c.Nl != h.size_ * 8 || h.size_ % SHA512_CBLOCK != n) return bad();
  }
  return h;
}
#pragma GCC diagnostic pop

}  // namespace berth::oci
