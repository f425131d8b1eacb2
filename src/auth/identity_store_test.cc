#include "auth/identity_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "auth/crypto.h"
#include "auth/secret_file.h"

namespace berth::auth {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNowMs = 1714979289000;
constexpr char kAccount[] = "123456789012";
const char kReadOnly[] =
    R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}})";

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("berth-identity-test-" + HexEncode(RandomBytes(8)));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  fs::path file() const { return path_ / "identities.json"; }

 private:
  fs::path path_;
};

mode_t ModeOf(const fs::path& p) {
  struct stat st;
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

std::string Slurp(const fs::path& p) { return *ReadSmallFile(p); }

std::unique_ptr<IdentityStore> Open(const fs::path& file, const Clock& clock) {
  auto store = OpenFileIdentityStore(file, clock);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

NewIdentity Alice() { return NewIdentity{kAccount, "alice", {kReadOnly}, false}; }

TEST(IdentityCredentials, GeneratedShapesMatchAws) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = GenerateAccessKeyId();
    ASSERT_EQ(id.size(), 20u);
    ASSERT_EQ(id.substr(0, 4), "AKIA");
    for (char c : id.substr(4)) {
      ASSERT_TRUE((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')) << id;
    }
    ids.insert(id);
    std::string secret = GenerateSecretAccessKey();
    ASSERT_EQ(secret.size(), 40u);
    for (char c : secret)
      ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/');
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(IdentityValidation, AccountIdsAndUserNames) {
  EXPECT_TRUE(ValidateAccountId("123456789012").ok());
  for (const char* bad : {"", "12345678901", "1234567890123", "12345678901a"}) {
    EXPECT_TRUE(ValidateAccountId(bad).Is(Code::kInvalidArgument)) << bad;
  }
  for (const char* good : {"a", "alice", "ci-bot", "first.last@example.com", "A+B=C,D_E"}) {
    EXPECT_TRUE(ValidateUserName(good).ok()) << good;
  }
  for (const std::string& bad : {std::string(""), std::string("a b"), std::string("a/b"),
                                 std::string("ü"), std::string(65, 'a')}) {
    EXPECT_TRUE(ValidateUserName(bad).Is(Code::kInvalidArgument)) << bad;
  }
}

TEST(FileIdentityStore, MissingFileIsAnEmptyStore) {
  TempDir dir;
  ManualClock clock(kNowMs);
  auto store = Open(dir.file(), clock);
  EXPECT_TRUE(store->List()->empty());
  EXPECT_TRUE(store->Lookup("AKIAAAAAAAAAAAAAAAAA").status().Is(Code::kNotFound));
  EXPECT_FALSE(fs::exists(dir.file()));
}

TEST(FileIdentityStore, CreateLookupListDelete) {
  TempDir dir;
  ManualClock clock(kNowMs);
  auto store = Open(dir.file(), clock);

  auto alice = store->Create(Alice());
  ASSERT_TRUE(alice.ok()) << alice.status().ToString();
  EXPECT_EQ(alice->access_key_id.size(), 20u);
  EXPECT_EQ(alice->secret_access_key.size(), 40u);
  EXPECT_EQ(alice->account_id, kAccount);
  EXPECT_EQ(alice->user_name, "alice");
  EXPECT_FALSE(alice->admin);
  EXPECT_EQ(alice->created_at_seconds, kNowMs / 1000);
  EXPECT_EQ(alice->principal_arn(), "arn:aws:iam::123456789012:user/alice");
  ASSERT_EQ(alice->policies.size(), 1u);

  NewIdentity root_spec{kAccount, "root", {std::string(kAdministratorPolicy)}, true};
  auto root = store->Create(root_spec);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->principal_arn(), "arn:aws:iam::123456789012:root");
  EXPECT_NE(root->access_key_id, alice->access_key_id);

  // Visible at once to the store that made the change.
  auto found = store->Lookup(alice->access_key_id);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ((*found)->secret_access_key, alice->secret_access_key);
  EXPECT_EQ((*found)->policy_documents.size(), 1u);
  ASSERT_EQ((*found)->policies.size(), 1u);
  Caller c = (*found)->ToCaller();
  EXPECT_TRUE(c.authenticated);
  EXPECT_FALSE(c.unrestricted);
  EXPECT_EQ(c.account_id, kAccount);
  EXPECT_EQ(c.access_key_id, alice->access_key_id);
  EXPECT_EQ(c.principal_arn, "arn:aws:iam::123456789012:user/alice");

  auto list = store->List();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0]->user_name, "alice");
  EXPECT_EQ((*list)[1]->user_name, "root");

  EXPECT_EQ(ModeOf(dir.file()), 0600u);

  ASSERT_TRUE(store->Delete(alice->access_key_id).ok());
  EXPECT_TRUE(store->Lookup(alice->access_key_id).status().Is(Code::kNotFound));
  EXPECT_TRUE(store->Delete(alice->access_key_id).Is(Code::kNotFound));
  EXPECT_EQ(store->List()->size(), 1u);
  EXPECT_EQ(ModeOf(dir.file()), 0600u);
  // A snapshot taken before the delete stays valid.
  EXPECT_EQ((*found)->user_name, "alice");
}

TEST(FileIdentityStore, SurvivesReopen) {
  TempDir dir;
  ManualClock clock(kNowMs);
  std::string key;
  {
    auto store = Open(dir.file(), clock);
    key = store->Create(Alice())->access_key_id;
  }
  auto store = Open(dir.file(), clock);
  auto found = store->Lookup(key);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ((*found)->user_name, "alice");
  EXPECT_EQ((*found)->policies.size(), 1u);
  // The file is indented JSON a person can edit.
  std::string text = Slurp(dir.file());
  EXPECT_NE(text.find("\n  \"identities\": ["), std::string::npos) << text;
  EXPECT_NE(text.find("\"Action\""), std::string::npos);
}

TEST(FileIdentityStore, CreateValidatesItsInput) {
  TempDir dir;
  ManualClock clock(kNowMs);
  auto store = Open(dir.file(), clock);
  NewIdentity bad_account = Alice();
  bad_account.account_id = "12";
  EXPECT_NE(store->Create(bad_account).status().message().find("account id"), std::string::npos);
  NewIdentity bad_user = Alice();
  bad_user.user_name = "no spaces";
  EXPECT_NE(store->Create(bad_user).status().message().find("user name"), std::string::npos);
  NewIdentity bad_policy = Alice();
  bad_policy.policy_documents = {kReadOnly, R"({"Statement":{"Effect":"Allow","Action":"ecr:*"}})"};
  auto r = store->Create(bad_policy);
  EXPECT_TRUE(r.status().Is(Code::kInvalidArgument));
  EXPECT_NE(r.status().message().find("policy 1: Statement.Resource: is required"),
            std::string::npos)
      << r.status().message();
  EXPECT_TRUE(store->List()->empty());
}

TEST(FileIdentityStore, SeesNewKeysAtOnceAndDeletionsWithinASecond) {
  TempDir dir;
  ManualClock server_clock(kNowMs);
  auto server = Open(dir.file(), server_clock);
  auto admin_cli = Open(dir.file(), Clock::Real());  // `berth admin` in another process

  // A key created by another process works at once: a lookup miss re-checks the file.
  auto alice = admin_cli->Create(Alice());
  ASSERT_TRUE(alice.ok());
  EXPECT_TRUE(server->Lookup(alice->access_key_id).ok());

  // A deletion is seen at the next periodic check (at most once a second).
  ASSERT_TRUE(admin_cli->Delete(alice->access_key_id).ok());
  server_clock.Advance(999);
  EXPECT_TRUE(server->Lookup(alice->access_key_id).ok());
  server_clock.Advance(1);
  EXPECT_TRUE(server->Lookup(alice->access_key_id).status().Is(Code::kNotFound));
  EXPECT_TRUE(server->List()->empty());
}

TEST(FileIdentityStore, KeepsLastGoodContentsWhenTheFileBreaks) {
  TempDir dir;
  ManualClock clock(kNowMs);
  auto store = Open(dir.file(), clock);
  std::string key = store->Create(Alice())->access_key_id;
  { std::ofstream(dir.file(), std::ios::trunc) << "{ not json"; }
  clock.Advance(1000);
  EXPECT_TRUE(store->Lookup(key).ok());
  // And refuses to edit it rather than overwrite what a person is fixing.
  EXPECT_TRUE(store->Create(Alice()).status().Is(Code::kInvalidArgument));
  EXPECT_EQ(Slurp(dir.file()), "{ not json");
  // Opening a broken file is an error.
  EXPECT_TRUE(OpenFileIdentityStore(dir.file(), clock).status().Is(Code::kInvalidArgument));
}

TEST(FileIdentityStore, DeletedFileRevokesEveryKey) {
  TempDir dir;
  ManualClock clock(kNowMs);
  auto store = Open(dir.file(), clock);
  std::string key = store->Create(Alice())->access_key_id;
  fs::remove(dir.file());
  clock.Advance(1000);
  EXPECT_TRUE(store->Lookup(key).status().Is(Code::kNotFound));
}

TEST(FileIdentityStore, HandWrittenFile) {
  TempDir dir;
  {
    std::ofstream f(dir.file());
    f << R"({"version": 1, "identities": [
      {"access_key_id": "AKIDEXAMPLE000000000", "secret_access_key": "s3cr3t",
       "account_id": "123456789012", "user_name": "ci",
       "policies": [")"
      << R"({\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"ecr:*\",\"Resource\":\"*\"}})"
      << R"(", {"Statement": {"Effect": "Deny", "Action": "ecr:Delete*", "Resource": "*"}}]}]})";
  }
  ManualClock clock(kNowMs);
  auto store = Open(dir.file(), clock);
  auto id = store->Lookup("AKIDEXAMPLE000000000");
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE((*id)->admin);
  EXPECT_EQ((*id)->created_at_seconds, 0);
  ASSERT_EQ((*id)->policies.size(), 2u);  // a policy may be a string or an object
  EXPECT_EQ((*id)->policies[1].statements()[0].effect, Effect::kDeny);
}

