#include "client/platform.h"

#include <gtest/gtest.h>

namespace berth::client {
namespace {

oci::Descriptor Entry(std::string os, std::string arch, std::string variant = "") {
  oci::Descriptor d;
  d.platform = oci::Platform{std::move(os), std::move(arch), std::move(variant), {}, {}};
  return d;
}

TEST(ParsePlatform, Normalizes) {
  auto p = ParsePlatform("linux/aarch64/8");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(PlatformString(*p), "linux/arm64/v8");
  EXPECT_EQ(PlatformString(*ParsePlatform("Linux/x86_64")), "linux/amd64");
  EXPECT_EQ(PlatformString(*ParsePlatform("linux/armhf")), "linux/arm/v7");
  for (const char* bad : {"linux", "linux/", "/amd64", "a/b/c/d", "linux/arm/"}) {
    EXPECT_FALSE(ParsePlatform(bad).ok()) << bad;
  }
}

TEST(PlatformMatches, ImpliedVariants) {
  oci::Platform arm64{"linux", "arm64", "", {}, {}};
  oci::Platform arm64v8{"linux", "arm64", "v8", {}, {}};
  EXPECT_TRUE(PlatformMatches(arm64, arm64v8));
  EXPECT_TRUE(PlatformMatches(arm64v8, arm64));
  oci::Platform armv6{"linux", "arm", "v6", {}, {}};
  oci::Platform arm{"linux", "arm", "", {}, {}};
  EXPECT_FALSE(PlatformMatches(armv6, arm));  // arm without variant means v7
  EXPECT_TRUE(PlatformMatches(arm, armv6));   // no variant asked: any
  EXPECT_FALSE(PlatformMatches(oci::Platform{"windows", "amd64", "", {}, {}},
                               oci::Platform{"linux", "amd64", "", {}, {}}));
}

TEST(SelectPlatform, PrefersExactVariantAndListsChoicesOnMiss) {
  std::vector<oci::Descriptor> list = {Entry("linux", "amd64"), Entry("linux", "arm", "v6"),
                                       Entry("linux", "arm", "v7"), Entry("linux", "arm64", "v8")};
  EXPECT_EQ(*SelectPlatform(list, *ParsePlatform("linux/arm/v7")), 2u);
  EXPECT_EQ(*SelectPlatform(list, *ParsePlatform("linux/arm/v6")), 1u);
  EXPECT_EQ(*SelectPlatform(list, *ParsePlatform("linux/arm64")), 3u);
  EXPECT_EQ(*SelectPlatform(list, *ParsePlatform("linux/amd64")), 0u);
  auto miss = SelectPlatform(list, *ParsePlatform("linux/s390x"));
  ASSERT_FALSE(miss.ok());
  EXPECT_EQ(miss.status().code(), Code::kNotFound);
  EXPECT_NE(miss.status().message().find("linux/arm64/v8"), std::string::npos)
      << miss.status().message();
}

TEST(PlatformFromConfig, ReadsFields) {
  auto p = PlatformFromConfig(
      R"({"architecture":"arm64","os":"linux","variant":"v8","os.features":["a"],"rootfs":{}})");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(PlatformString(*p), "linux/arm64/v8");
  ASSERT_EQ(p->os_features.size(), 1u);
  EXPECT_FALSE(PlatformFromConfig(R"({"rootfs":{}})").ok());
  EXPECT_FALSE(PlatformFromConfig("nope").ok());
}

TEST(IsValidOsArch, DockerTable) {
  EXPECT_TRUE(IsValidOsArch("linux", "arm64"));
  EXPECT_TRUE(IsValidOsArch("windows", "amd64"));
  EXPECT_FALSE(IsValidOsArch("", "foo"));
  EXPECT_FALSE(IsValidOsArch("linux", "foo"));
}

}  // namespace
}  // namespace berth::client
