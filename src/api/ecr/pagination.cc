#include "api/ecr/pagination.h"
#include "base/base64.h"

#include "auth/crypto.h"

namespace berth::api::ecr {
namespace {

constexpr char kSeparator = '\x1f';
constexpr std::string_view kVersion = "b1";

Status InvalidToken() {
  return Status(Code::kInvalidArgument,
                "Invalid parameter at 'nextToken' failed to satisfy constraint: 'the token was "
                "not issued by this listing'",
                "nextToken");
}

}  // namespace

std::string EncodePageToken(std::string_view scope, const std::vector<std::string>& keys) {
  std::string raw(kVersion);
  raw += kSeparator;
  raw += scope;
  for (const auto& k : keys) {
    raw += kSeparator;
    raw += k;
  }
  return Base64UrlEncode(raw);
}

Result<std::vector<std::string>> DecodePageToken(std::string_view token, std::string_view scope) {
  auto raw = Base64UrlDecode(token);
  if (!raw) return InvalidToken();
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = raw->find(kSeparator, start);
    parts.push_back(raw->substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (parts.size() < 2 || parts[0] != kVersion || parts[1] != scope) return InvalidToken();
  parts.erase(parts.begin(), parts.begin() + 2);
  return parts;
}

}  // namespace berth::api::ecr
