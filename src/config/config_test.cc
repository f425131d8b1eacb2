#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace berth::config {
namespace {

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/berth-config-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, DefaultsAreValid) {
  Config c;
  EXPECT_TRUE(Validate(c).ok());
  EXPECT_EQ(c.listen, "0.0.0.0:5000");
  EXPECT_FALSE(c.create_on_push);
  EXPECT_EQ(c.uploads.expiry_seconds, 86400);
  EXPECT_TRUE(c.uploads.direct_io);
  EXPECT_EQ(c.limits.max_manifest_bytes, 4u * 1024 * 1024);
}

TEST(ConfigTest, YamlThenEnvironmentOverride) {
  std::string path = WriteTemp(
      "listen: 127.0.0.1:6000\ncreate_on_push: true\nhttp:\n  idle_timeout_seconds: 5\n"
      "uploads:\n  expiry_seconds: 10\n");
  Config c;
  ASSERT_TRUE(LoadYamlFile(path, c).ok());
  EXPECT_EQ(c.listen, "127.0.0.1:6000");
  EXPECT_TRUE(c.create_on_push);
  EXPECT_EQ(c.http.idle_timeout_seconds, 5);
  ASSERT_TRUE(ApplyEnvironment({{"BERTH_LISTEN", "127.0.0.1:7000"},
                                {"BERTH_HTTP_IDLE_TIMEOUT_SECONDS", "9"},
                                {"BERTH_CREATE_ON_PUSH", "false"},
                                {"BERTH_UPLOADS_DIRECT_IO", "false"}},
                               c)
                  .ok());
  EXPECT_EQ(c.listen, "127.0.0.1:7000");
  EXPECT_EQ(c.http.idle_timeout_seconds, 9);
  EXPECT_FALSE(c.create_on_push);
  EXPECT_FALSE(c.uploads.direct_io);
  EXPECT_EQ(c.uploads.expiry_seconds, 10);
  std::remove(path.c_str());
}

TEST(ConfigTest, ManifestCacheSizeFromYamlAndEnvironment) {
  Config c;
  EXPECT_EQ(c.cache.manifest_bytes, 32u * 1024 * 1024);
  std::string path = WriteTemp("cache:\n  manifest_bytes: 0\n");
  ASSERT_TRUE(LoadYamlFile(path, c).ok());
  EXPECT_EQ(c.cache.manifest_bytes, 0u);
  ASSERT_TRUE(ApplyEnvironment({{"BERTH_CACHE_MANIFEST_BYTES", "1048576"}}, c).ok());
  EXPECT_EQ(c.cache.manifest_bytes, 1048576u);
  EXPECT_TRUE(Validate(c).ok());
  EXPECT_FALSE(ApplyEnvironment({{"BERTH_CACHE_MANIFEST_BYTES", "-1"}}, c).ok());
  std::remove(path.c_str());
}

TEST(ConfigTest, ReadThreadsFromYamlAndEnvironment) {
  Config c;
  EXPECT_EQ(c.http.read_threads, 0);  // one per core
  std::string path = WriteTemp("http:\n  read_threads: 3\n");
  ASSERT_TRUE(LoadYamlFile(path, c).ok());
  EXPECT_EQ(c.http.read_threads, 3);
  ASSERT_TRUE(ApplyEnvironment({{"BERTH_HTTP_READ_THREADS", "1"}}, c).ok());
  EXPECT_EQ(c.http.read_threads, 1);
  EXPECT_TRUE(Validate(c).ok());
  c.http.read_threads = -1;
  EXPECT_FALSE(Validate(c).ok());
  std::remove(path.c_str());
}

TEST(ConfigTest, UnknownKeyIsAnErrorNamingIt) {
  std::string path = WriteTemp("http:\n  idle_timout_seconds: 5\n");
  Config c;
  Status st = LoadYamlFile(path, c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("http.idle_timout_seconds"), std::string::npos);
  std::remove(path.c_str());
}

TEST(ConfigTest, BadValuesAreRejected) {
  Config c;
  EXPECT_FALSE(ApplyEnvironment({{"BERTH_HTTP_IO_THREADS", "two"}}, c).ok());
  EXPECT_FALSE(ApplyEnvironment({{"BERTH_CREATE_ON_PUSH", "maybe"}}, c).ok());
  Config d;
  d.listen = "no-port";
  EXPECT_FALSE(Validate(d).ok());
  Config e;
  e.tls.cert = "/x.pem";
  EXPECT_FALSE(Validate(e).ok());  // key missing
  Config f;
  f.log.level = "verbose";
  EXPECT_FALSE(Validate(f).ok());
}

TEST(ConfigTest, EcrSectionDefaultsAndOverrides) {
  Config c;
  EXPECT_EQ(c.ecr.account_id, "000000000000");
  EXPECT_EQ(c.ecr.region, "us-east-1");
  EXPECT_EQ(c.ecr.download_url_ttl_seconds, 3600);
  EXPECT_EQ(c.public_url, "");
  std::string path = WriteTemp(
      "public_url: https://registry.example.com/\necr:\n  account_id: \"123456789012\"\n"
      "  region: eu-west-1\n");
  ASSERT_TRUE(LoadYamlFile(path, c).ok());
  EXPECT_EQ(c.ecr.account_id, "123456789012");
  EXPECT_EQ(c.ecr.region, "eu-west-1");
  ASSERT_TRUE(
      ApplyEnvironment(
          {{"BERTH_ECR_REGION", "ap-south-1"}, {"BERTH_ECR_DOWNLOAD_URL_TTL_SECONDS", "60"}}, c)
          .ok());
  EXPECT_EQ(c.ecr.region, "ap-south-1");
  EXPECT_EQ(c.ecr.download_url_ttl_seconds, 60);
  EXPECT_TRUE(Validate(c).ok());
  EXPECT_EQ(PublicUrl(c, 5000), "https://registry.example.com");
  std::remove(path.c_str());
}

