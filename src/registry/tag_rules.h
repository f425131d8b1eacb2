// Tag mutability rules (ECR's imageTagMutability with exclusion filters). Pure
// functions, thread-safe.
#pragma once

#include <string_view>

#include "storage/meta/metadata_store.h"

namespace berth::registry {

// Exclusion filters match tags with berth::WildcardMatch (base/wildcard.h),
// case-sensitively; ECR allows only [0-9a-zA-Z._*-] in them, so '*' is their only
// wildcard.

// True when a push may not move `tag` once it exists in a repository with `setting`.
bool IsTagImmutable(const storage::TagMutabilitySetting& setting, std::string_view tag);

// "MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION".
std::string_view TagMutabilityName(storage::TagMutability mode);

}  // namespace berth::registry
