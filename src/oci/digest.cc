#include "oci/digest.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace berth::oci {
namespace {

size_t HexLength(DigestAlgorithm alg) { return alg == DigestAlgorithm::kSha256 ? 64 : 128; }

const EVP_MD* Md(DigestAlgorithm alg) {
  return alg == DigestAlgorithm::kSha256 ? EVP_sha256() : EVP_sha512();
}

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

struct Hasher::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Hasher::Hasher(DigestAlgorithm alg) : alg_(alg), ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, Md(alg), nullptr) != 1) std::abort();
}
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(std::span<const char> data) {
  if (data.empty()) return;
  if (EVP_DigestUpdate(ctx_->md, data.data(), data.size()) != 1) std::abort();
  size_ += data.size();
}

Digest Hasher::Peek() const {
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  if (copy == nullptr || EVP_MD_CTX_copy_ex(copy, ctx_->md) != 1) std::abort();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(copy, out, &n) != 1) std::abort();
  EVP_MD_CTX_free(copy);
  std::string s(AlgorithmName(alg_));
  s += ':';
  s += ToHex(out, n);
  return Digest(alg_, std::move(s));
}

}  // namespace berth::oci