TEST(FileIdentityStore, MalformedFilesNameTheProblem) {
  struct Case {
    std::string text;
    std::string message_part;
  };
  const std::string ok_fields =
      R"("access_key_id": "AKIAAAAAAAAAAAAAAAAA", "secret_access_key": "x", "account_id": "123456789012", "user_name": "u")";
  for (
      const Case& c : std::vector<Case>{
          {"[]", "must be a JSON object"},
          {R"({"version": 2})", "unsupported version"},
          {R"({"identities": {}})", "identities must be an array"},
          {R"({"identities": [1]})", "identities[0].: must be an object"},
          {R"({"identities": [{"secret_access_key": "x"}]})", "identities[0].access_key_id"},
          {R"({"identities": [{"access_key_id": "short", "secret_access_key": "x", "account_id": "123456789012", "user_name": "u"}]})",
           "identities[0].access_key_id: access key id must be"},
          {R"({"identities": [{"access_key_id": "AKIAAAAAAAAAAAAAAAAA", "account_id": "123456789012", "user_name": "u"}]})",
           "identities[0].secret_access_key"},
          {R"({"identities": [{"access_key_id": "AKIAAAAAAAAAAAAAAAAA", "secret_access_key": "x", "account_id": "1", "user_name": "u"}]})",
           "identities[0].account_id"},
          {R"({"identities": [{"access_key_id": "AKIAAAAAAAAAAAAAAAAA", "secret_access_key": "x", "account_id": "123456789012", "user_name": "a b"}]})",
           "identities[0].user_name"},
          {"{\"identities\": [{" + ok_fields + R"(, "admin": "yes"}]})", "identities[0].admin"},
          {"{\"identities\": [{" + ok_fields + R"(, "created_at": "today"}]})",
           "identities[0].created_at"},
          {"{\"identities\": [{" + ok_fields + R"(, "policies": {}}]})", "identities[0].policies"},
          {"{\"identities\": [{" + ok_fields + R"(, "policies": [{"Statement": []}]}]})",
           "identities[0].policies[0]: Statement: must not be empty"},
          {"{\"identities\": [{" + ok_fields + R"(, "colour": "blue"}]})",
           "identities[0].colour: unknown field"},
          {"{\"identities\": [{" + ok_fields + "}, {" + ok_fields + "}]}",
           "identities[1].access_key_id: duplicates"},
      }) {
    TempDir dir;
    { std::ofstream(dir.file()) << c.text; }
    auto store = OpenFileIdentityStore(dir.file());
    EXPECT_TRUE(store.status().Is(Code::kInvalidArgument)) << c.text;
    EXPECT_NE(store.status().message().find(c.message_part), std::string::npos)
        << c.text << "\n→ " << store.status().message();
  }
}

