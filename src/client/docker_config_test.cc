#include "client/docker_config.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "client/http.h"

namespace berth::client {
namespace {

namespace fs = std::filesystem;

fs::path TempDir() {
  fs::path d = fs::temp_directory_path() /
               ("berth-dockercfg-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A credential helper kept in memory, speaking the helper protocol.
struct FakeHelper {
  std::map<std::string, std::pair<std::string, std::string>> store;
  std::vector<std::string> calls;
  HelperRunner Runner() {
    return [this](const std::string& program, const std::string& action,
                  const std::string& input) -> Result<std::string> {
      calls.push_back(program + " " + action);
      if (action == "store") {
        auto v = boost::json::parse(input).as_object();
        store[std::string(v["ServerURL"].as_string())] = {std::string(v["Username"].as_string()),
                                                          std::string(v["Secret"].as_string())};
        return std::string();
      }
      auto it = store.find(input);
      if (it == store.end()) return Status::NotFound("credentials not found in native keychain");
      if (action == "erase") {
        store.erase(it);
        return std::string();
      }
      return "{\"ServerURL\":\"" + input + "\",\"Username\":\"" + it->second.first +
             "\",\"Secret\":\"" + it->second.second + "\"}";
    };
  }
};

TEST(DockerConfig, MissingFileIsEmpty) {
  auto cfg = DockerConfig::Load(TempDir());
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto c = cfg->Get("example.com");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_value());
}

TEST(DockerConfig, ReadsBase64AuthAndNormalizedKeys) {
  std::string text = R"({"auths":{"https://reg.example.com/v1/":{"auth":")" +
                     Base64Encode("alice:s3:cret") + R"("},
                     "https://index.docker.io/v1/":{"auth":")" + Base64Encode("bob:pw") + R"("}}})";
  auto cfg = DockerConfig::Parse(text, "/nonexistent");
  ASSERT_TRUE(cfg.ok());
  auto c = cfg->Get("reg.example.com");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->username, "alice");
  EXPECT_EQ((*c)->password, "s3:cret");  // only the first ':' separates
  auto hub = cfg->Get("docker.io");
  ASSERT_TRUE(hub.ok() && hub->has_value());
  EXPECT_EQ((*hub)->username, "bob");
}

TEST(DockerConfig, StoreWritesDockerFormatAndKeepsUnknownFields) {
  fs::path dir = TempDir();
  {
    std::ofstream(dir / "config.json") << R"({"psFormat":"table","auths":{}})";
  }
  auto cfg = DockerConfig::Load(dir);
  ASSERT_TRUE(cfg.ok());
  ASSERT_TRUE(cfg->Store("127.0.0.1:5000", Credentials{"AWS", "pw", {}}).ok());
  auto again = DockerConfig::Load(dir);
  ASSERT_TRUE(again.ok());
  const auto& j = again->json();
  EXPECT_EQ(j.at("psFormat").as_string(), "table");
  EXPECT_EQ(j.at("auths").at("127.0.0.1:5000").at("auth").as_string(), Base64Encode("AWS:pw"));
  EXPECT_EQ(fs::status(dir / "config.json").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto removed = again->Erase("127.0.0.1:5000");
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  auto third = DockerConfig::Load(dir);
  EXPECT_FALSE(third->json().at("auths").as_object().contains("127.0.0.1:5000"));
  auto none = third->Erase("127.0.0.1:5000");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
}

TEST(DockerConfig, CredentialHelperProtocol) {
  FakeHelper helper;
  fs::path dir = TempDir();
  auto cfg = DockerConfig::Parse(R"({"credsStore":"fake","credHelpers":{"ecr.example":"ecr"}})",
                                 dir, helper.Runner());
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->HelperFor("ecr.example"), "ecr");
  EXPECT_EQ(cfg->HelperFor("other:5000"), "fake");
  ASSERT_TRUE(cfg->Store("other:5000", Credentials{"u", "p", {}}).ok());
  EXPECT_EQ(helper.calls.back(), "docker-credential-fake store");
  // docker leaves an empty entry under auths so the host shows as logged in.
  EXPECT_TRUE(cfg->json().at("auths").at("other:5000").as_object().empty());
  auto c = cfg->Get("other:5000");
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->password, "p");
  auto missing = cfg->Get("ecr.example");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(helper.calls.back(), "docker-credential-ecr get");
  auto erased = cfg->Erase("other:5000");
  ASSERT_TRUE(erased.ok());
  EXPECT_TRUE(*erased);
  EXPECT_TRUE(helper.store.empty());
}

TEST(DockerConfig, MissingHelperProgramIsAClearError) {
  auto cfg = DockerConfig::Parse(R"({"credsStore":"berth-test-no-such-helper"})", TempDir());
  ASSERT_TRUE(cfg.ok());
  auto c = cfg->Get("x.example");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("docker-credential-berth-test-no-such-helper"),
            std::string::npos)
      << c.status().message();
}

TEST(DockerConfig, MalformedFileNamesTheFile) {
  auto cfg = DockerConfig::Parse("{not json", "/some/dir");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("/some/dir/config.json"), std::string::npos);
}

TEST(DockerConfig, HostFromAuthKey) {
  EXPECT_EQ(HostFromAuthKey("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(HostFromAuthKey("http://h:5000/v2/"), "h:5000");
  EXPECT_EQ(HostFromAuthKey("h:5000"), "h:5000");
  EXPECT_EQ(AuthKeyForHost("docker.io"), "https://index.docker.io/v1/");
  EXPECT_EQ(AuthKeyForHost("h:5000"), "h:5000");
}

}  // namespace
}  // namespace berth::client
