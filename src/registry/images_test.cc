// The registry's image rules for the ECR control plane and /v2: tag immutability,
// PutImage's outcomes, image sizes, deletions by tag and digest, pull times, and the
// layer API.
#include <gtest/gtest.h>

#include "registry/ecr_test_fixture.h"

namespace berth::registry {
namespace {

using storage::TagMutability;
using testing::EcrRegistryTest;
using testing::kAccount;

using ImagesTest = EcrRegistryTest;

TEST_F(ImagesTest, ImmutableTagsCannotBeMovedByAV2Push) {
  Repo("app", {TagMutability::kImmutable, {}});
  std::string one = ImageManifest("app", "one");
  ASSERT_TRUE(PushV2("app", "v1", one).ok());
  EXPECT_TRUE(PushV2("app", "v1", one).ok()) << "the same manifest again is fine";
  auto moved = PushV2("app", "v1", ImageManifest("app", "two"));
  EXPECT_EQ(moved.status().code(), Code::kTagInvalid);
  EXPECT_EQ(moved.status().message(),
            "The image tag 'v1' already exists in the 'app' repository and cannot be "
            "overwritten because the repository is immutable");
  EXPECT_EQ((*reg_->GetManifest("app", oci::Reference{std::string("v1")}))->digest,
            oci::Digest::Of(one));
  // By digest (no tag) is always fine.
  EXPECT_TRUE(PushV2("app", "", ImageManifest("app", "three")).ok());
}

TEST_F(ImagesTest, ExclusionFiltersFlipTheRule) {
  Repo("imm", {TagMutability::kImmutableWithExclusion, {"latest", "dev-*"}});
  Repo("mut", {TagMutability::kMutableWithExclusion, {"release-*"}});
  for (const char* repo : {"imm", "mut"}) {
    for (const char* tag : {"latest", "dev-1", "v1", "release-1"}) {
      ASSERT_TRUE(PushV2(repo, tag, ImageManifest(repo, std::string(tag) + "a")).ok());
    }
  }
  auto push = [&](const char* repo, const char* tag) {
    return PushV2(repo, tag, ImageManifest(repo, std::string(tag) + "b")).status().code();
  };
  EXPECT_EQ(push("imm", "latest"), Code::kOk);
  EXPECT_EQ(push("imm", "dev-1"), Code::kOk);
  EXPECT_EQ(push("imm", "v1"), Code::kTagInvalid);
  EXPECT_EQ(push("imm", "release-1"), Code::kTagInvalid);
  EXPECT_EQ(push("mut", "latest"), Code::kOk);
  EXPECT_EQ(push("mut", "v1"), Code::kOk);
  EXPECT_EQ(push("mut", "release-1"), Code::kTagInvalid);
}

TEST_F(ImagesTest, PutImageOutcomes) {
  Repo("app");
  std::string m = ImageManifest("app", "one");
  oci::Digest d = oci::Digest::Of(m);
  auto put = reg_->PutImage(kAccount, "app", {m, "", "v1", d});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->digest, d);
  EXPECT_EQ(put->media_type, "application/vnd.oci.image.manifest.v1+json");
  // Same manifest, same tag: nothing would change.
  auto same = reg_->PutImage(kAccount, "app", {m, "", "v1", {}});
  EXPECT_EQ(same.status().code(), Code::kAlreadyExists);
  EXPECT_NE(same.status().message().find("already exists"), std::string::npos);
  EXPECT_EQ(reg_->PutImage(kAccount, "app", {m, "", "", {}}).status().code(), Code::kAlreadyExists);
  // Another tag on it is a retag.
  ASSERT_TRUE(reg_->PutImage(kAccount, "app", {m, "", "v2", {}}).ok());
  EXPECT_EQ(reg_->DescribeImage(kAccount, "app", d)->tags, (std::vector<std::string>{"v1", "v2"}));
  EXPECT_EQ(
      reg_->PutImage(kAccount, "app", {m, "", "v3", oci::Digest::Of("other")}).status().code(),
      Code::kDigestInvalid);
  EXPECT_EQ(reg_->PutImage(kAccount, "app", {m, "", "bad tag!", {}}).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(reg_->PutImage(kAccount, "nope", {m, "", "v1", {}}).status().code(),
            Code::kNameUnknown);
}

TEST_F(ImagesTest, PutImageNamesMissingLayersAndImages) {
  Repo("app");
  Repo("other");
  std::string elsewhere = ImageManifest("other", "x");
  auto layers = reg_->PutImage(kAccount, "app", {elsewhere, "", "v1", {}});
  EXPECT_EQ(layers.status().code(), Code::kManifestBlobUnknown);
  EXPECT_NE(layers.status().message().find("Layers with digests"), std::string::npos);
  ASSERT_TRUE(reg_->PutImage(kAccount, "other", {elsewhere, "", "v1", {}}).ok());
  auto children =
      reg_->PutImage(kAccount, "app", {IndexOf({oci::Digest::Of(elsewhere)}), "", "list", {}});
  EXPECT_EQ(children.status().code(), Code::kManifestUnknown);
  EXPECT_EQ(children.status().detail(), oci::Digest::Of(elsewhere).str());
  // On /v2 a missing child stays MANIFEST_BLOB_UNKNOWN.
  EXPECT_EQ(PushV2("app", "list", IndexOf({oci::Digest::Of(elsewhere)})).status().code(),
            Code::kManifestBlobUnknown);
}

TEST_F(ImagesTest, ImageSizes) {
  Repo("app");
  std::string small = ImageManifest("app", "small", {100, 20});
  std::string big = ImageManifest("app", "big", {1000, 2000, 3});
  ASSERT_TRUE(PushV2("app", "small", small).ok());
  ASSERT_TRUE(PushV2("app", "big", big).ok());
  std::string index = IndexOf({oci::Digest::Of(small), oci::Digest::Of(big)});
  ASSERT_TRUE(PushV2("app", "list", index).ok());
  // Layers only (as ECR counts), and an index weighs its largest child.
  EXPECT_EQ(reg_->DescribeImage(kAccount, "app", oci::Digest::Of(small))->manifest.image_size, 120);
  EXPECT_EQ(reg_->DescribeImage(kAccount, "app", oci::Digest::Of(big))->manifest.image_size, 3003);
  EXPECT_EQ(reg_->DescribeImage(kAccount, "app", oci::Digest::Of(index))->manifest.image_size,
            3003);
}

TEST_F(ImagesTest, UntaggingTheLastTagDeletesTheImage) {
  Repo("app");
  std::string m = ImageManifest("app", "one");
  ASSERT_TRUE(PushV2("app", "a", m).ok());
  ASSERT_TRUE(PushV2("app", "b", m).ok());
  auto first = reg_->UntagImage(kAccount, "app", "a");
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->manifest_deleted);
  auto last = reg_->UntagImage(kAccount, "app", "b");
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->manifest_deleted);
  EXPECT_EQ(reg_->DescribeImage(kAccount, "app", oci::Digest::Of(m)).status().code(),
            Code::kManifestUnknown);
  EXPECT_EQ(reg_->UntagImage(kAccount, "app", "b").status().code(), Code::kManifestUnknown);
}

