#include "base/wildcard.h"

#include <gtest/gtest.h>

#include <string>

namespace berth {
namespace {

// The shapes ECR tag exclusion filters take ('*' only, case-sensitive); IAM globs
// ('?', case folding) are tested with the policy evaluator in auth/policy_test.cc.
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

}  // namespace
}  // namespace berth
