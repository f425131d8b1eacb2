#include "storage/keys.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

namespace berth::storage {
namespace {

constexpr size_t kUploadIdBytes = 16;
constexpr size_t kUploadIdLength = 2 * kUploadIdBytes;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "berth: fatal: %s\n", what);
  std::abort();
}

}  // namespace

std::string BlobKey(const oci::Digest& digest) {
  // A default-constructed Digest would yield "blobs/sha256//", a key outside the layout.
  if (digest.empty()) Die("BlobKey called with an empty digest");
  std::string_view hex = digest.hex();
  std::string key = "blobs/";
  key += digest.algorithm_name();
  key += '/';
  key += hex.substr(0, 2);
  key += '/';
  key += hex;
  return key;
}

std::string UploadKey(std::string_view upload_id) {
  // Callers validate ids from requests with IsValidUploadId; anything else reaching
  // here is a bug that could otherwise turn into a path outside uploads/.
  if (!IsValidUploadId(upload_id)) Die("UploadKey called with an invalid upload id");
  std::string key = "uploads/";
  key += upload_id;
  return key;
}

std::optional<oci::Digest> DigestFromBlobKey(std::string_view key) {
  // blobs/<alg>/<2 hex>/<hex>
  if (!key.starts_with(kBlobsPrefix)) return std::nullopt;
  std::string_view rest = key.substr(kBlobsPrefix.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  size_t last = rest.rfind('/');
  auto digest = oci::Digest::Parse(std::string(rest.substr(0, slash)) + ":" +
                                   std::string(rest.substr(last + 1)));
  // Only the exact spelling BlobKey makes (the fan-out directory must match).
  if (!digest.ok() || BlobKey(*digest) != key) return std::nullopt;
  return std::move(digest).value();
}

std::optional<std::string> UploadIdFromKey(std::string_view key) {
  if (!key.starts_with(kUploadsPrefix)) return std::nullopt;
  key.remove_prefix(kUploadsPrefix.size());
  std::string_view id = key.substr(0, key.find('/'));
  if (!IsValidUploadId(id)) return std::nullopt;
  return std::string(id);
}

std::string UploadObjectsPrefix(std::string_view upload_id) { return UploadKey(upload_id) + "/"; }

std::string UploadDataKey(std::string_view upload_id) {
  return std::string(kDataPrefix) + UploadKey(upload_id).substr(kUploadsPrefix.size());
}

std::string UploadTailName(uint64_t offset, std::string_view nonce) {
  std::string name = "tail-" + std::to_string(offset) + "-" + std::string(nonce);
  if (!IsValidUploadTailName(name)) Die("UploadTailName called with an invalid nonce");
  return name;
}

bool IsValidUploadTailName(std::string_view name) {
  if (!name.starts_with("tail-")) return false;
  name.remove_prefix(5);
  size_t dash = name.find('-');
  if (dash == 0 || dash == std::string_view::npos || dash > 20) return false;
  for (char c : name.substr(0, dash)) {
    if (c < '0' || c > '9') return false;
  }
  if (dash > 1 && name[0] == '0') return false;  // one spelling per offset
  std::string_view nonce = name.substr(dash + 1);
  if (nonce.size() < 8 || nonce.size() > 32) return false;
  for (char c : nonce) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string UploadTailKey(std::string_view upload_id, std::string_view tail_name) {
  if (!IsValidUploadTailName(tail_name)) Die("UploadTailKey called with an invalid tail name");
  return UploadObjectsPrefix(upload_id) + std::string(tail_name);
}

bool IsValidUploadId(std::string_view id) {
  if (id.size() != kUploadIdLength) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string NewUploadId() {
  unsigned char bytes[kUploadIdBytes];
  // Predictable ids would let one client append to another's upload.
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) Die("RAND_bytes failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(kUploadIdLength, '\0');
  for (size_t i = 0; i < kUploadIdBytes; ++i) {
    id[2 * i] = kHex[bytes[i] >> 4];
    id[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return id;
}

}  // namespace berth::storage