TEST(FileIdentityStore, ConcurrentCreatesAreAllKept) {
  TempDir dir;
  auto store = Open(dir.file(), Clock::Real());
  auto other = Open(dir.file(), Clock::Real());  // as if a second process
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      IdentityStore& s = t % 2 == 0 ? *store : *other;
      for (int i = 0; i < 5; ++i) {
        NewIdentity spec = Alice();
        spec.user_name = "u" + std::to_string(t) + "-" + std::to_string(i);
        EXPECT_TRUE(s.Create(spec).ok());
        EXPECT_TRUE(s.List().ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  auto reopened = Open(dir.file(), Clock::Real());
  EXPECT_EQ(reopened->List()->size(), 20u);
}

TEST(CredentialLookup, BackedByTheStore) {
  TempDir dir;
  ManualClock clock(kNowMs);
  auto store = Open(dir.file(), clock);
  Identity alice = *store->Create(Alice());
  CredentialLookup lookup = MakeCredentialLookup(*store);
  auto c = lookup(alice.access_key_id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->secret_access_key, alice.secret_access_key);
  EXPECT_EQ(c->caller.principal_arn, alice.principal_arn());
  EXPECT_TRUE(lookup("AKIANOPE000000000000").status().Is(Code::kNotFound));
}

TEST(EnsureAdministrator, CreatesOnceAndWritesCredentials) {
  TempDir dir;
  fs::path data = dir.path() / "berth-data";
  auto first = EnsureAdministrator(data, kAccount);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first);
  EXPECT_EQ(ModeOf(data / "identities.json"), 0600u);
  EXPECT_EQ(ModeOf(data / "credentials"), 0600u);

  auto store = Open(data / "identities.json", Clock::Real());
  auto list = store->List();
  ASSERT_EQ(list->size(), 1u);
  const Identity& admin = *(*list)[0];
  EXPECT_TRUE(admin.admin);
  EXPECT_EQ(admin.user_name, "admin");
  EXPECT_EQ(admin.account_id, kAccount);
  EXPECT_EQ(admin.principal_arn(), "arn:aws:iam::123456789012:root");
  EXPECT_EQ(Slurp(data / "credentials"),
            "[default]\naws_access_key_id = " + admin.access_key_id +
                "\naws_secret_access_key = " + admin.secret_access_key + "\n");

  // Its policy allows every ECR action on every repository of its account.
  AccessRequest req{admin.ToCaller(), "ecr:DeleteRepository",
                    RepositoryArn("us-east-1", kAccount, "any/repo"), kAccount};
  EXPECT_TRUE(Evaluate(req, admin.policies, nullptr).allowed);

  // Second start: nothing created, nothing rewritten.
  std::string before = Slurp(data / "identities.json");
  auto stamp_before = *StatFile(data / "identities.json");
  auto second = EnsureAdministrator(data, kAccount);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_EQ(Slurp(data / "identities.json"), before);
  EXPECT_EQ(*StatFile(data / "identities.json"), stamp_before);
}

TEST(EnsureAdministrator, TheCreatedKeySignsRequestsTheServerAccepts) {
  TempDir dir;
  ASSERT_TRUE(*EnsureAdministrator(dir.path(), kAccount));
  auto store = Open(dir.path() / "identities.json", Clock::Real());
  const Identity& admin = *(*store->List())[0];

  ManualClock clock(kNowMs);
  std::string body = "{}";
  std::string body_hash = Sha256Hex(body);
  SigningRequest s;
  s.method = "POST";
  s.path = "/";
  s.headers = {{"Host", "localhost:5000"},
               {"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"}};
  s.payload_sha256 = body_hash;
  s.access_key_id = admin.access_key_id;
  s.secret_access_key = admin.secret_access_key;
  s.region = "us-east-1";
  s.service = "ecr";
  s.time_seconds = kNowMs / 1000;
  auto signed_req = SignRequest(s);
  ASSERT_TRUE(signed_req.ok());
  SigV4Request req;
  req.method = "POST";
  req.path = "/";
  req.headers = {{"Host", "localhost:5000"},
                 {"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"},
                 {"X-Amz-Date", signed_req->amz_date},
                 {"Authorization", signed_req->authorization}};
  req.payload_sha256 = body_hash;
  auto v = VerifySigV4(req, MakeCredentialLookup(*store), clock);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->caller.principal_arn, "arn:aws:iam::123456789012:root");
}

