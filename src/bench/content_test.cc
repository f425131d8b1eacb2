#include "bench/content.h"

#include <gtest/gtest.h>

#include <string>

namespace berth::bench {
namespace {

std::string ReadAll(RandomContent& c, size_t piece) {
  std::string out;
  std::string buf(piece, '\0');
  while (size_t n = c.Read(buf)) out.append(buf.data(), n);
  return out;
}

TEST(RandomContent, SameSeedSameBytesWhateverTheReadSizes) {
  RandomContent a(7, 100003), b(7, 100003);
  std::string x = ReadAll(a, 4096);
  std::string y = ReadAll(b, 13);  // unaligned pieces
  ASSERT_EQ(x.size(), 100003u);
  EXPECT_EQ(x, y);
}

TEST(RandomContent, DifferentSeedsDiffer) {
  RandomContent a(1, 4096), b(2, 4096);
  EXPECT_NE(ReadAll(a, 4096), ReadAll(b, 4096));
}

TEST(RandomContent, SeekResumesTheSameStream) {
  RandomContent a(9, 1000);
  std::string all = ReadAll(a, 1000);
  RandomContent b(9, 1000);
  b.Seek(333);
  EXPECT_EQ(ReadAll(b, 64), all.substr(333));
  EXPECT_EQ(b.remaining(), 0u);
}

TEST(RandomContent, EmptyContent) {
  RandomContent a(3, 0);
  std::string buf(16, '\0');
  EXPECT_EQ(a.Read(buf), 0u);
  EXPECT_EQ(RandomContentDigest(3, 0).str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(RandomContent, DigestMatchesHashingTheBytes) {
  RandomContent a(11, 3 * 1024 * 1024 + 5);
  std::string all = ReadAll(a, 65536);
  EXPECT_EQ(RandomContentDigest(11, all.size()), oci::Digest::Of(all));
  EXPECT_EQ(RandomContentDigest(11, all.size(), oci::DigestAlgorithm::kSha512),
            oci::Digest::Of(all, oci::DigestAlgorithm::kSha512));
}

TEST(SplitMix64, BelowStaysInRange) {
  SplitMix64 rng(5);
  for (int i = 0; i < 10000; ++i) ASSERT_LT(rng.Below(17), 17u);
}

}  // namespace
}  // namespace berth::bench