TEST(ConfigTest, EcrValuesAreValidated) {
  Config a;
  a.ecr.account_id = "12345";
  EXPECT_NE(Validate(a).message().find("ecr.account_id"), std::string::npos);
  Config b;
  b.ecr.account_id = "12345678901x";
  EXPECT_FALSE(Validate(b).ok());
  Config c;
  c.ecr.region = "US East";
  EXPECT_NE(Validate(c).message().find("ecr.region"), std::string::npos);
  Config d;
  d.public_url = "registry.example.com";
  EXPECT_NE(Validate(d).message().find("public_url"), std::string::npos);
  Config e;
  e.ecr.download_url_ttl_seconds = 0;
  EXPECT_FALSE(Validate(e).ok());
}

TEST(ConfigTest, PublicUrlDerivesFromTheListenAddress) {
  Config c;  // 0.0.0.0:5000
  EXPECT_EQ(PublicUrl(c, 5000), "http://127.0.0.1:5000");
  c.listen = "127.0.0.1:0";
  EXPECT_EQ(PublicUrl(c, 41234), "http://127.0.0.1:41234");  // the bound port
  c.listen = "registry.local:443";
  c.tls.cert = "/c.pem";
  c.tls.key = "/k.pem";
  EXPECT_EQ(PublicUrl(c, 443), "https://registry.local:443");
  c.listen = "[::]:5000";
  c.tls = {};
  EXPECT_EQ(PublicUrl(c, 5000), "http://[::1]:5000");
}

TEST(ConfigTest, MissingFileIsAnError) {
  Config c;
  EXPECT_FALSE(LoadYamlFile("/nonexistent/berth.yaml", c).ok());
}

TEST(ConfigTest, StorageDefaultsToFilesAndSqlite) {
  Config c;
  EXPECT_EQ(c.storage.blobs.type, "filesystem");
  EXPECT_EQ(c.storage.metadata.type, "sqlite");
  EXPECT_FALSE(c.storage.shared());
}

TEST(ConfigTest, StorageFromYamlFlowMapsAndEnvironment) {
  std::string path = WriteTemp(
      "storage:\n"
      "  blobs:\n"
      "    type: s3\n"
      "    s3: {endpoint: \"http://127.0.0.1:7480\", bucket: registry, region: eu-west-1,\n"
      "         prefix: \"r/\", path_style: true, create_bucket: true, redirect: false}\n"
      "  metadata:\n"
      "    type: postgres\n"
      "    postgres: {url: \"postgresql://berth@127.0.0.1:5432/berth\"}\n");
  Config c;
  ASSERT_TRUE(LoadYamlFile(path, c).ok());
  EXPECT_EQ(c.storage.blobs.s3.endpoint, "http://127.0.0.1:7480");
  EXPECT_EQ(c.storage.blobs.s3.bucket, "registry");
  EXPECT_EQ(c.storage.blobs.s3.region, "eu-west-1");
  EXPECT_EQ(c.storage.blobs.s3.prefix, "r/");
  EXPECT_TRUE(c.storage.blobs.s3.create_bucket);
  EXPECT_EQ(c.storage.metadata.postgres.url, "postgresql://berth@127.0.0.1:5432/berth");
  EXPECT_TRUE(c.storage.shared());
  EXPECT_TRUE(Validate(c).ok());
  ASSERT_TRUE(ApplyEnvironment({{"BERTH_STORAGE_BLOBS_TYPE", "filesystem"},
                                {"BERTH_STORAGE_BLOBS_S3_REDIRECT", "true"},
                                {"BERTH_STORAGE_METADATA_POSTGRES_URL", "postgresql://x/y"}},
                               c)
                  .ok());
  EXPECT_EQ(c.storage.blobs.type, "filesystem");
  EXPECT_TRUE(c.storage.blobs.s3.redirect);
  EXPECT_EQ(c.storage.metadata.postgres.url, "postgresql://x/y");
  std::remove(path.c_str());
}

TEST(ConfigTest, StorageMistakesNameTheKey) {
  auto message = [](auto edit) {
    Config c;
    edit(c);
    Status st = Validate(c);
    EXPECT_FALSE(st.ok());
    return st.message();
  };
  EXPECT_NE(message([](Config& c) { c.storage.blobs.type = "gcs"; }).find("storage.blobs.type"),
            std::string::npos);
  EXPECT_NE(message([](Config& c) { c.storage.blobs.type = "s3"; }).find("storage.blobs.s3.bucket"),
            std::string::npos);
  EXPECT_NE(message([](Config& c) {
              c.storage.blobs.type = "s3";
              c.storage.blobs.s3.endpoint = "127.0.0.1:7480";
              c.storage.blobs.s3.bucket = "b";
            }).find("storage.blobs.s3.endpoint"),
            std::string::npos);
  EXPECT_NE(message([](Config& c) {
              c.storage.blobs.type = "s3";
              c.storage.blobs.s3.endpoint = "http://h";
              c.storage.blobs.s3.bucket = "b";
              c.storage.blobs.s3.part_size = 1024 * 1024;
            }).find("part_size"),
            std::string::npos);
  EXPECT_NE(message([](Config& c) { c.storage.metadata.type = "postgres"; })
                .find("storage.metadata.postgres.url"),
            std::string::npos);
  EXPECT_NE(message([](Config& c) { c.storage.metadata.type = "mysql"; })
                .find("storage.metadata.type"),
            std::string::npos);
}

}  // namespace
}  // namespace berth::config
