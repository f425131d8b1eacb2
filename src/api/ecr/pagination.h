// nextToken values of the listing operations. Opaque to clients, they carry the key
// where the next page starts (listings are paginated by key, never by offset) and are
// bound to the listing they came from — operation, repository, filter — so a token
// cannot be replayed against another one. Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace berth::api::ecr {

// `scope` names the listing; keys must not contain '\x1f'.
std::string EncodePageToken(std::string_view scope, const std::vector<std::string>& keys);
// The keys of a token made by EncodePageToken with the same scope; kInvalidArgument
// (naming nextToken) for anything else.
Result<std::vector<std::string>> DecodePageToken(std::string_view token, std::string_view scope);

}  // namespace berth::api::ecr
