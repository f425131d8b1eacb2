#include <gtest/gtest.h>

#include "api/distribution/handlers.h"

namespace berth::api::distribution {
namespace {

TEST(MatchRouteTest, BaseAndCatalogAndOps) {
  EXPECT_EQ(MatchRoute("/v2/").route, Route::kBase);
  EXPECT_EQ(MatchRoute("/v2").route, Route::kBase);
  EXPECT_EQ(MatchRoute("/v2/_catalog").route, Route::kCatalog);
  EXPECT_EQ(MatchRoute("/healthz").route, Route::kHealthz);
  EXPECT_EQ(MatchRoute("/readyz").route, Route::kReadyz);
  EXPECT_EQ(MatchRoute("/metrics").route, Route::kMetrics);
  EXPECT_EQ(MatchRoute("/").route, Route::kNotFound);
  EXPECT_EQ(MatchRoute("/v3/x/tags/list").route, Route::kNotFound);
}

TEST(MatchRouteTest, NestedRepositoryNames) {
  RouteMatch m = MatchRoute("/v2/team/app/manifests/v1");
  EXPECT_EQ(m.route, Route::kManifest);
  EXPECT_EQ(m.name, "team/app");
  EXPECT_EQ(m.ref, "v1");
  m = MatchRoute("/v2/a/b/c/tags/list");
  EXPECT_EQ(m.route, Route::kTags);
  EXPECT_EQ(m.name, "a/b/c");
}

TEST(MatchRouteTest, UploadsVersusBlobs) {
  RouteMatch m = MatchRoute("/v2/app/blobs/uploads/");
  EXPECT_EQ(m.route, Route::kUploadStart);
  EXPECT_EQ(m.name, "app");
  m = MatchRoute("/v2/app/blobs/uploads");
  EXPECT_EQ(m.route, Route::kUploadStart);
  m = MatchRoute("/v2/app/blobs/uploads/0123456789abcdef0123456789abcdef");
  EXPECT_EQ(m.route, Route::kUpload);
  EXPECT_EQ(m.ref, "0123456789abcdef0123456789abcdef");
  m = MatchRoute("/v2/app/blobs/sha256:abc");
  EXPECT_EQ(m.route, Route::kBlob);
  EXPECT_EQ(m.ref, "sha256:abc");
  m = MatchRoute("/v2/app/referrers/sha256:abc");
  EXPECT_EQ(m.route, Route::kReferrers);
}

TEST(MatchRouteTest, NameContainingResourceWordsUsesRightmostMarker) {
  RouteMatch m = MatchRoute("/v2/blobs/manifests/blobs/sha256:abc");
  EXPECT_EQ(m.route, Route::kBlob);
  EXPECT_EQ(m.name, "blobs/manifests");
  m = MatchRoute("/v2/x/blobs/y/manifests/latest");
  EXPECT_EQ(m.route, Route::kManifest);
  EXPECT_EQ(m.name, "x/blobs/y");
}

TEST(MatchRouteTest, EmptyReferenceIsNotARoute) {
  EXPECT_EQ(MatchRoute("/v2/app/manifests/").route, Route::kNotFound);
  EXPECT_EQ(MatchRoute("/v2/app/blobs/").route, Route::kNotFound);
}

TEST(MatchRouteTest, TheResourceWordMustPrecedeTheLastSegment) {
  EXPECT_EQ(MatchRoute("/v2/app/manifests/a/b").route, Route::kNotFound);
  EXPECT_EQ(MatchRoute("/v2/app/blobs/sha256:abc/x").route, Route::kNotFound);
  EXPECT_EQ(MatchRoute("/v2/app/uploads/0123").route, Route::kNotFound);
  EXPECT_EQ(MatchRoute("/v2/manifests/v1").route, Route::kNotFound);
  EXPECT_EQ(MatchRoute("/v2/blobs/uploads/0123").route, Route::kNotFound);
  EXPECT_EQ(MatchRoute("/v2/app/manifest/v1").route, Route::kNotFound);
  RouteMatch m = MatchRoute("/v2/a/blobs/uploads/b/blobs/uploads/0123");
  EXPECT_EQ(m.route, Route::kUpload);
  EXPECT_EQ(m.name, "a/blobs/uploads/b");
  EXPECT_EQ(m.ref, "0123");
  m = MatchRoute("/v2/a/referrers/b/manifests/sha256:abc");
  EXPECT_EQ(m.route, Route::kManifest);
  EXPECT_EQ(m.name, "a/referrers/b");
}

TEST(NextLinkTest, EscapesLast) {
  EXPECT_EQ(NextLink("/v2/_catalog", 2, "a/b"), "</v2/_catalog?n=2&last=a%2Fb>; rel=\"next\"");
}

}  // namespace
}  // namespace berth::api::distribution
