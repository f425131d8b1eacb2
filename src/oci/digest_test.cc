#include "oci/digest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <unordered_set>

namespace berth::oci {
namespace {

using namespace std::string_view_literals;

constexpr char kEmptySha256[] =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kEmptySha512[] =
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
constexpr char kAbcSha256[] =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(DigestOf, EmptyInputMatchesKnownSha256) {
  Digest d = Digest::Of("");
  EXPECT_EQ(d.str(), kEmptySha256);
  EXPECT_EQ(d.algorithm(), DigestAlgorithm::kSha256);
  EXPECT_EQ(d.algorithm_name(), "sha256");
  EXPECT_EQ(d.hex(), std::string(kEmptySha256).substr(7));
}

TEST(DigestOf, EmptyInputMatchesKnownSha512) {
  Digest d = Digest::Of("", DigestAlgorithm::kSha512);
  EXPECT_EQ(d.str(), kEmptySha512);
  EXPECT_EQ(d.algorithm(), DigestAlgorithm::kSha512);
  EXPECT_EQ(d.hex().size(), 128u);
}

TEST(DigestOf, AbcMatchesKnownSha256) { EXPECT_EQ(Digest::Of("abc").str(), kAbcSha256); }

TEST(Hasher, StreamingInPiecesEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data += static_cast<char>('a' + i % 26);
  Hasher h;
  // Uneven piece sizes so pieces straddle the 64-byte SHA-256 block boundary.
  constexpr size_t kPieces[] = {1, 63, 64, 65, 1000, 4097};
  size_t pos = 0;
  for (size_t i = 0; pos < data.size(); ++i) {
    size_t n = std::min(kPieces[i % std::size(kPieces)], data.size() - pos);
    h.Update(std::string_view(data).substr(pos, n));
    pos += n;
  }
  EXPECT_EQ(h.size(), data.size());
  EXPECT_EQ(h.Peek(), Digest::Of(data));
}

TEST(Hasher, StreamingSha512EqualsOneShot) {
  std::string data(1000, 'x');
  Hasher h(DigestAlgorithm::kSha512);
  h.Update(std::string_view(data).substr(0, 333));
  h.Update(std::string_view(data).substr(333));
  EXPECT_EQ(h.Peek(), Digest::Of(data, DigestAlgorithm::kSha512));
}

TEST(Hasher, PeekDoesNotDisturbFurtherUpdates) {
  Hasher h;
  h.Update("a"sv);
  EXPECT_EQ(h.Peek().str(), Digest::Of("a").str());
  h.Update("bc"sv);
  EXPECT_EQ(h.Peek().str(), kAbcSha256);
  EXPECT_EQ(h.Peek().str(), kAbcSha256);  // Peek is repeatable
  EXPECT_EQ(h.size(), 3u);
}

TEST(Hasher, NothingFedGivesEmptyDigest) {
  Hasher h;
  h.Update(std::string_view());
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(h.Peek().str(), kEmptySha256);
}

TEST(Hasher, MovedHasherKeepsState) {
  Hasher a;
  a.Update("ab"sv);
  Hasher b(std::move(a));
  b.Update("c"sv);
  EXPECT_EQ(b.Peek().str(), kAbcSha256);
  EXPECT_EQ(b.size(), 3u);
}

TEST(DigestParse, AcceptsValidSha256AndSha512) {
  Result<Digest> d = Digest::Parse(kEmptySha256);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->str(), kEmptySha256);
  EXPECT_EQ(*d, Digest::Of(""));

