// The shapes several ECR operations share: tag mutability, resource tags, pages,
// timestamps, URIs.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/ecr/handlers.h"
#include "api/ecr/pagination.h"

namespace berth::api::ecr {
namespace {

using storage::TagMutability;

json::object Parse(std::string_view text) { return json::parse(text).as_object(); }

TEST(DecodeTagMutabilityTest, ModesAndExclusionFilters) {
  auto decode = [](std::string_view text, bool required = false) {
    json::object o = Parse(text);
    return DecodeTagMutability(Reader(o), required);
  };
  EXPECT_EQ(decode("{}")->mode, TagMutability::kMutable);
  EXPECT_EQ(decode(R"({"imageTagMutability":"IMMUTABLE"})")->mode, TagMutability::kImmutable);
  auto with = decode(R"({"imageTagMutability":"IMMUTABLE_WITH_EXCLUSION",
      "imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"latest"},
                                            {"filterType":"WILDCARD","filter":"dev-*"}]})");
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  EXPECT_EQ(with->mode, TagMutability::kImmutableWithExclusion);
  EXPECT_EQ(with->exclusion_filters, (std::vector<std::string>{"latest", "dev-*"}));
  EXPECT_EQ(decode(R"({"imageTagMutability":"MUTABLE_WITH_EXCLUSION",
      "imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"r*"}]})")
                ->mode,
            TagMutability::kMutableWithExclusion);
  // Every rule of the model, each named.
  struct Bad {
    const char* json;
    const char* member;
  };
  for (const Bad& b : {
           Bad{R"({"imageTagMutability":"SOMETIMES"})", "imageTagMutability"},
           Bad{R"({"imageTagMutability":"IMMUTABLE_WITH_EXCLUSION"})",
               "imageTagMutabilityExclusionFilters"},
           Bad{R"({"imageTagMutability":"IMMUTABLE","imageTagMutabilityExclusionFilters":
                [{"filterType":"WILDCARD","filter":"x"}]})",
               "imageTagMutabilityExclusionFilters"},
           Bad{R"({"imageTagMutability":"MUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters":[]})",
               "imageTagMutabilityExclusionFilters"},
           Bad{R"({"imageTagMutability":"MUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters":[{"filterType":"REGEX","filter":"x"}]})",
               "imageTagMutabilityExclusionFilters[0].filterType"},
           Bad{R"({"imageTagMutability":"MUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"a b"}]})",
               "imageTagMutabilityExclusionFilters[0].filter"},
           Bad{R"({"imageTagMutability":"MUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD"}]})",
               "imageTagMutabilityExclusionFilters[0].filter"},
       }) {
    auto r = decode(b.json);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << b.json;
    EXPECT_NE(r.status().message().find(std::string("'") + b.member + "'"), std::string::npos)
        << r.status().message();
  }
  std::string six = R"({"imageTagMutability":"MUTABLE_WITH_EXCLUSION",
      "imageTagMutabilityExclusionFilters":[)";
  for (int i = 0; i < 6; ++i)
    six += std::string(i ? "," : "") + R"({"filterType":"WILDCARD","filter":"a"})";
  EXPECT_FALSE(decode(six + "]}").ok());
  EXPECT_EQ(decode("{}", true).status().code(), Code::kInvalidArgument);  // PutImageTagMutability
}