TEST_F(ImagesTest, DeletingByDigestRemovesTheTagsButNotAListedChild) {
  Repo("app");
  std::string child = ImageManifest("app", "child");
  ASSERT_TRUE(PushV2("app", "child", child).ok());
  std::string index = IndexOf({oci::Digest::Of(child)});
  ASSERT_TRUE(PushV2("app", "list", index).ok());
  auto refused = reg_->DeleteImage(kAccount, "app", oci::Digest::Of(child));
  EXPECT_EQ(refused.status().code(), Code::kManifestReferenced);
  EXPECT_NE(refused.status().message().find(oci::Digest::Of(index).str()), std::string::npos);
  auto tags = reg_->DeleteImage(kAccount, "app", oci::Digest::Of(index));
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(*tags, (std::vector<std::string>{"list"}));
  tags = reg_->DeleteImage(kAccount, "app", oci::Digest::Of(child));
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(*tags, (std::vector<std::string>{"child"}));
  EXPECT_EQ(reg_->DeleteImage(kAccount, "app", oci::Digest::Of(child)).status().code(),
            Code::kManifestUnknown);
}

TEST_F(ImagesTest, PullsAreRecordedInMemoryThenFlushed) {
  Repo("app");
  std::string m = ImageManifest("app", "one");
  ASSERT_TRUE(PushV2("app", "v1", m).ok());
  oci::Digest d = oci::Digest::Of(m);
  EXPECT_EQ(reg_->DescribeImage(kAccount, "app", d)->last_pulled_at_ms, 0);
  clock_.Advance(5000);
  reg_->RecordPull("app", d);
  // Visible at once, though not yet written.
  EXPECT_EQ(reg_->DescribeImage(kAccount, "app", d)->last_pulled_at_ms, 1'700'000'005'000);
  EXPECT_EQ(meta_->GetImage("app", d)->last_pulled_at_ms, 0);
  ASSERT_TRUE(reg_->FlushPulls().ok());
  EXPECT_EQ(meta_->GetImage("app", d)->last_pulled_at_ms, 1'700'000'005'000);
  Reopen(true);
  auto listed = reg_->ListImages(kAccount, "app", storage::TagFilter::kAny, "", 10);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->front().last_pulled_at_ms, 1'700'000'005'000);
  ASSERT_TRUE(reg_->FlushPulls().ok());  // nothing pending
}

TEST_F(ImagesTest, LayerUploadRules) {
  Repo("app");
  auto empty = reg_->StartUpload("app");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(
      reg_->CompleteLayerUpload(kAccount, "app", empty->id, {oci::Digest::Of("")}).status().code(),
      Code::kSizeInvalid);
  auto up = reg_->StartUpload("app");
  ASSERT_TRUE(up.ok());
  auto wrong = reg_->UploadLayerPart(kAccount, "app", up->id, 4, "data");
  EXPECT_EQ(wrong.status().code(), Code::kRangeInvalid);
  EXPECT_EQ(wrong.status().detail(), "0");
  EXPECT_EQ(*reg_->UploadLayerPart(kAccount, "app", up->id, 0, "hello "), 6u);
  EXPECT_EQ(*reg_->UploadLayerPart(kAccount, "app", up->id, 6, "world"), 11u);
  EXPECT_EQ(
      reg_->CompleteLayerUpload(kAccount, "app", up->id, {oci::Digest::Of("nope")}).status().code(),
      Code::kDigestInvalid);
  // The first listed digest that matches is the layer's.
  auto blob = reg_->CompleteLayerUpload(kAccount, "app", up->id,
                                        {oci::Digest::Of("nope"), oci::Digest::Of("hello world")});
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_EQ(blob->digest, oci::Digest::Of("hello world"));
  // Uploading it again: the layer already exists.
  auto again = reg_->StartUpload("app");
  ASSERT_TRUE(reg_->UploadLayerPart(kAccount, "app", again->id, 0, "hello world").ok());
  EXPECT_EQ(reg_->CompleteLayerUpload(kAccount, "app", again->id, {oci::Digest::Of("hello world")})
                .status()
                .code(),
            Code::kAlreadyExists);
}

}  // namespace
}  // namespace berth::registry
