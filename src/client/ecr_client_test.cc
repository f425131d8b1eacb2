#include "client/ecr_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace berth::client {
namespace {

class FakeEnv {
 public:
  std::map<std::string, std::string> vars;
  EnvLookup lookup() const {
    return [this](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-ecr-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::string p = (path_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(ParseIni, SectionsKeysCommentsAndNesting) {
  IniFile ini = ParseIni(
      "# comment\n"
      "[default]\r\n"
      "aws_access_key_id = AKIA1\n"
      "AWS_Secret_Access_Key=s/e=cret  \n"
      "; other comment\n"
      "s3 =\n"
      "  max_concurrent_requests = 20\n"
      "[profile   dev]\n"
      "region = eu-west-1\n"
      "orphan line without equals\n"
      "[broken\n"
      "after = x\n");
  ASSERT_EQ(ini.count("default"), 1u);
  EXPECT_EQ(ini["default"]["aws_access_key_id"], "AKIA1");
  EXPECT_EQ(ini["default"]["aws_secret_access_key"], "s/e=cret");
  EXPECT_EQ(ini["default"]["s3"], "");
  EXPECT_EQ(ini["default"].count("max_concurrent_requests"), 0u);
  ASSERT_EQ(ini.count("profile dev"), 1u);
  EXPECT_EQ(ini["profile dev"]["region"], "eu-west-1");
  // A malformed section header is ignored: its keys stay in the previous section.
  EXPECT_EQ(ini["profile dev"]["after"], "x");
}

TEST(ParseIni, KeysBeforeAnySectionAreIgnored) {
  IniFile ini = ParseIni("a = b\n[x]\nc = d");
  EXPECT_EQ(ini.size(), 1u);
  EXPECT_EQ(ini["x"]["c"], "d");
}

TEST(ConfigSectionFor, DefaultAndNamed) {
  EXPECT_EQ(ConfigSectionFor("default"), "default");
  EXPECT_EQ(ConfigSectionFor("dev"), "profile dev");
}

TEST(ResolveCredentials, EnvironmentFirst) {
  TempDir dir;
  FakeEnv env;
  env.vars["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  env.vars["AWS_SECRET_ACCESS_KEY"] = "envsecret";
  env.vars["AWS_SESSION_TOKEN"] = "tok";
  env.vars["AWS_SHARED_CREDENTIALS_FILE"] =
      dir.Write("credentials", "[default]\naws_access_key_id=AKIAFILE\naws_secret_access_key=f\n");
  auto c = ResolveCredentials({}, env.lookup());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAENV");
  EXPECT_EQ(c->secret_access_key, "envsecret");
  EXPECT_EQ(c->session_token, "tok");
  EXPECT_EQ(c->source, "environment");
}

TEST(ResolveCredentials, ExplicitProfileSkipsEnvironment) {
  TempDir dir;
  FakeEnv env;
  env.vars["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  env.vars["AWS_SECRET_ACCESS_KEY"] = "envsecret";
  env.vars["AWS_SHARED_CREDENTIALS_FILE"] = dir.Write(
      "credentials",
      "[default]\naws_access_key_id=AKIADEF\naws_secret_access_key=d\n"
      "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = devsecret\n"
      "aws_session_token = devtok\n");
  AwsSettings s;
  s.profile = "dev";
  auto c = ResolveCredentials(s, env.lookup());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIADEV");
  EXPECT_EQ(c->secret_access_key, "devsecret");
  EXPECT_EQ(c->session_token, "devtok");
}

TEST(ResolveCredentials, ProfileFromEnvAndDefault) {
  TempDir dir;
  FakeEnv env;
  env.vars["AWS_SHARED_CREDENTIALS_FILE"] = dir.Write(
      "credentials",
      "[default]\naws_access_key_id=AKIADEF\naws_secret_access_key=d\n"
      "[dev]\naws_access_key_id=AKIADEV\naws_secret_access_key=v\n");
  auto c = ResolveCredentials({}, env.lookup());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "AKIADEF");
  env.vars["AWS_PROFILE"] = "dev";
  c = ResolveCredentials({}, env.lookup());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "AKIADEV");
}

TEST(ResolveCredentials, HomeDefaultAndConfigFileFallback) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / ".aws");
  dir.Write(".aws/config",
            "[default]\nregion = us-west-2\n"
            "[profile ops]\naws_access_key_id = AKIAOPS\naws_secret_access_key = o\n");
  FakeEnv env;
  env.vars["HOME"] = dir.path().string();
  AwsSettings s;
  s.profile = "ops";
  auto c = ResolveCredentials(s, env.lookup());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAOPS");
}

TEST(ResolveCredentials, Missing) {
  TempDir dir;
  FakeEnv env;
  env.vars["HOME"] = dir.path().string();
  auto c = ResolveCredentials({}, env.lookup());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnauthorized);
  EXPECT_NE(c.status().message().find("Unable to locate credentials"), std::string::npos);
  AwsSettings s;
  s.profile = "nope";
  c = ResolveCredentials(s, env.lookup());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("profile (nope) could not be found"), std::string::npos);
}

TEST(ResolveRegion, Order) {
  TempDir dir;
  FakeEnv env;
  env.vars["AWS_CONFIG_FILE"] =
      dir.Write("config", "[default]\nregion = eu-central-1\n[profile dev]\nregion = ap-south-1\n");
  EXPECT_EQ(*ResolveRegion({}, env.lookup()), "eu-central-1");
  AwsSettings dev;
  dev.profile = "dev";
  EXPECT_EQ(*ResolveRegion(dev, env.lookup()), "ap-south-1");
  env.vars["AWS_DEFAULT_REGION"] = "us-west-1";
  EXPECT_EQ(*ResolveRegion(dev, env.lookup()), "us-west-1");
  env.vars["AWS_REGION"] = "us-east-2";
  EXPECT_EQ(*ResolveRegion(dev, env.lookup()), "us-east-2");
  AwsSettings flag;
  flag.region = "sa-east-1";
  EXPECT_EQ(*ResolveRegion(flag, env.lookup()), "sa-east-1");
}

TEST(ResolveRegion, NoneConfigured) {
  TempDir dir;
  FakeEnv env;
  env.vars["HOME"] = dir.path().string();
  auto r = ResolveRegion({}, env.lookup());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

TEST(ResolveEndpoint, FlagEnvDefault) {
  FakeEnv env;
  EXPECT_EQ(ResolveEndpoint({}, env.lookup(), "us-east-1"), "https://api.ecr.us-east-1.amazonaws.com");
  env.vars["AWS_ENDPOINT_URL"] = "http://generic:1/";
  EXPECT_EQ(ResolveEndpoint({}, env.lookup(), "us-east-1"), "http://generic:1");
  env.vars["AWS_ENDPOINT_URL_ECR"] = "http://ecr:2";
  EXPECT_EQ(ResolveEndpoint({}, env.lookup(), "us-east-1"), "http://ecr:2");
  AwsSettings s;
  s.endpoint_url = "localhost:5000";
  EXPECT_EQ(ResolveEndpoint(s, env.lookup(), "us-east-1"), "https://localhost:5000");
}

TEST(UrlHostPort, Forms) {
  EXPECT_EQ(UrlHostPort("http://127.0.0.1:5000"), "127.0.0.1:5000");
  EXPECT_EQ(UrlHostPort("https://u@h.example/x?y"), "h.example");
  EXPECT_EQ(UrlHostPort("no-scheme"), "");
}

TEST(EcrErrorStatus, ExceptionNamesAndCodes) {
  Status st = EcrErrorStatus(
      400, R"({"__type":"InvalidSignatureException","message":"The request signature ..."})");
  EXPECT_EQ(st.code(), Code::kUnauthorized);
  EXPECT_EQ(st.message(), "InvalidSignatureException: The request signature ...");
  EXPECT_EQ(st.detail(), "InvalidSignatureException");
  st = EcrErrorStatus(400, R"({"__type":"com.amazonaws.ecr#RepositoryNotFoundException:http://x","Message":"m"})");
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(st.message(), "RepositoryNotFoundException: m");
  EXPECT_EQ(EcrErrorStatus(400, R"({"__type":"AccessDeniedException","message":"no"})").code(),
            Code::kDenied);
  EXPECT_EQ(EcrErrorStatus(400, R"({"__type":"InvalidParameterException","message":"x"})").code(),
            Code::kInvalidArgument);
  EXPECT_EQ(EcrErrorStatus(500, R"({"__type":"ServerException","message":"x"})").code(),
            Code::kUnavailable);
  EXPECT_EQ(EcrErrorStatus(502, "<html>bad gateway</html>").code(), Code::kUnavailable);
  EXPECT_EQ(EcrErrorStatus(400, R"({"__type":"LimitExceededException","message":"x"})").code(),
            Code::kFailedPrecondition);
}

}  // namespace
}  // namespace berth::client
