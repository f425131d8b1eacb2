#include "http/message.h"

#include <gtest/gtest.h>

namespace berth::http {
namespace {

TEST(ParseQueryTest, DecodesPairsInOrder) {
  auto q = ParseQuery("mount=sha256%3Aab&from=team%2Fapp&flag&n=10");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>("mount", "sha256:ab")));
  EXPECT_EQ(q[1].second, "team/app");
  EXPECT_EQ(q[2].first, "flag");
  EXPECT_EQ(q[2].second, "");
  EXPECT_EQ(q[3].second, "10");
}

TEST(ParseQueryTest, MalformedEscapeKeptLiterally) {
  auto q = ParseQuery("last=%zz");
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].second, "%zz");
}

TEST(DecodePathTest, RejectsTruncatedEscapesAndNul) {
  EXPECT_EQ(DecodePath("/v2/a%2Fb"), std::optional<std::string>("/v2/a/b"));
  EXPECT_FALSE(DecodePath("/v2/a%2").has_value());
  EXPECT_FALSE(DecodePath("/v2/a%").has_value());
  EXPECT_FALSE(DecodePath("/v2/a%00b").has_value());
}

TEST(RequestTest, HeaderListSplitsRepeatedAndCommaJoinedValues) {
  bhttp::fields f;
  f.insert(bhttp::field::accept, "application/vnd.oci.image.index.v1+json");
  f.insert(bhttp::field::accept,
           "application/vnd.docker.distribution.manifest.v2+json, application/json;q=0.5");
  Request r;
  r.headers = &f;
  auto list = r.HeaderList(bhttp::field::accept);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0], "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(list[2], "application/json;q=0.5");
}

}  // namespace
}  // namespace berth::http
