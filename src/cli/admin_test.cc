#include "cli/admin.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "auth/crypto.h"
#include "auth/identity_store.h"
#include "auth/token.h"

namespace berth::cli {
namespace {

namespace fs = std::filesystem;

class AdminCommandTest : public ::testing::Test {
 protected:
  AdminCommandTest() {
    dir_ =
        fs::temp_directory_path() / ("berth-admin-test-" + auth::HexEncode(auth::RandomBytes(8)));
    fs::create_directories(dir_);
  }
  ~AdminCommandTest() override { fs::remove_all(dir_); }

  // Runs `berth admin ARGS... --data DIR`; returns the exit status.
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    CLI::App app{"berth"};
    app.require_subcommand(1);
    AddAdminCommand(app, out_, err_);
    args.insert(args.begin(), {"berth", "admin"});
    args.push_back("--data");
    args.push_back(dir_.string());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return e.get_exit_code();
    }
    return -1;  // every command exits through CLI::RuntimeError
  }

  std::vector<std::shared_ptr<const auth::Identity>> Identities() {
    auto store = auth::OpenFileIdentityStore(dir_ / "identities.json");
    EXPECT_TRUE(store.ok());
    return *(*store)->List();
  }

  fs::path dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(AdminCommandTest, CreateListDeleteKey) {
  fs::path policy = dir_ / "readonly.json";
  std::ofstream(policy) << R"({"Version":"2012-10-17","Statement":{"Effect":"Allow",
      "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}})";
  ASSERT_EQ(
      Run({"create-key", "--account", "123456789012", "--name", "ci", "--policy", policy.string()}),
      0)
      << err_.str();
  auto ids = Identities();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0]->user_name, "ci");
  EXPECT_EQ(ids[0]->policies.size(), 1u);
  EXPECT_NE(out_.str().find("aws_access_key_id = " + ids[0]->access_key_id), std::string::npos);
  EXPECT_NE(out_.str().find("aws_secret_access_key = " + ids[0]->secret_access_key),
            std::string::npos);
  EXPECT_NE(out_.str().find("arn:aws:iam::123456789012:user/ci"), std::string::npos);

  ASSERT_EQ(Run({"list-keys"}), 0);
  EXPECT_NE(out_.str().find("ACCESS KEY ID"), std::string::npos);
  EXPECT_NE(out_.str().find(ids[0]->access_key_id), std::string::npos);
  EXPECT_EQ(out_.str().find(ids[0]->secret_access_key), std::string::npos);  // never listed

  ASSERT_EQ(Run({"delete-key", ids[0]->access_key_id}), 0);
  EXPECT_TRUE(Identities().empty());
  EXPECT_EQ(Run({"delete-key", ids[0]->access_key_id}), 1);
  EXPECT_NE(err_.str().find("no identity has access key id"), std::string::npos);
  ASSERT_EQ(Run({"list-keys"}), 0);
  EXPECT_NE(out_.str().find("No access keys"), std::string::npos);
}

TEST_F(AdminCommandTest, AccountDefaultsToTheAdministrators) {
  EXPECT_EQ(Run({"create-key", "--name", "ci"}), 1);
  EXPECT_NE(err_.str().find("--account is required"), std::string::npos);
  ASSERT_TRUE(*auth::EnsureAdministrator(dir_, "111122223333"));
  ASSERT_EQ(Run({"create-key", "--name", "ci"}), 0) << err_.str();
  EXPECT_NE(err_.str().find("no policy attached"), std::string::npos);
  auto ids = Identities();
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[1]->account_id, "111122223333");
}

TEST_F(AdminCommandTest, AdminKeyGetsTheAdministratorPolicy) {
  ASSERT_EQ(Run({"create-key", "--account", "123456789012", "--name", "boss", "--admin"}), 0);
  auto ids = Identities();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_TRUE(ids[0]->admin);
  EXPECT_EQ(ids[0]->policy_documents,
            std::vector<std::string>{std::string(auth::kAdministratorPolicy)});
}

TEST_F(AdminCommandTest, CreateKeyErrors) {
  EXPECT_EQ(Run({"create-key", "--account", "1", "--name", "x"}), 1);
  EXPECT_NE(err_.str().find("account id must be 12 digits"), std::string::npos);
  EXPECT_EQ(Run({"create-key", "--account", "123456789012", "--name", "x y"}), 1);
  EXPECT_NE(err_.str().find("user name"), std::string::npos);
  EXPECT_EQ(Run({"create-key", "--account", "123456789012", "--name", "x", "--policy",
                 (dir_ / "missing.json").string()}),
            1);
  EXPECT_NE(err_.str().find("--policy"), std::string::npos);
  std::ofstream(dir_ / "bad.json") << R"({"Statement":{"Effect":"Allow","Action":"ecr:*"}})";
  EXPECT_EQ(Run({"create-key", "--account", "123456789012", "--name", "x", "--policy",
                 (dir_ / "bad.json").string()}),
            1);
  EXPECT_NE(err_.str().find("Statement.Resource: is required"), std::string::npos) << err_.str();
  EXPECT_TRUE(Identities().empty());
  // --name is required (a CLI11 usage error, non-zero).
  EXPECT_NE(Run({"create-key", "--account", "123456789012"}), 0);
}

TEST_F(AdminCommandTest, RotateTokenKey) {
  ASSERT_EQ(Run({"rotate-token-key"}), 0) << err_.str();
  auto file = auth::TokenKeyFile::Open(dir_ / "token.key");
  ASSERT_TRUE(file.ok());
  std::string first = (*file)->Current()->key_id();
  EXPECT_NE(out_.str().find(first), std::string::npos);
  ASSERT_EQ(Run({"rotate-token-key"}), 0);
  auto again = auth::TokenKeyFile::Open(dir_ / "token.key");
  EXPECT_NE((*again)->Current()->key_id(), first);
  struct stat st;
  ASSERT_EQ(::stat((dir_ / "token.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace berth::cli
