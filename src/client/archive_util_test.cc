#include "client/archive_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "client/auth.h"

namespace berth::client {
namespace {

namespace fs = std::filesystem;

fs::path Dir() {
  fs::path d = fs::temp_directory_path() / ("berth-archive-" + std::to_string(getpid()));
  fs::create_directories(d);
  return d;
}

TEST(Gzip, RoundTripIsReproducible) {
  fs::path d = Dir();
  std::string data;
  for (int i = 0; i < 200000; ++i) data += std::to_string(i * 7919 % 1000);
  {
    std::ofstream(d / "in", std::ios::binary) << data;
  }
  LocalBlob in{d / "in", 0, data.size()};
  auto a = GzipToFile(in, d / "a.gz");
  auto b = GzipToFile(in, d / "b.gz");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->digest, b->digest);
  EXPECT_EQ(a->other_digest, oci::Digest::Of(data));
  EXPECT_TRUE(*IsGzip(LocalBlob{d / "a.gz", 0, a->size}));
  EXPECT_FALSE(*IsGzip(in));
  auto back = GunzipToFile(LocalBlob{d / "a.gz", 0, a->size}, d / "back");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->digest, oci::Digest::Of(data));
  EXPECT_EQ(back->size, data.size());
}

TEST(IndexTar, FindsMembersInPlace) {
  fs::path d = Dir();
  // A tar made by the system tar, with a long name (pax or GNU header).
  std::string long_name(120, 'n');
  fs::create_directories(d / "t");
  std::ofstream(d / "t" / "short.txt") << "hello";
  std::ofstream(d / "t" / long_name) << "world!";
  std::string cmd = "tar -C " + (d / "t").string() + " -cf " + (d / "x.tar").string() +
                    " short.txt " + long_name;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto idx = IndexTar(d / "x.tar");
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  ASSERT_TRUE(idx->contains("short.txt"));
  ASSERT_TRUE(idx->contains(long_name));
  EXPECT_EQ(*ReadAll(idx->at("short.txt")), "hello");
  EXPECT_EQ(*ReadAll(idx->at(long_name)), "world!");
  std::ofstream(d / "not.tar") << std::string(1024, 'x');
  EXPECT_FALSE(IndexTar(d / "not.tar").ok());
}

TEST(ParseChallenges, BasicAndBearer) {
  auto cs = ParseChallenges(
      R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].params["realm"], "https://auth.example/token");
  EXPECT_EQ(cs[0].params["scope"], "repository:a/b:pull,push");
  auto basic = ParseChallenges(R"(Basic realm="Registry Realm")");
  ASSERT_EQ(basic.size(), 1u);
  EXPECT_EQ(basic[0].scheme, "basic");
  EXPECT_EQ(basic[0].params["realm"], "Registry Realm");
  auto two = ParseChallenges(R"(Basic realm="x", Bearer realm="y",service=z)");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].params["service"], "z");
  EXPECT_TRUE(ParseChallenges("").empty());
  EXPECT_EQ(*ParseTokenResponse(R"({"access_token":"abc"})"), "abc");
  EXPECT_FALSE(ParseTokenResponse("{}").ok());
}

}  // namespace
}  // namespace berth::client
