// Base64 (RFC 4648): the standard alphabet with padding, and the URL-safe one without.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace berth {

// Standard base64 with '=' padding.
std::string Base64Encode(std::string_view bytes);
// Accepts standard base64 with or without padding; nullopt on any other character,
// a bad length, or non-zero trailing bits.
std::optional<std::string> Base64Decode(std::string_view text);
// URL-safe alphabet ('-', '_'), no padding: never contains ':', '.', '/' or '+'.
std::string Base64UrlEncode(std::string_view bytes);
// Strict inverse of Base64UrlEncode (no padding accepted).
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace berth
