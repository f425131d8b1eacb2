#include "api/ecr/download_url.h"
#include "base/base64.h"

#include <charconv>

#include "auth/crypto.h"

namespace berth::api::ecr {
namespace {

constexpr std::string_view kVersion = "d1";

Status Denied(std::string why) {
  return Status(Code::kDenied, "the download URL is " + std::move(why) +
                                   "; ask GetDownloadUrlForLayer for a new one");
}

}  // namespace

std::string SignDownloadToken(const DownloadGrant& grant, std::string_view key) {
  std::string payload(kVersion);
  payload += '\n';
  payload += grant.repository;
  payload += '\n';
  payload += grant.digest.str();
  payload += '\n';
  payload += std::to_string(grant.expires_at_s);
  return Base64UrlEncode(payload) + "." +
         Base64UrlEncode(auth::HmacSha256(key, payload));
}

Result<DownloadGrant> VerifyDownloadToken(std::string_view token, std::string_view key,
                                          int64_t now_s) {
  size_t dot = token.find('.');
  if (dot == std::string_view::npos) return Denied("malformed");
  auto payload = Base64UrlDecode(token.substr(0, dot));
  auto signature = Base64UrlDecode(token.substr(dot + 1));
  if (!payload || !signature) return Denied("malformed");
  if (!auth::ConstantTimeEquals(*signature, auth::HmacSha256(key, *payload))) {
    return Denied("not valid");
  }
  // Signed by us: the fields are well-formed unless the format changed.
  std::string_view rest(*payload);
  std::string_view fields[4];
  for (int i = 0; i < 4; ++i) {
    size_t nl = i < 3 ? rest.find('\n') : rest.size();
    if (nl == std::string_view::npos) return Denied("malformed");
    fields[i] = rest.substr(0, nl);
    rest.remove_prefix(std::min(rest.size(), nl + 1));
  }
  if (fields[0] != kVersion) return Denied("malformed");
  DownloadGrant grant;
  grant.repository = std::string(fields[1]);
  auto digest = oci::Digest::Parse(fields[2]);
  if (!digest.ok()) return Denied("malformed");
  grant.digest = *digest;
  auto [p, ec] =
      std::from_chars(fields[3].data(), fields[3].data() + fields[3].size(), grant.expires_at_s);
  if (ec != std::errc() || p != fields[3].data() + fields[3].size()) return Denied("malformed");
  if (now_s >= grant.expires_at_s) return Denied("expired");
  return grant;
}

}  // namespace berth::api::ecr
