// The registry's repository rules for the ECR control plane: accounts, attributes,
// policies, resource tags, and ECR's wording of a missing repository on /v2 too.
#include <gtest/gtest.h>

#include "registry/ecr_test_fixture.h"

namespace berth::registry {
namespace {

using storage::TagMutability;
using testing::EcrRegistryTest;
using testing::kAccount;

using RepositoriesTest = EcrRegistryTest;

TEST_F(RepositoriesTest, CreateRecordsTheDefaultAccountAndSortsTags) {
  storage::RepositoryRecord r;
  r.name = "team/app";
  r.tags = {{"b", "2"}, {"a", "1"}};
  auto created = reg_->CreateRepository(r);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->account_id, kAccount);
  EXPECT_EQ(created->created_at_ms, 1'700'000'000'000);
  auto got = reg_->GetRepository(kAccount, "team/app");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->tags, (std::vector<storage::ResourceTag>{{"a", "1"}, {"b", "2"}}));
  auto again = reg_->CreateRepository(r);
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(again.status().message(),
            "The repository with name 'team/app' already exists in the "
            "registry with id '111111111111'");
  EXPECT_EQ(reg_->CreateRepository({"Bad/Name"}).status().code(), Code::kNameInvalid);
}

TEST_F(RepositoriesTest, AnotherAccountsRepositoryIsNotFound) {
  storage::RepositoryRecord r;
  r.name = "theirs";
  r.account_id = "222222222222";
  ASSERT_TRUE(reg_->CreateRepository(r).ok());
  Repo("mine");
  auto got = reg_->GetRepository(kAccount, "theirs");
  EXPECT_EQ(got.status().code(), Code::kNameUnknown);
  EXPECT_EQ(got.status().message(),
            "The repository with name 'theirs' does not exist in the "
            "registry with id '111111111111'");
  EXPECT_TRUE(reg_->GetRepository("222222222222", "theirs").ok());
  auto mine = reg_->ListRepositories(kAccount, "", 10);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ(mine->front().name, "mine");
  EXPECT_EQ(reg_->DeleteRepository(kAccount, "theirs", true).status().code(), Code::kNameUnknown);
  EXPECT_EQ(reg_->ListImages(kAccount, "theirs", storage::TagFilter::kAny, "", 10).status().code(),
            Code::kNameUnknown);
}

TEST_F(RepositoriesTest, RepositoriesFromBeforeAccountsAreAdopted) {
  ASSERT_TRUE(meta_->CreateRepository({"legacy", 1}).ok());
  EXPECT_EQ(reg_->GetRepository(kAccount, "legacy").status().code(), Code::kNameUnknown);
  ASSERT_TRUE(reg_->AdoptUnownedRepositories().ok());
  EXPECT_TRUE(reg_->GetRepository(kAccount, "legacy").ok());
}

TEST_F(RepositoriesTest, MissingRepositoryOnV2UsesEcrWording) {
  Reopen(false);
  auto up = reg_->StartUpload("nosuch/repo");
  EXPECT_EQ(up.status().code(), Code::kNameUnknown);
  EXPECT_EQ(up.status().message(),
            "The repository with name 'nosuch/repo' does not exist in the "
            "registry with id '111111111111'");
  EXPECT_EQ(reg_->ListTags("nosuch/repo", "", 10).status().message(), up.status().message());
  // With create_on_push, the push creates it in the default account.
  Reopen(true);
  ASSERT_TRUE(reg_->StartUpload("nosuch/repo").ok());
  EXPECT_TRUE(reg_->GetRepository(kAccount, "nosuch/repo").ok());
}

TEST_F(RepositoriesTest, DeleteNeedsForceWhileImagesRemain) {
  Repo("app");
  ASSERT_TRUE(PushV2("app", "v1", ImageManifest("app", "one")).ok());
  auto refused = reg_->DeleteRepository(kAccount, "app", false);
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("still contains images"), std::string::npos);
  auto deleted = reg_->DeleteRepository(kAccount, "app", true);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->name, "app");
  EXPECT_EQ(reg_->GetRepository(kAccount, "app").status().code(), Code::kNameUnknown);
}

TEST_F(RepositoriesTest, PullAfterTheRepositoryWasDeletedIsNameUnknown) {
  Repo("app");
  std::string m = ImageManifest("app", "one");
  ASSERT_TRUE(PushV2("app", "v1", m).ok());
  oci::Reference tag{std::string("v1")};
  ASSERT_TRUE(reg_->GetManifest("app", tag).ok());
  ASSERT_NE(reg_->CachedManifest("app", tag), nullptr);
  ASSERT_TRUE(reg_->DeleteRepository(kAccount, "app", true).ok());
  EXPECT_EQ(reg_->CachedManifest("app", tag), nullptr);
  EXPECT_EQ(reg_->CachedManifest("app", oci::Reference{oci::Digest::Of(m)}), nullptr);
  EXPECT_EQ(reg_->GetManifest("app", tag).status().code(), Code::kNameUnknown);
}

TEST_F(RepositoriesTest, SetTagMutabilityReturnsTheUpdatedRepository) {
  Repo("app");
  auto r = reg_->SetTagMutability(kAccount, "app", {TagMutability::kImmutable, {}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tag_mutability.mode, TagMutability::kImmutable);
  EXPECT_EQ(reg_->GetRepository(kAccount, "app")->tag_mutability.mode, TagMutability::kImmutable);
}

TEST_F(RepositoriesTest, PoliciesMustLookLikePolicies) {
  Repo("app");
  EXPECT_EQ(reg_->GetRepositoryPolicy(kAccount, "app").status().code(), Code::kNotFound);
  EXPECT_EQ(reg_->DeleteRepositoryPolicy(kAccount, "app").status().code(), Code::kNotFound);
  for (std::string_view bad :
       {"", "not json", "[]", R"({"Version":"2012-10-17"})", R"({"Statement":"x"})"}) {
    EXPECT_EQ(reg_->SetRepositoryPolicy(kAccount, "app", bad).code(), Code::kInvalidArgument)
        << bad;
  }
  std::string policy = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]})";
  ASSERT_TRUE(reg_->SetRepositoryPolicy(kAccount, "app", policy).ok());
  EXPECT_EQ(*reg_->GetRepositoryPolicy(kAccount, "app"), policy);
  EXPECT_EQ(*reg_->DeleteRepositoryPolicy(kAccount, "app"), policy);
  auto none = reg_->GetRepositoryPolicy(kAccount, "app");
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  EXPECT_NE(none.status().message().find("Repository policy does not exist"), std::string::npos);
}

TEST_F(RepositoriesTest, ResourceTagsAreLimited) {
  Repo("app");
  ASSERT_TRUE(reg_->TagRepository(kAccount, "app", {{"k", "v"}}).ok());
  std::vector<storage::ResourceTag> many;
  for (int i = 0; i < 50; ++i) many.push_back({"t" + std::to_string(i), ""});
  EXPECT_EQ(reg_->TagRepository(kAccount, "app", many).code(), Code::kOutOfRange);
  ASSERT_TRUE(reg_->UntagRepository(kAccount, "app", {"k"}).ok());
  ASSERT_TRUE(reg_->TagRepository(kAccount, "app", many).ok());
  EXPECT_EQ(reg_->GetRepository(kAccount, "app")->tags.size(), 50u);
}

}  // namespace
}  // namespace berth::registry
