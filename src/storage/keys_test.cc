#include "storage/keys.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace berth::storage {
namespace {

TEST(BlobKey, Sha256ShardsByFirstTwoHexCharacters) {
  oci::Digest d = oci::Digest::Of("");
  EXPECT_EQ(BlobKey(d),
            "blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(BlobKey, Sha512UsesItsAlgorithmDirectory) {
  oci::Digest d = oci::Digest::Of("", oci::DigestAlgorithm::kSha512);
  EXPECT_EQ(BlobKey(d), "blobs/sha512/cf/" + std::string(d.hex()));
}

TEST(BlobKey, ParsedAndComputedDigestsShareAKey) {
  Result<oci::Digest> parsed = oci::Digest::Parse(oci::Digest::Of("abc").str());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(BlobKey(*parsed), BlobKey(oci::Digest::Of("abc")));
}

TEST(BlobKeyDeathTest, EmptyDigestAborts) {
  EXPECT_DEATH((void)BlobKey(oci::Digest()), "empty digest");
}

TEST(UploadKey, PrefixesTheId) {
  EXPECT_EQ(UploadKey("0123456789abcdef0123456789abcdef"),
            "uploads/0123456789abcdef0123456789abcdef");
}

// A request-supplied id like "../blobs/..." must never become a key.
TEST(UploadKeyDeathTest, InvalidIdAborts) {
  EXPECT_DEATH((void)UploadKey("../../etc/passwd"), "invalid upload id");
  EXPECT_DEATH((void)UploadKey(""), "invalid upload id");
}

TEST(DigestFromBlobKey, InvertsBlobKey) {
  for (auto alg : {oci::DigestAlgorithm::kSha256, oci::DigestAlgorithm::kSha512}) {
    oci::Digest d = oci::Digest::Of("abc", alg);
    auto back = DigestFromBlobKey(BlobKey(d));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, d);
  }
}

TEST(DigestFromBlobKey, RejectsWhatBlobKeyNeverMakes) {
  std::string key = BlobKey(oci::Digest::Of("abc"));
  std::string hex(oci::Digest::Of("abc").hex());
  EXPECT_FALSE(DigestFromBlobKey(""));
  EXPECT_FALSE(DigestFromBlobKey("blobs/"));
  EXPECT_FALSE(DigestFromBlobKey("uploads/" + key));
  EXPECT_FALSE(DigestFromBlobKey(key + "x"));
  EXPECT_FALSE(DigestFromBlobKey("blobs/sha256/" + hex));       // no fan-out
  EXPECT_FALSE(DigestFromBlobKey("blobs/sha256/00/" + hex));    // wrong fan-out
  EXPECT_FALSE(DigestFromBlobKey("blobs/md5/ba/" + hex));       // unknown algorithm
  EXPECT_FALSE(DigestFromBlobKey("blobs/sha256/ba/x/" + hex));  // extra level
}

TEST(UploadIdFromKey, FindsTheIdOfEveryUploadKey) {
  std::string id = "0123456789abcdef0123456789abcdef";
  EXPECT_EQ(UploadIdFromKey(UploadKey(id)), id);
  EXPECT_EQ(UploadIdFromKey(UploadObjectsPrefix(id)), id);
  // The data object outlives the upload (it becomes a blob's bytes): not an upload key.
  EXPECT_EQ(UploadDataKey(id), "data/" + id);
  EXPECT_FALSE(UploadIdFromKey(UploadDataKey(id)));
  EXPECT_EQ(UploadIdFromKey(UploadTailKey(id, UploadTailName(5, "0123abcd"))), id);
  EXPECT_FALSE(UploadIdFromKey("uploads/xyz"));
  EXPECT_FALSE(UploadIdFromKey("blobs/" + id));
  EXPECT_FALSE(UploadIdFromKey("uploads/" + id + "0"));
}

TEST(UploadTailName, IsValidatedStrictly) {
  EXPECT_EQ(UploadTailName(8388608, "deadbeef"), "tail-8388608-deadbeef");
  EXPECT_EQ(UploadTailKey("0123456789abcdef0123456789abcdef", "tail-0-0123abcd"),
            "uploads/0123456789abcdef0123456789abcdef/tail-0-0123abcd");
  EXPECT_TRUE(IsValidUploadTailName("tail-0-0123abcd"));
  EXPECT_TRUE(IsValidUploadTailName("tail-18446744073709551615-" + std::string(32, 'a')));
  for (std::string bad :
       {"", "tail-", "tail-1-", "tail--0123abcd", "tail-01-0123abcd", "tail-1-0123abc",
        "tail-1-0123ABCD", "tail-1-0123abcd/..", "data", "tail-1-../../x"}) {
    EXPECT_FALSE(IsValidUploadTailName(bad)) << bad;
  }
}

TEST(UploadTailKeyDeathTest, InvalidNameAborts) {
  EXPECT_DEATH((void)UploadTailKey("0123456789abcdef0123456789abcdef", "../x"),
               "invalid tail name");
}

TEST(IsValidUploadId, AcceptsExactly32LowerHex) {
  EXPECT_TRUE(IsValidUploadId("0123456789abcdef0123456789abcdef"));
  EXPECT_TRUE(IsValidUploadId(std::string(32, 'f')));
}

TEST(IsValidUploadId, RejectsEverythingElse) {
  EXPECT_FALSE(IsValidUploadId(""));
  EXPECT_FALSE(IsValidUploadId(std::string(31, 'a')));
  EXPECT_FALSE(IsValidUploadId(std::string(33, 'a')));
  EXPECT_FALSE(IsValidUploadId("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(IsValidUploadId("0123456789abcdeg0123456789abcdef"));
  EXPECT_FALSE(IsValidUploadId("../../../../../../../../../../../"));
  EXPECT_FALSE(IsValidUploadId("0123456789abcdef/123456789abcdef"));
  EXPECT_FALSE(
      IsValidUploadId(std::string("0123456789abcdef\0"
                                  "123456789abcdef",
                                  32)));
}

TEST(NewUploadId, IsValidAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewUploadId();
    EXPECT_TRUE(IsValidUploadId(id)) << id;
    EXPECT_TRUE(seen.insert(id).second) << "duplicate upload id " << id;
  }
}

TEST(NewUploadId, UsesTheWholeHexAlphabet) {
  // Guards against a broken encoder (e.g. only one nibble per byte).
  std::set<char> chars;
  for (int i = 0; i < 100; ++i) {
    for (char c : NewUploadId()) chars.insert(c);
  }
  EXPECT_EQ(chars.size(), 16u);
}

}  // namespace
}  // namespace berth::storage
