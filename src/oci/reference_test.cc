#include "oci/reference.h"

#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <string>

namespace berth::oci {
namespace {

// Asserts `name` is rejected with kNameInvalid and a message containing `why`.
void ExpectBadName(std::string_view name, std::string_view why) {
  Status s = ValidateRepositoryName(name);
  ASSERT_FALSE(s.ok()) << "accepted '" << name << "'";
  EXPECT_EQ(s.code(), Code::kNameInvalid) << s.ToString();
  EXPECT_NE(s.message().find(why), std::string::npos)
      << "name '" << name << "': message '" << s.message() << "' lacks '" << why << "'";
}

void ExpectBadTag(std::string_view tag, std::string_view why) {
  Status s = ValidateTag(tag);
  ASSERT_FALSE(s.ok()) << "accepted '" << tag << "'";
  EXPECT_EQ(s.code(), Code::kTagInvalid) << s.ToString();
  EXPECT_NE(s.message().find(why), std::string::npos)
      << "tag '" << tag << "': message '" << s.message() << "' lacks '" << why << "'";
}

TEST(ValidateRepositoryName, AcceptsNamesFromTheGrammar) {
  for (std::string_view name : {"a", "0", "library/ubuntu", "my-org/my-app", "a.b", "a_b", "a__b",
                                "a-b", "a--b", "a---------b", "a/b/c/d/e", "foo.bar_baz-qux/x0",
                                "123/456", "a.b.c", "a_b_c", "team__x/app.v2"}) {
    Status s = ValidateRepositoryName(name);
    EXPECT_TRUE(s.ok()) << name << ": " << s.ToString();
  }
}

TEST(ValidateRepositoryName, RejectsEmpty) { ExpectBadName("", "empty"); }

TEST(ValidateRepositoryName, RejectsUpperCase) {
  ExpectBadName("Library/ubuntu", "lower case");
  ExpectBadName("library/Ubuntu", "lower case");
  ExpectBadName("ABC", "lower case");
}

TEST(ValidateRepositoryName, RejectsLeadingOrTrailingSlash) {
  ExpectBadName("/library", "must not start or end with '/'");
  ExpectBadName("library/", "must not start or end with '/'");
  ExpectBadName("/", "must not start or end with '/'");
}

TEST(ValidateRepositoryName, RejectsDoubledSlash) { ExpectBadName("a//b", "'//'"); }

TEST(ValidateRepositoryName, RejectsDotDot) {
  ExpectBadName("a..b", "'..'");
  ExpectBadName("a/../b", "'..'");
  ExpectBadName("..", "'..'");
}

TEST(ValidateRepositoryName, AcceptsExactly255CharactersRejects256) {
  std::string name(255, 'a');
  name[100] = '/';
  EXPECT_TRUE(ValidateRepositoryName(name).ok());
  ExpectBadName(name + "a", "longer than 255 characters");
  ExpectBadName(std::string(100000, 'a'), "longer than 255 characters");
}

TEST(ValidateRepositoryName, TooLongMessageDoesNotEchoTheWholeName) {
  Status s = ValidateRepositoryName(std::string(100000, 'a'));
  EXPECT_LE(s.message().size() + s.detail().size(), 1024u);
}

TEST(ValidateRepositoryName, AllowsOneOrTwoUnderscoresNotThree) {
  EXPECT_TRUE(ValidateRepositoryName("a_b").ok());
  EXPECT_TRUE(ValidateRepositoryName("a__b").ok());
  ExpectBadName("a___b", "'_'");
}

TEST(ValidateRepositoryName, RejectsMixedSeparators) {
  ExpectBadName("a.-b", "'.-'");
  ExpectBadName("a-.b", "'-.'");
  ExpectBadName("a_.b", "'_.'");
  ExpectBadName("a-_b", "'-_'");
}

TEST(ValidateRepositoryName, ComponentsMustStartAndEndAlphanumeric) {
  ExpectBadName("-a", "must start with");
  ExpectBadName("_a", "must start with");
  ExpectBadName(".a", "must start with");
  ExpectBadName("a-", "must end with");
  ExpectBadName("a.", "must end with");
  ExpectBadName("a/-b", "must start with");
  ExpectBadName("a_/b", "must end with");
}

TEST(ValidateRepositoryName, RejectsCharactersOutsideTheAlphabet) {
  ExpectBadName("a b", "invalid character 0x20");
  ExpectBadName("a:b", "invalid character ':'");
  ExpectBadName("a@b", "invalid character '@'");
  ExpectBadName("a\\b", "invalid character");
  ExpectBadName(std::string("a\0b", 3), "0x00");
  ExpectBadName("caf\xc3\xa9", "0xc3");
}

TEST(ValidateRepositoryName, ErrorDetailCarriesTheName) {
  EXPECT_EQ(ValidateRepositoryName("a//b").detail(), "a//b");
}

// The hand-written parser must agree with the spec's regular expression on every
// short string over an alphabet that exercises all the separator rules.
TEST(ValidateRepositoryName, AgreesWithSpecRegexOnRandomNames) {
  const std::regex grammar(
      "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*");
  constexpr std::string_view kAlphabet = "ab0._-/A";
  std::mt19937 rng(42);
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string name(rng() % 10, ' ');
    for (char& c : name) c = kAlphabet[rng() % kAlphabet.size()];
    bool want = std::regex_match(name, grammar);
    Status got = ValidateRepositoryName(name);
    ASSERT_EQ(got.ok(), want) << "'" << name << "': " << got.ToString();
    if (!got.ok()) {
      EXPECT_EQ(got.code(), Code::kNameInvalid);
    }
    accepted += want;
  }
  EXPECT_GT(accepted, 1000);  // the sample really covers valid names too
}

TEST(ValidateTag, AcceptsTagsFromTheGrammar) {
  for (std::string_view tag :
       {"latest", "v1.2.3", "1.0", "_private", "A", "UPPER-lower_1.2", "sha256-abcdef.sig", "0"}) {
    Status s = ValidateTag(tag);
    EXPECT_TRUE(s.ok()) << tag << ": " << s.ToString();
  }
}

TEST(ValidateTag, Accepts128CharactersRejects129) {
  EXPECT_TRUE(ValidateTag(std::string(128, 'x')).ok());
  ExpectBadTag(std::string(129, 'x'), "longer than 128");
}

TEST(ValidateTag, RejectsLeadingDotOrDash) {
  ExpectBadTag(".hidden", "must start with");
  ExpectBadTag("-flag", "must start with");
}

TEST(ValidateTag, RejectsEmptyAndInvalidCharacters) {
  ExpectBadTag("", "empty");
  ExpectBadTag("v1:2", "invalid character ':'");
  ExpectBadTag("a/b", "invalid character '/'");
  ExpectBadTag("a+b", "invalid character '+'");
  ExpectBadTag("v1 ", "invalid character 0x20");
}

TEST(ValidateTag, AgreesWithSpecRegexOnRandomTags) {
  const std::regex grammar("[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");
  constexpr std::string_view kAlphabet = "aZ0._-:/";
  std::mt19937 rng(7);
  for (int i = 0; i < 50000; ++i) {
    std::string tag(rng() % 6, ' ');
    for (char& c : tag) c = kAlphabet[rng() % kAlphabet.size()];
    ASSERT_EQ(ValidateTag(tag).ok(), std::regex_match(tag, grammar)) << "'" << tag << "'";
  }
}

TEST(ParseReference, TagWithoutColon) {
  Result<Reference> r = ParseReference("v1.0");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->is_digest());
  EXPECT_EQ(r->tag(), "v1.0");
  EXPECT_EQ(r->str(), "v1.0");
}

TEST(ParseReference, DigestWhenColonPresent) {
  constexpr char kDigest[] =
      "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  Result<Reference> r = ParseReference(kDigest);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->is_digest());
  EXPECT_EQ(r->digest(), Digest::Of(""));
  EXPECT_EQ(r->str(), kDigest);
}

TEST(ParseReference, ColonMeansDigestSoBadDigestIsDigestInvalid) {
  Result<Reference> r = ParseReference("sha256:nothex");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDigestInvalid);
  r = ParseReference("v1:latest");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDigestInvalid);
}

TEST(ParseReference, BadTagIsTagInvalid) {
  Result<Reference> r = ParseReference("-bad");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTagInvalid);
  r = ParseReference("");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTagInvalid);
}

}  // namespace
}  // namespace berth::oci
