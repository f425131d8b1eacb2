#include "api/ecr/fields.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace berth::api::ecr {
namespace {

namespace json = boost::json;

json::object Parse(std::string_view text) { return json::parse(text).as_object(); }

// The status is an InvalidParameterException naming `path`.
void ExpectInvalid(const Status& st, std::string_view path) {
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("'" + std::string(path) + "'"), std::string::npos) << st.message();
}

TEST(ReaderTest, StringsWithLengths) {
  json::object o = Parse(R"({"a":"xyz","n":5,"nul":null})");
  Reader in(o);
  EXPECT_EQ(*in.String("a"), "xyz");
  EXPECT_EQ(**in.OptString("a", 1, 3), "xyz");
  EXPECT_FALSE(in.OptString("missing")->has_value());
  EXPECT_FALSE(in.OptString("nul")->has_value());  // null is absent
  ExpectInvalid(in.String("missing").status(), "missing");
  EXPECT_NE(in.String("missing").status().message().find("must not be null"), std::string::npos);
  ExpectInvalid(in.String("n").status(), "n");
  ExpectInvalid(in.String("a", 4).status(), "a");
  ExpectInvalid(in.String("a", 0, 2).status(), "a");
}

TEST(ReaderTest, IntegersWithRanges) {
  json::object o = Parse(R"({"m":1000,"z":0,"neg":-1,"big":18446744073709551615,"s":"1","f":1.5})");
  Reader in(o);
  EXPECT_EQ(**in.OptInteger("m", 1, 1000), 1000);
  ExpectInvalid(in.OptInteger("z", 1, 1000).status(), "z");
  ExpectInvalid(in.OptInteger("neg", 0, 10).status(), "neg");
  ExpectInvalid(in.OptInteger("big", 0, INT64_MAX).status(), "big");
  ExpectInvalid(in.OptInteger("s", 0, 10).status(), "s");
  ExpectInvalid(in.OptInteger("f", 0, 10).status(), "f");
  EXPECT_FALSE(in.OptInteger("missing", 0, 1)->has_value());
  ExpectInvalid(in.Integer("missing", 0, 1).status(), "missing");
  EXPECT_NE(in.OptInteger("m", 1, 100).status().message().find("less than or equal to 100"),
            std::string::npos);
}

TEST(ReaderTest, BoolsEnumsListsStructs) {
  json::object o = Parse(
      R"({"b":true,"bs":"true","e":"TAGGED","bad":"SOME","l":[1,2],"o":{"x":"y"},"lo":"no"})");
  Reader in(o);
  EXPECT_TRUE(*in.Bool("b", false));
  EXPECT_FALSE(*in.Bool("missing", false));
  ExpectInvalid(in.Bool("bs", false).status(), "bs");
  constexpr std::string_view kValues[] = {"TAGGED", "UNTAGGED"};
  EXPECT_EQ(**in.OptEnum("e", kValues), "TAGGED");
  auto bad = in.OptEnum("bad", kValues);
  ExpectInvalid(bad.status(), "bad");
  EXPECT_NE(bad.status().message().find("[TAGGED, UNTAGGED]"), std::string::npos);
  EXPECT_EQ((*in.List("l", 1, 2))->size(), 2u);
  ExpectInvalid(in.List("l", 3, 5).status(), "l");
  ExpectInvalid(in.List("l", 0, 1).status(), "l");
  ExpectInvalid(in.List("lo", 0, 1).status(), "lo");
  EXPECT_EQ(*in.OptList("missing", 1, 2), nullptr);
  ExpectInvalid(in.List("missing", 1, 2).status(), "missing");
  auto s = in.OptStruct("o");
  ASSERT_TRUE(s.ok() && s->has_value());
  EXPECT_EQ(*(*s)->String("x"), "y");
  ExpectInvalid((*s)->String("q").status(), "o.q");  // nested paths
  ExpectInvalid(in.OptStruct("b").status(), "b");
}

TEST(ReaderTest, ListItemsAreNamedByIndex) {
  json::object o = Parse(R"({"ids":[{"imageTag":"a"},7],"names":["ab",3,null]})");
  Reader in(o);
  const json::array& ids = **in.List("ids", 1, 10);
  auto first = in.StructItem(ids, 0, "ids");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first->String("imageTag"), "a");
  ExpectInvalid(first->String("imageDigest").status(), "ids[0].imageDigest");
  ExpectInvalid(in.StructItem(ids, 1, "ids").status(), "ids[1]");
  const json::array& names = **in.List("names", 1, 10);
  EXPECT_EQ(*in.StringItem(names, 0, "names", 2, 256), "ab");
  ExpectInvalid(in.StringItem(names, 0, "names", 3, 256).status(), "names[0]");
  ExpectInvalid(in.StringItem(names, 1, "names").status(), "names[1]");
  ExpectInvalid(in.StringItem(names, 2, "names").status(), "names[2]");
}

TEST(MemberTest, RepositoryName) {
  auto name = [](std::string_view n) {
    json::object o{{"repositoryName", n}};
    return RepositoryNameMember(Reader(o));
  };
  EXPECT_EQ(*name("team/app-1.x"), "team/app-1.x");
  EXPECT_EQ(*name("ab"), "ab");
  ExpectInvalid(name("a").status(), "repositoryName");  // ECR: at least 2 characters
  ExpectInvalid(name("Team/App").status(), "repositoryName");
  ExpectInvalid(name("team//app").status(), "repositoryName");
  ExpectInvalid(name(std::string(257, 'a')).status(), "repositoryName");
  json::object none;
  ExpectInvalid(RepositoryNameMember(Reader(none)).status(), "repositoryName");
}

TEST(MemberTest, RegistryIdAndDigest) {
  json::object ok{{"registryId", "123456789012"}, {"d", "sha256:" + std::string(64, 'a')}};
  EXPECT_EQ(**RegistryIdMember(Reader(ok)), "123456789012");
  EXPECT_EQ(DigestMember(Reader(ok), "d")->str(), "sha256:" + std::string(64, 'a'));
  json::object bad{{"registryId", "12345678901a"}, {"d", "sha256:abc"}};
  ExpectInvalid(RegistryIdMember(Reader(bad)).status(), "registryId");
  ExpectInvalid(DigestMember(Reader(bad), "d").status(), "d");
  json::object none;
  EXPECT_FALSE(RegistryIdMember(Reader(none))->has_value());
}

}  // namespace
}  // namespace berth::api::ecr
