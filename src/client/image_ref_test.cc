#include "client/image_ref.h"

#include <gtest/gtest.h>

namespace berth::client {
namespace {

TEST(ParseImageName, DockerDefaults) {
  auto n = ParseImageName("busybox");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->registry, "docker.io");
  EXPECT_EQ(n->repository, "library/busybox");
  EXPECT_EQ(n->tag, "latest");
  EXPECT_EQ(n->String(), "docker.io/library/busybox:latest");
  EXPECT_EQ(n->ApiHost(), "registry-1.docker.io");
}

TEST(ParseImageName, HostPortTagAndDigest) {
  std::string d = "sha256:" + std::string(64, 'a');
  auto n = ParseImageName("127.0.0.1:5000/team/app:v1@" + d);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->registry, "127.0.0.1:5000");
  EXPECT_EQ(n->repository, "team/app");
  EXPECT_EQ(n->tag, "v1");
  EXPECT_EQ(n->Reference(), d);
  auto by_digest = ParseImageName("localhost/app@" + d);
  ASSERT_TRUE(by_digest.ok());
  EXPECT_EQ(by_digest->registry, "localhost");
  EXPECT_TRUE(by_digest->tag.empty());
}

TEST(ParseImageName, Rejects) {
  EXPECT_FALSE(ParseImageName("").ok());
  EXPECT_FALSE(ParseImageName("Host.example/UPPER:tag").ok());
  EXPECT_FALSE(ParseImageName("h.example/app:bad/tag").ok());
  EXPECT_FALSE(ParseImageName("h.example/app@sha256:123").ok());
  auto st = ParseImageName("h.example/App").status();
  EXPECT_NE(st.message().find("lowercase"), std::string::npos) << st.message();
}

TEST(ParseImageLocation, Transports) {
  auto d = ParseImageLocation("docker://127.0.0.1:5000/a:b");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->transport, Transport::kDocker);
  EXPECT_EQ(d->name.String(), "127.0.0.1:5000/a:b");

  auto bare = ParseImageLocation("localhost:5000/a");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->transport, Transport::kDocker);
  EXPECT_EQ(bare->name.tag, "latest");

  auto o = ParseImageLocation("oci:/tmp/lay:v1.0");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->transport, Transport::kOciLayout);
  EXPECT_EQ(o->path, "/tmp/lay");
  EXPECT_EQ(o->tag, "v1.0");
  auto o2 = ParseImageLocation("oci:rel/dir");
  ASSERT_TRUE(o2.ok());
  EXPECT_TRUE(o2->tag.empty());

  auto a = ParseImageLocation("docker-archive:/tmp/x.tar:myrepo/app:v2");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->transport, Transport::kDockerArchive);
  EXPECT_EQ(a->path, "/tmp/x.tar");
  ASSERT_TRUE(a->has_name);
  EXPECT_EQ(a->name.repository, "myrepo/app");
  EXPECT_EQ(a->name.tag, "v2");
  EXPECT_EQ(a->String(), "docker-archive:/tmp/x.tar:myrepo/app:v2");
  auto a2 = ParseImageLocation("docker-archive:/tmp/x.tar");
  ASSERT_TRUE(a2.ok());
  EXPECT_FALSE(a2->has_name);

  auto bad = ParseImageLocation("containers-storage:foo");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not supported"), std::string::npos);
  EXPECT_FALSE(ParseImageLocation("oci:").ok());
}

TEST(FileSafeName, MatchesDockerCli) {
  EXPECT_EQ(FileSafeName("127.0.0.1:5999/demo:list"), "127.0.0.1-5999_demo-list");
  EXPECT_EQ(FileSafeName("docker.io/library/busybox:latest"), "docker.io_library_busybox-latest");
}

TEST(ParseRepositoryName, HostOnlyOrRepository) {
  auto h = ParseRepositoryName("127.0.0.1:5000");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->registry, "127.0.0.1:5000");
  EXPECT_TRUE(h->repository.empty());
  auto r = ParseRepositoryName("127.0.0.1:5000/a/b");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->repository, "a/b");
  EXPECT_TRUE(r->tag.empty());
}

}  // namespace
}  // namespace berth::client
