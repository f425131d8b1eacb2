#include "registry/tag_rules.h"

#include <algorithm>

namespace berth::registry {

bool WildcardMatch(std::string_view pattern, std::string_view text) {
  // Greedy matching with backtracking to the last '*': linear in practice, and
  // O(pattern * text) at worst (filters are at most 128 characters).
  size_t p = 0, t = 0;
  size_t star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

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
