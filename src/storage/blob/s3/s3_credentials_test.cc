#include "storage/blob/s3/s3_credentials.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

namespace berth::storage::s3 {
namespace {

EnvLookup EnvOf(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "s3credXXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr char kFile[] =
    "# written by berth admin\n"
    "[default]\n"
    "aws_access_key_id = AKIDDEFAULT\n"
    "aws_secret_access_key=secret/default\r\n"
    "\n"
    "[ci]\n"
    "  ; a comment\n"
    "aws_access_key_id =  AKIDCI  \n"
    "aws_secret_access_key = secret-ci\n"
    "aws_session_token = token-ci\n"
    "s3 =\n"
    "  aws_access_key_id = NESTED-IS-NOT-A-KEY\n"
    "[half]\n"
    "aws_access_key_id = AKIDHALF\n";

TEST(S3Credentials, EnvironmentComesFirst) {
  TempDir dir;
  auto c = LoadS3Credentials(EnvOf({{"AWS_ACCESS_KEY_ID", "AKIDENV"},
                                    {"AWS_SECRET_ACCESS_KEY", "secret-env"},
                                    {"AWS_SESSION_TOKEN", "tok"},
                                    {"HOME", dir.path()}}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIDENV");
  EXPECT_EQ(c->secret_access_key, "secret-env");
  EXPECT_EQ(c->session_token, "tok");
  EXPECT_EQ(c->source, "environment");
}

TEST(S3Credentials, HalfAKeyInTheEnvironmentIsAnError) {
  TempDir dir;
  dir.Write(".aws/credentials", kFile);
  auto c = LoadS3Credentials(EnvOf({{"AWS_ACCESS_KEY_ID", "AKIDENV"}, {"HOME", dir.path()}}));
  ASSERT_TRUE(c.status().Is(Code::kFailedPrecondition));
  EXPECT_NE(c.status().message().find("AWS_SECRET_ACCESS_KEY is not"), std::string::npos);
}

TEST(S3Credentials, DefaultProfileOfHomeFile) {
  TempDir dir;
  std::string path = dir.Write(".aws/credentials", kFile);
  auto c = LoadS3Credentials(EnvOf({{"HOME", dir.path()}, {"AWS_PROFILE", ""}}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIDDEFAULT");
  EXPECT_EQ(c->secret_access_key, "secret/default");  // CR of a CRLF line dropped
  EXPECT_EQ(c->session_token, "");
  EXPECT_EQ(c->source, path + " [default]");
}

TEST(S3Credentials, ProfileAndFileFromTheEnvironment) {
  TempDir dir;
  std::string path = dir.Write("elsewhere/creds", kFile);
  auto c = LoadS3Credentials(EnvOf({{"AWS_SHARED_CREDENTIALS_FILE", path}, {"AWS_PROFILE", "ci"}}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIDCI");  // trimmed; the nested key is ignored
  EXPECT_EQ(c->secret_access_key, "secret-ci");
  EXPECT_EQ(c->session_token, "token-ci");
}

TEST(S3Credentials, NothingFoundNamesWhatWasTried) {
  TempDir dir;
  auto c = LoadS3Credentials(EnvOf({{"HOME", dir.path()}}));
  ASSERT_TRUE(c.status().Is(Code::kFailedPrecondition));
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("AWS_ACCESS_KEY_ID"), std::string::npos) << m;
  EXPECT_NE(m.find(dir.path() + "/.aws/credentials does not exist"), std::string::npos) << m;

  auto no_home = LoadS3Credentials(EnvOf({}));
  ASSERT_TRUE(no_home.status().Is(Code::kFailedPrecondition));
  EXPECT_NE(no_home.status().message().find("HOME is not set"), std::string::npos);

  auto named = LoadS3Credentials(EnvOf({{"AWS_SHARED_CREDENTIALS_FILE", dir.path() + "/nope"}}));
  ASSERT_TRUE(named.status().Is(Code::kFailedPrecondition));
  EXPECT_NE(named.status().message().find("AWS_SHARED_CREDENTIALS_FILE"), std::string::npos);
}

TEST(S3Credentials, UnknownProfileListsTheOnesThere) {
  TempDir dir;
  std::string path = dir.Write("creds", kFile);
  auto c =
      LoadS3Credentials(EnvOf({{"AWS_SHARED_CREDENTIALS_FILE", path}, {"AWS_PROFILE", "prod"}}));
  ASSERT_TRUE(c.status().Is(Code::kFailedPrecondition));
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("no profile [prod] in " + path), std::string::npos) << m;
  EXPECT_NE(m.find("ci, default, half"), std::string::npos) << m;
  EXPECT_NE(m.find("AWS_PROFILE"), std::string::npos) << m;
}

TEST(S3Credentials, ProfileWithoutSecretIsAnError) {
  auto c = ParseSharedCredentials(kFile, "half", "/f");
  ASSERT_TRUE(c.status().Is(Code::kFailedPrecondition));
  EXPECT_NE(c.status().message().find("aws_secret_access_key"), std::string::npos);
}

TEST(S3Credentials, UnreadableFileIsAnIoError) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/creds");
  auto c = LoadS3Credentials(EnvOf({{"AWS_SHARED_CREDENTIALS_FILE", dir.path() + "/creds"}}));
  EXPECT_TRUE(c.status().Is(Code::kIoError)) << c.status().ToString();
}

}  // namespace
}  // namespace berth::storage::s3