  Result<Digest> d512 = Digest::Parse(kEmptySha512);
  ASSERT_TRUE(d512.ok()) << d512.status().ToString();
  EXPECT_EQ(d512->algorithm(), DigestAlgorithm::kSha512);
}

void ExpectDigestInvalid(std::string_view s) {
  Result<Digest> d = Digest::Parse(s);
  ASSERT_FALSE(d.ok()) << "accepted " << s;
  EXPECT_EQ(d.status().code(), Code::kDigestInvalid) << d.status().ToString();
  EXPECT_FALSE(d.status().message().empty());
}

TEST(DigestParse, RejectsNonHexHexPart) { ExpectDigestInvalid("sha256:totallywrong"); }

TEST(DigestParse, RejectsWrongLength) {
  std::string s = kEmptySha256;
  ExpectDigestInvalid(s.substr(0, s.size() - 1));
  ExpectDigestInvalid(s + "0");
  ExpectDigestInvalid("sha256:");
  // A sha256-length hex under the sha512 label.
  ExpectDigestInvalid("sha512:" + s.substr(7));
}

TEST(DigestParse, RejectsUpperCaseHex) {
  std::string s = kEmptySha256;
  for (char& c : s) {
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  }
  s.replace(0, 6, "sha256");  // keep the algorithm lower case
  ExpectDigestInvalid(s);
}

TEST(DigestParse, RejectsUnknownAlgorithm) {
  ExpectDigestInvalid("md5:d41d8cd98f00b204e9800998ecf8427e");
  ExpectDigestInvalid("SHA256:" + std::string(kEmptySha256).substr(7));
  ExpectDigestInvalid(":" + std::string(kEmptySha256).substr(7));
}

TEST(DigestParse, RejectsMissingColon) {
  ExpectDigestInvalid("sha256e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  ExpectDigestInvalid("");
}

TEST(DigestParse, MessageNamesTheProblem) {
  EXPECT_NE(Digest::Parse("md5:abc").status().message().find("md5"), std::string::npos);
  EXPECT_NE(Digest::Parse("sha256:abc").status().message().find("64"), std::string::npos);
}

TEST(Digest, UsableAsHashKeyAndOrderedByString) {
  std::unordered_set<Digest> set;
  set.insert(Digest::Of("a"));
  set.insert(Digest::Of("a"));
  set.insert(Digest::Of("b"));
  EXPECT_EQ(set.size(), 2u);
  EXPECT_TRUE(Digest().empty());
  // Ordering follows the "<alg>:<hex>" string, so sorted containers are deterministic.
  Digest a = Digest::Of("a");
  Digest b = Digest::Of("b");
  EXPECT_EQ(a < b, a.str() < b.str());
}

}  // namespace
}  // namespace berth::oci

namespace berth::oci {
namespace {

// An upload's hash travels between requests and nodes as text: a hasher restored
// from SaveState at any byte boundary must finish with the digest of the whole.
TEST(HasherStateTest, RestoredHasherContinuesAtEveryBoundary) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>((i * 131) % 251);
  for (auto alg : {DigestAlgorithm::kSha256, DigestAlgorithm::kSha512}) {
    Digest want = Digest::Of(data, alg);
    for (size_t cut : {size_t{0}, size_t{1}, size_t{55}, size_t{63}, size_t{64}, size_t{65},
                       size_t{127}, size_t{128}, size_t{129}, size_t{999}, data.size()}) {
      Hasher first(alg);
      first.Update(std::string_view(data).substr(0, cut));
      std::string state = first.SaveState();
      auto restored = Hasher::Restore(state);
      ASSERT_TRUE(restored.ok()) << restored.status().ToString() << " " << state;
      EXPECT_EQ(restored->size(), cut);
      EXPECT_EQ(restored->algorithm(), alg);
      restored->Update(std::string_view(data).substr(cut));
      EXPECT_EQ(restored->Peek(), want) << "cut at " << cut;
    }
  }
}

TEST(HasherStateTest, RestoreRejectsForeignOrDamagedState) {
  Hasher h;
  h.Update(std::string_view("hello"));
  std::string good = h.SaveState();
  EXPECT_TRUE(Hasher::Restore(good).ok());
  for (std::string bad : {std::string(), std::string("sha256"), std::string("md5;v1;0;;;;"),
                          good.substr(0, good.size() - 2), "sha256;v2" + good.substr(9),
                          good + "00"}) {
    auto r = Hasher::Restore(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) EXPECT_TRUE(r.status().Is(Code::kCorruption));
  }
  // The byte count must agree with the bit counter inside the state.
  std::string lying = good;
  lying.replace(lying.find(";5;"), 3, ";6;");
  EXPECT_FALSE(Hasher::Restore(lying).ok());
}

}  // namespace
}  // namespace berth::oci