TEST(EnsureAdministrator, RefusesBadAccountAndBrokenFile) {
  TempDir dir;
  EXPECT_TRUE(EnsureAdministrator(dir.path(), "abc").status().Is(Code::kInvalidArgument));
  { std::ofstream(dir.path() / "identities.json") << "{ broken"; }
  EXPECT_TRUE(EnsureAdministrator(dir.path(), kAccount).status().Is(Code::kInvalidArgument));
  EXPECT_FALSE(fs::exists(dir.path() / "credentials"));
  EXPECT_EQ(Slurp(dir.path() / "identities.json"), "{ broken");
}

TEST(SecretFile, WriteFileAtomicallySetsModeAndReplaces) {
  TempDir dir;
  fs::path p = dir.path() / "sub" / "f";
  ASSERT_TRUE(WriteFileAtomically(p, "one", 0600).ok());
  EXPECT_EQ(Slurp(p), "one");
  EXPECT_EQ(ModeOf(p), 0600u);
  auto s1 = *StatFile(p);
  ASSERT_TRUE(WriteFileAtomically(p, "two!", 0644).ok());
  EXPECT_EQ(Slurp(p), "two!");
  EXPECT_EQ(ModeOf(p), 0644u);
  auto s2 = *StatFile(p);
  EXPECT_NE(s1, s2);
  // No temporary files left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(p.parent_path()), fs::directory_iterator()), 1);
  EXPECT_FALSE(StatFile(dir.path() / "missing")->has_value());
  EXPECT_TRUE(ReadSmallFile(dir.path() / "missing").status().Is(Code::kNotFound));
  EXPECT_TRUE(ReadSmallFile(p, 3).status().Is(Code::kTooLarge));
}

}  // namespace
}  // namespace berth::auth