TEST(DecodeResourceTagsTest, Rules) {
  auto decode = [](std::string_view text) {
    json::object o = Parse(text);
    return DecodeResourceTags(Reader(o), "tags");
  };
  auto ok = decode(R"({"tags":[{"Key":"env","Value":"prod"},{"Key":"empty","Value":""}]})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, (std::vector<storage::ResourceTag>{{"env", "prod"}, {"empty", ""}}));
  EXPECT_TRUE(decode("{}")->empty());
  for (std::string_view bad : {
           R"({"tags":[{"Key":"","Value":"x"}]})",
           R"({"tags":[{"Value":"x"}]})",
           R"({"tags":[{"Key":"k"}]})",
           R"({"tags":[{"Key":"aws:reserved","Value":"x"}]})",
           R"({"tags":[{"Key":"k","Value":"1"},{"Key":"k","Value":"2"}]})",
       }) {
    EXPECT_EQ(decode(bad).status().code(), Code::kTagInvalid) << bad;
  }
  EXPECT_EQ(
      decode(R"({"tags":[{"Key":")" + std::string(129, 'k') + R"(","Value":""}]})").status().code(),
      Code::kTagInvalid);
  EXPECT_EQ(decode(R"({"tags":[{"Key":"k","Value":")" + std::string(257, 'v') + R"("}]})")
                .status()
                .code(),
            Code::kTagInvalid);
  std::string many = R"({"tags":[)";
  for (int i = 0; i < 51; ++i) {
    many += std::string(i ? "," : "") + R"({"Key":"k)" + std::to_string(i) + R"(","Value":""})";
  }
  EXPECT_EQ(decode(many + "]}").status().code(), Code::kOutOfRange);
}

TEST(DecodePageTest, MaxResultsAndToken) {
  json::object none;
  auto p = DecodePage(Reader(none), "s", 100);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->limit, 100u);
  EXPECT_TRUE(p->after.empty());
  json::object given{{"maxResults", 1000}, {"nextToken", EncodePageToken("s", {"k"})}};
  p = DecodePage(Reader(given), "s", 100);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->limit, 1000u);
  EXPECT_EQ(p->after, (std::vector<std::string>{"k"}));
  for (int64_t bad : {0, 1001, -5}) {
    json::object o{{"maxResults", bad}};
    EXPECT_EQ(DecodePage(Reader(o), "s", 100).status().code(), Code::kInvalidArgument) << bad;
  }
  json::object wrong{{"nextToken", EncodePageToken("other", {"k"})}};
  EXPECT_EQ(DecodePage(Reader(wrong), "s", 100).status().code(), Code::kInvalidArgument);
}

TEST(ShapesTest, TimestampsAreEpochSeconds) {
  EXPECT_EQ(Timestamp(1'700'000'000'000), json::value(1'700'000'000));
  EXPECT_DOUBLE_EQ(Timestamp(1'700'000'000'250).as_double(), 1'700'000'000.25);
}

TEST(ShapesTest, RepositoryShape) {
  EcrOptions options;
  options.public_url = "https://registry.example.com:8443";
  options.region = "eu-west-1";
  EXPECT_EQ(RepositoryUri(options, "team/app"), "registry.example.com:8443/team/app");
  storage::RepositoryRecord repo;
  repo.name = "team/app";
  repo.account_id = "123456789012";
  repo.created_at_ms = 1'700'000'000'500;
  repo.tag_mutability = {TagMutability::kMutableWithExclusion, {"v*"}};
  json::object r = RepositoryShape(repo, options);
  EXPECT_EQ(r["repositoryArn"], "arn:aws:ecr:eu-west-1:123456789012:repository/team/app");
  EXPECT_EQ(r["registryId"], "123456789012");
  EXPECT_EQ(r["repositoryUri"], "registry.example.com:8443/team/app");
  EXPECT_DOUBLE_EQ(r["createdAt"].as_double(), 1'700'000'000.5);
  EXPECT_EQ(r["imageTagMutability"], "MUTABLE_WITH_EXCLUSION");
  EXPECT_EQ(r["imageTagMutabilityExclusionFilters"],
            json::parse(R"([{"filterType":"WILDCARD","filter":"v*"}])"));
  EXPECT_EQ(r["imageScanningConfiguration"], json::parse(R"({"scanOnPush":false})"));
  EXPECT_EQ(r["encryptionConfiguration"], json::parse(R"({"encryptionType":"AES256"})"));
}

}  // namespace
}  // namespace berth::api::ecr
