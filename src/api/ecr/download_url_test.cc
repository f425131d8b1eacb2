#include "api/ecr/download_url.h"

#include <gtest/gtest.h>

namespace berth::api::ecr {
namespace {

constexpr std::string_view kKey = "0123456789abcdef0123456789abcdef";

DownloadGrant Grant() {
  return DownloadGrant{"team/app", oci::Digest::Of("layer bytes"), 1'700'003'600};
}

TEST(DownloadTokenTest, RoundTrip) {
  std::string token = SignDownloadToken(Grant(), kKey);
  EXPECT_EQ(token.find_first_of("/+=?&#"), std::string::npos) << "URL-safe: " << token;
  auto g = VerifyDownloadToken(token, kKey, 1'700'000'000);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->repository, "team/app");
  EXPECT_EQ(g->digest, oci::Digest::Of("layer bytes"));
  EXPECT_EQ(g->expires_at_s, 1'700'003'600);
}

TEST(DownloadTokenTest, ExpiredIsDenied) {
  std::string token = SignDownloadToken(Grant(), kKey);
  auto g = VerifyDownloadToken(token, kKey, 1'700'003'600);
  EXPECT_EQ(g.status().code(), Code::kDenied);
  EXPECT_NE(g.status().message().find("expired"), std::string::npos);
}

TEST(DownloadTokenTest, AnotherKeyOrATamperedPayloadIsDenied) {
  std::string token = SignDownloadToken(Grant(), kKey);
  EXPECT_EQ(VerifyDownloadToken(token, "another key", 0).status().code(), Code::kDenied);
  // Sign a grant for another repository, then graft its payload onto this signature.
  DownloadGrant other = Grant();
  other.repository = "team/secret";
  std::string forged = SignDownloadToken(other, "attacker key");
  std::string grafted = forged.substr(0, forged.find('.')) + token.substr(token.find('.'));
  EXPECT_EQ(VerifyDownloadToken(grafted, kKey, 0).status().code(), Code::kDenied);
}

TEST(DownloadTokenTest, MalformedIsDenied) {
  for (std::string_view t : {"", ".", "abc", "abc.def", "!!.??", "a.b.c"}) {
    EXPECT_EQ(VerifyDownloadToken(t, kKey, 0).status().code(), Code::kDenied) << t;
  }
}

}  // namespace
}  // namespace berth::api::ecr
