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

// %2F decoded to '/' made /v2/lib%2fapp/... name the repository lib/app.
TEST(DecodePathTest, EncodedSlashInNameStaysEncoded) {
  EXPECT_EQ(DecodePath("/v2/lib%2Fapp/tags/list"),
            std::optional<std::string>("/v2/lib%2Fapp/tags/list"));
  EXPECT_EQ(DecodePath("/v2/lib%2fapp"), std::optional<std::string>("/v2/lib%2fapp"));
  EXPECT_EQ(DecodePath("/v2/a%20b%41"), std::optional<std::string>("/v2/a bA"));
}

TEST(DecodePathTest, RejectsTruncatedEscapesAndNul) {
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

std::optional<FramingError> Framing(
    std::initializer_list<std::pair<bhttp::field, std::string>> headers, unsigned version = 11) {
  bhttp::fields f;
  for (const auto& [name, value] : headers) f.insert(name, value);
  return CheckRequestFraming(f, version);
}

constexpr auto kTE = bhttp::field::transfer_encoding;
constexpr auto kCL = bhttp::field::content_length;

TEST(CheckRequestFramingTest, PlainChunkedAndOneContentLengthAreFine) {
  EXPECT_FALSE(Framing({}));
  EXPECT_FALSE(Framing({{kTE, "chunked"}}));
  EXPECT_FALSE(Framing({{kTE, "Chunked"}}));
  EXPECT_FALSE(Framing({{kCL, "42"}}));
  EXPECT_FALSE(Framing({{kCL, "42"}}, 10));
}

// Request smuggling: "gzip" read as no body let the body run as a second request;
// "chunked, chunked" made the body be ignored.
TEST(CheckRequestFramingTest, RequestSmugglingTransferCodingsAreRefused) {
  for (const char* te : {"gzip", "chunked, chunked", "chunked, gzip", "identity", ""}) {
    auto e = Framing({{kTE, te}});
    ASSERT_TRUE(e) << te;
    EXPECT_EQ(e->status, bhttp::status::bad_request) << te;
    EXPECT_FALSE(e->message.empty());
  }
  auto twice = Framing({{kTE, "chunked"}, {kTE, "chunked"}});
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->status, bhttp::status::bad_request);
  // A coding before chunked is well-formed but not implemented.
  auto gzip = Framing({{kTE, "gzip, chunked"}});
  ASSERT_TRUE(gzip);
  EXPECT_EQ(gzip->status, bhttp::status::not_implemented);
  EXPECT_NE(gzip->message.find("gzip"), std::string::npos);
  auto split = Framing({{kTE, "gzip"}, {kTE, "chunked"}});
  ASSERT_TRUE(split);
  EXPECT_EQ(split->status, bhttp::status::not_implemented);
}

TEST(CheckRequestFramingTest, RequestSmugglingLengthAmbiguitiesAreRefused) {
  EXPECT_TRUE(Framing({{kTE, "chunked"}, {kCL, "5"}}));
  EXPECT_TRUE(Framing({{kTE, "gzip"}, {kCL, "5"}}));
  EXPECT_TRUE(Framing({{kCL, "5"}, {kCL, "5"}}));
  EXPECT_TRUE(Framing({{kCL, "5, 5"}}));
  EXPECT_TRUE(Framing({{kTE, "chunked"}}, 10));
}

}  // namespace
}  // namespace berth::http
