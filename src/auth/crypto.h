// Small cryptographic and encoding helpers shared by the auth modules: SHA-256,
// HMAC-SHA256 (OpenSSL 3), constant-time comparison, secure random bytes, hex, and
// base64 in its standard (RFC 4648 §4) and URL-safe unpadded (§5) forms.
//
// All functions are pure or use only thread-safe OpenSSL state: thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include <string_view>

#include "base/base64.h"  // auth code uses berth::Base64* unqualified

namespace berth::auth {

// Raw 32-byte digests.
std::string Sha256(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);
// Lower-case hex.
std::string HexEncode(std::string_view bytes);
std::string Sha256Hex(std::string_view data);
// nullopt unless `hex` is an even-length string of hex digits (either case).
std::optional<std::string> HexDecode(std::string_view hex);

// Compares in time that depends only on the lengths (CRYPTO_memcmp).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// `n` bytes from OpenSSL's CSPRNG. A CSPRNG failure is a broken invariant: aborts.
std::string RandomBytes(size_t n);

}  // namespace berth::auth
