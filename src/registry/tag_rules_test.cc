#include "registry/tag_rules.h"

#include <gtest/gtest.h>

namespace berth::registry {
namespace {

using storage::TagMutability;
using storage::TagMutabilitySetting;

TEST(WildcardMatchTest, LiteralPatternsMatchExactly) {
  EXPECT_TRUE(WildcardMatch("latest", "latest"));
  EXPECT_FALSE(WildcardMatch("latest", "latest2"));
  EXPECT_FALSE(WildcardMatch("latest", "latesT"));
  EXPECT_FALSE(WildcardMatch("latest", ""));
  EXPECT_TRUE(WildcardMatch("", ""));
  EXPECT_FALSE(WildcardMatch("", "a"));
}

TEST(WildcardMatchTest, StarMatchesAnyRunIncludingNone) {
  EXPECT_TRUE(WildcardMatch("*", ""));
  EXPECT_TRUE(WildcardMatch("*", "anything.at-all_1"));
  EXPECT_TRUE(WildcardMatch("dev-*", "dev-"));
  EXPECT_TRUE(WildcardMatch("dev-*", "dev-123"));
  EXPECT_FALSE(WildcardMatch("dev-*", "dev"));
  EXPECT_FALSE(WildcardMatch("dev-*", "prod-dev-1"));
  EXPECT_TRUE(WildcardMatch("*-rc", "1.0-rc"));
  EXPECT_FALSE(WildcardMatch("*-rc", "1.0-rc1"));
  EXPECT_TRUE(WildcardMatch("v*.*", "v1.2"));
  EXPECT_TRUE(WildcardMatch("v*.*", "v1.2.3"));
  EXPECT_FALSE(WildcardMatch("v*.*", "v12"));
  EXPECT_TRUE(WildcardMatch("**", "x"));
  EXPECT_TRUE(WildcardMatch("a*b*c", "a-b-b-c"));
  EXPECT_FALSE(WildcardMatch("a*b*c", "a-c-b"));
}

TEST(WildcardMatchTest, BacktracksOverRepeatedPrefixes) {
  EXPECT_TRUE(WildcardMatch("*aab", "aaaab"));
  EXPECT_TRUE(WildcardMatch("*ab*ab", "abxabab"));
  EXPECT_FALSE(WildcardMatch("*ab*abc", "abxabab"));
  // Pathological shapes stay fast.
  std::string text(128, 'a');
  EXPECT_FALSE(WildcardMatch("*a*a*a*a*a*b", text));
}

TEST(IsTagImmutableTest, FollowsTheModeAndItsExclusions) {
  EXPECT_FALSE(IsTagImmutable({TagMutability::kMutable, {}}, "latest"));
  EXPECT_TRUE(IsTagImmutable({TagMutability::kImmutable, {}}, "latest"));
  TagMutabilitySetting imm{TagMutability::kImmutableWithExclusion, {"latest", "dev-*"}};
  EXPECT_FALSE(IsTagImmutable(imm, "latest"));
  EXPECT_FALSE(IsTagImmutable(imm, "dev-42"));
  EXPECT_TRUE(IsTagImmutable(imm, "v1.0"));
  TagMutabilitySetting mut{TagMutability::kMutableWithExclusion, {"release-*"}};
  EXPECT_TRUE(IsTagImmutable(mut, "release-1"));
  EXPECT_FALSE(IsTagImmutable(mut, "latest"));
}

TEST(TagMutabilityNameTest, UsesEcrNames) {
  EXPECT_EQ(TagMutabilityName(TagMutability::kMutable), "MUTABLE");
  EXPECT_EQ(TagMutabilityName(TagMutability::kImmutable), "IMMUTABLE");
  EXPECT_EQ(TagMutabilityName(TagMutability::kImmutableWithExclusion), "IMMUTABLE_WITH_EXCLUSION");
  EXPECT_EQ(TagMutabilityName(TagMutability::kMutableWithExclusion), "MUTABLE_WITH_EXCLUSION");
}

}  // namespace
}  // namespace berth::registry
