// Tag mutability rules (ECR's imageTagMutability with exclusion filters). Pure
// functions, thread-safe.
#pragma once

#include <string_view>

#include "storage/meta/metadata_store.h"

namespace berth::registry {

// ECR's wildcard filters: '*' matches any run of characters (including none); every
// other character matches itself, case-sensitively. The whole tag must match.
bool WildcardMatch(std::string_view pattern, std::string_view text);

// True when a push may not move `tag` once it exists in a repository with `setting`.
bool IsTagImmutable(const storage::TagMutabilitySetting& setting, std::string_view tag);

// "MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION".
std::string_view TagMutabilityName(storage::TagMutability mode);

}  // namespace berth::registry
