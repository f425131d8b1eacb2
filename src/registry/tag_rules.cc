#include "registry/tag_rules.h"

#include <algorithm>

#include "base/wildcard.h"

namespace berth::registry {

bool IsTagImmutable(const storage::TagMutabilitySetting& setting, std::string_view tag) {
  auto excluded = [&] {
    return std::any_of(setting.exclusion_filters.begin(), setting.exclusion_filters.end(),
                       [&](const std::string& f) { return WildcardMatch(f, tag); });
  };
  switch (setting.mode) {
    case storage::TagMutability::kMutable: return false;
    case storage::TagMutability::kImmutable: return true;
    case storage::TagMutability::kImmutableWithExclusion: return !excluded();
    case storage::TagMutability::kMutableWithExclusion: return excluded();
  }
  return false;
}

std::string_view TagMutabilityName(storage::TagMutability mode) {
  switch (mode) {
    case storage::TagMutability::kMutable: return "MUTABLE";
    case storage::TagMutability::kImmutable: return "IMMUTABLE";
    case storage::TagMutability::kImmutableWithExclusion: return "IMMUTABLE_WITH_EXCLUSION";
    case storage::TagMutability::kMutableWithExclusion: return "MUTABLE_WITH_EXCLUSION";
  }
  return "MUTABLE";
}

}  // namespace berth::registry
