#include "registry/tag_rules.h"

#include <gtest/gtest.h>

namespace berth::registry {
namespace {

using storage::TagMutability;
using storage::TagMutabilitySetting;

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
