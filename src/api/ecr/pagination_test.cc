#include "api/ecr/pagination.h"

#include <gtest/gtest.h>

namespace berth::api::ecr {
namespace {

TEST(PageTokenTest, RoundTripsKeys) {
  std::vector<std::string> keys = {"sha256:" + std::string(64, 'f'), "v1.2-rc"};
  std::string token = EncodePageToken("ListImages:000000000000:team/app:ANY", keys);
  auto back = DecodePageToken(token, "ListImages:000000000000:team/app:ANY");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, keys);
  // Empty keys survive too (an untagged image in ListImages).
  auto empty = DecodePageToken(EncodePageToken("s", {"d", ""}), "s");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, (std::vector<std::string>{"d", ""}));
  // Opaque and URL-safe.
  EXPECT_EQ(token.find_first_of("+/=:"), std::string::npos);
}

TEST(PageTokenTest, BoundToItsListing) {
  std::string token = EncodePageToken("DescribeImages:000000000000:a:ANY", {"x"});
  auto other = DecodePageToken(token, "DescribeImages:000000000000:b:ANY");
  EXPECT_EQ(other.status().code(), Code::kInvalidArgument);
  EXPECT_NE(other.status().message().find("nextToken"), std::string::npos);
  EXPECT_FALSE(DecodePageToken(token, "DescribeImages:000000000000:a:TAGGED").ok());
}

TEST(PageTokenTest, GarbageIsInvalid) {
  EXPECT_FALSE(DecodePageToken("", "s").ok());
  EXPECT_FALSE(DecodePageToken("not base64!", "s").ok());
  EXPECT_FALSE(DecodePageToken("aGVsbG8", "s").ok());  // base64url("hello")
}

}  // namespace
}  // namespace berth::api::ecr
