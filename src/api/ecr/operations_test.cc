#include "api/ecr/operations.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

namespace berth::api::ecr {
namespace {

namespace json = boost::json;

TEST(OperationsTest, EveryOperationDeclaresItsActionAndHandler) {
  std::set<std::string_view> names;
  for (const OperationInfo& op : Operations()) {
    EXPECT_TRUE(names.insert(op.name).second) << "duplicate " << op.name;
    EXPECT_EQ(op.action, "ecr:" + std::string(op.name));
    EXPECT_NE(op.handler, nullptr) << op.name;
    EXPECT_EQ(FindOperation(std::string(kTargetPrefix) + std::string(op.name)), &op);
  }
  EXPECT_EQ(names.size(), 21u);
  EXPECT_EQ(FindOperation("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken")->resource,
            ResourceKind::kAccount);
  EXPECT_EQ(FindOperation("AmazonEC2ContainerRegistry_V20150921.DescribeImages")->resource,
            ResourceKind::kRepository);
  EXPECT_EQ(FindOperation("AmazonEC2ContainerRegistry_V20150921.TagResource")->resource,
            ResourceKind::kResourceArn);
}

TEST(OperationsTest, UnknownTargets) {
  EXPECT_EQ(FindOperation(""), nullptr);
  EXPECT_EQ(FindOperation("DescribeImages"), nullptr);
  EXPECT_EQ(FindOperation("AmazonEC2ContainerRegistry_V20150921.NoSuchThing"), nullptr);
  EXPECT_EQ(FindOperation("AmazonEC2ContainerRegistry_V20150921.describeimages"), nullptr);
  EXPECT_EQ(FindOperation("DynamoDB_20120810.DescribeImages"), nullptr);
}

TEST(OperationsTest, RepositoryArns) {
  EXPECT_EQ(RepositoryArn("us-east-1", "000000000000", "team/app"),
            "arn:aws:ecr:us-east-1:000000000000:repository/team/app");
  auto parts = ParseRepositoryArn("arn:aws:ecr:eu-west-1:123456789012:repository/a/b");
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->region, "eu-west-1");
  EXPECT_EQ(parts->account, "123456789012");
  EXPECT_EQ(parts->name, "a/b");
  for (std::string_view bad :
       {"", "arn:aws:s3:::bucket", "arn:aws:ecr:us-east-1:12:repository/a",
        "arn:aws:ecr:us-east-1:123456789012:repository/",
        "arn:aws:ecr:us-east-1:123456789012:cluster/a", "arn:aws:ecr::123456789012:repository/a"}) {
    auto r = ParseRepositoryArn(bad);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("resourceArn"), std::string::npos);
  }
}

TEST(OperationsTest, AccountOfACall) {
  const OperationInfo& describe =
      *FindOperation("AmazonEC2ContainerRegistry_V20150921.DescribeImages");
  const OperationInfo& tag = *FindOperation("AmazonEC2ContainerRegistry_V20150921.TagResource");
  const OperationInfo& token =
      *FindOperation("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken");
  json::object plain{{"repositoryName", "a/b"}};
  EXPECT_EQ(*AccountOf(describe, plain, "111111111111"), "111111111111");
  json::object other{{"repositoryName", "a/b"}, {"registryId", "222222222222"}};
  EXPECT_EQ(*AccountOf(describe, other, "111111111111"), "222222222222");
  json::object bad{{"registryId", "22"}};
  EXPECT_EQ(AccountOf(describe, bad, "111111111111").status().code(), Code::kInvalidArgument);
  json::object arn{{"resourceArn", "arn:aws:ecr:us-east-1:333333333333:repository/x"}};
  EXPECT_EQ(*AccountOf(tag, arn, "111111111111"), "333333333333");
  EXPECT_EQ(*AccountOf(token, json::object{}, "111111111111"), "111111111111");
}

TEST(OperationsTest, ResourcesOfACall) {
  auto op = [](std::string_view name) {
    std::string target(kTargetPrefix);
    target.append(name);
    return *FindOperation(target);
  };
  EXPECT_EQ(*ResourcesOf(op("GetAuthorizationToken"), {}, "111111111111", "us-east-1"),
            (std::vector<std::string>{"*"}));
  EXPECT_EQ(*ResourcesOf(op("PutImage"), json::object{{"repositoryName", "team/app"}},
                         "111111111111", "us-east-1"),
            (std::vector<std::string>{"arn:aws:ecr:us-east-1:111111111111:repository/team/app"}));
  EXPECT_EQ(*ResourcesOf(op("DescribeRepositories"), {}, "111111111111", "us-east-1"),
            (std::vector<std::string>{"*"}));
  json::object names{{"repositoryNames", json::array{"a1", "b2"}}};
  EXPECT_EQ(*ResourcesOf(op("DescribeRepositories"), names, "111111111111", "eu-west-1"),
            (std::vector<std::string>{"arn:aws:ecr:eu-west-1:111111111111:repository/a1",
                                      "arn:aws:ecr:eu-west-1:111111111111:repository/b2"}));
  json::object arn{{"resourceArn", "arn:aws:ecr:us-east-1:333333333333:repository/x1"}};
  EXPECT_EQ(*ResourcesOf(op("ListTagsForResource"), arn, "333333333333", "us-east-1"),
            (std::vector<std::string>{"arn:aws:ecr:us-east-1:333333333333:repository/x1"}));
  // A missing repositoryName is a bad request before anything else.
  EXPECT_EQ(ResourcesOf(op("PutImage"), {}, "111111111111", "us-east-1").status().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace berth::api::ecr
