#include "bench/http_client.h"

#include <gtest/gtest.h>

namespace berth::bench {
namespace {

TEST(ParseChallenge, Bearer) {
  auto c = ParseChallenge(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.example.com/token");
  EXPECT_EQ(c->params["service"], "registry.example.com");
  EXPECT_EQ(c->params["scope"], "repository:a/b:pull,push");
}

TEST(ParseChallenge, BasicWithSpacesAndUnquotedValues) {
  auto c = ParseChallenge(R"(Basic realm="Berth Registry" , charset=UTF-8)");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_EQ(c->params["realm"], "Berth Registry");
  EXPECT_EQ(c->params["charset"], "UTF-8");
}

TEST(ParseChallenge, EscapedQuote) {
  auto c = ParseChallenge(R"(Basic realm="a \"b\"")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->params["realm"], "a \"b\"");
}

TEST(ParseChallenge, Malformed) {
  EXPECT_FALSE(ParseChallenge(""));
  EXPECT_FALSE(ParseChallenge(R"(Bearer realm="unterminated)"));
}

TEST(Base64Encode, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("AWS:secret"), "QVdTOnNlY3JldA==");
}

TEST(Endpoint, Parse) {
  auto e = Endpoint::Parse("http://127.0.0.1:5000");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->tls);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, "5000");
  EXPECT_EQ(e->authority, "127.0.0.1:5000");
  auto t = Endpoint::Parse("https://[::1]/");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->tls);
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->port, "443");
  EXPECT_FALSE(Endpoint::Parse("ftp://x").ok());
  EXPECT_FALSE(Endpoint::Parse("not a url").ok());
}

TEST(TargetFromLocation, RelativeAndAbsolute) {
  EXPECT_EQ(TargetFromLocation("/v2/a/blobs/uploads/u1?_state=x"),
            "/v2/a/blobs/uploads/u1?_state=x");
  EXPECT_EQ(TargetFromLocation("http://127.0.0.1:5000/v2/a/blobs/uploads/u1"),
            "/v2/a/blobs/uploads/u1");
}

TEST(WithQuery, AppendsAndEncodes) {
  EXPECT_EQ(WithQuery("/x", "digest", "sha256:ab"), "/x?digest=sha256%3Aab");
  EXPECT_EQ(WithQuery("/x?_state=1", "n", "10"), "/x?_state=1&n=10");
}

TEST(ContentSource, HashesEachByteOnceAcrossRewinds) {
  oci::Hasher hasher;
  std::string buf(1000, '\0');
  ContentSource first(5, 3000, 0, 1500, &hasher);
  while (first.Read(buf) > 0) {
  }
  first.Rewind();  // a retry re-sends the chunk
  while (first.Read(buf) > 0) {
  }
  ContentSource second(5, 3000, 1500, 3000, &hasher);
  while (second.Read(buf) > 0) {
  }
  EXPECT_EQ(hasher.size(), 3000u);
  EXPECT_EQ(hasher.Peek(), RandomContentDigest(5, 3000));
}

}  // namespace
}  // namespace berth::bench
