// Glob matching for IAM policy actions and resources and ECR tag filters.
#pragma once

#include <string_view>

namespace berth {

// True when all of `text` matches `pattern`: '*' matches any run of characters
// (possibly empty), '?' exactly one, every other character itself (ASCII case folded
// when `ignore_case`). O(|pattern| * |text|) at worst, never exponential.
bool WildcardMatch(std::string_view pattern, std::string_view text, bool ignore_case = false);

}  // namespace berth
