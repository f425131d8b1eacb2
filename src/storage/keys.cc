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
