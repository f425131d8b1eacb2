#include "auth/token.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <latch>
#include <set>
#include <thread>
#include <vector>

#include "auth/crypto.h"
#include "auth/shared_documents_testing.h"

namespace berth::auth {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNowMs = 1714979289000;  // 2024-05-06T07:08:09Z

Caller Alice() {
  Caller c;
  c.authenticated = true;
  c.account_id = "123456789012";
  c.access_key_id = "AKIAABCDEFGHIJKLMNOP";
  c.principal_arn = "arn:aws:iam::123456789012:user/alice";
  return c;
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("berth-token-test-" + HexEncode(RandomBytes(8)));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

mode_t ModeOf(const fs::path& p) {
  struct stat st;
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_mode & 0777;
}

TEST(TokenKeyring, FromKeyValidatesLengthAndDerivesStableId) {
  EXPECT_TRUE(TokenKeyring::FromKey("short").status().Is(Code::kInvalidArgument));
  std::string key(32, 'k');
  auto a = TokenKeyring::FromKey(key);
  auto b = TokenKeyring::FromKey(key);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->key_id(), b->key_id());
  EXPECT_EQ(a->key_id().size(), 12u);
  EXPECT_EQ(a->key(), key);
  EXPECT_NE(TokenKeyring::Generate().key_id(), TokenKeyring::Generate().key_id());
}

TEST(Token, RoundTrip) {
  ManualClock clock(kNowMs);
  TokenKeyring keyring = TokenKeyring::Generate();
  auto issued = IssueToken(keyring, Alice(), clock);
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  EXPECT_EQ(issued->expires_at_seconds, kNowMs / 1000 + 12 * 3600);
  EXPECT_EQ(issued->password.rfind("v1." + keyring.key_id() + ".", 0), 0u);

  auto claims = VerifyToken(issued->password, keyring, clock);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_TRUE(claims->caller.authenticated);
  EXPECT_FALSE(claims->caller.unrestricted);
  EXPECT_EQ(claims->caller.account_id, "123456789012");
  EXPECT_EQ(claims->caller.access_key_id, "AKIAABCDEFGHIJKLMNOP");
  EXPECT_EQ(claims->caller.principal_arn, "arn:aws:iam::123456789012:user/alice");
  EXPECT_EQ(claims->issued_at_seconds, kNowMs / 1000);
  EXPECT_EQ(claims->expires_at_seconds, issued->expires_at_seconds);
}

TEST(Token, ExpiresAfterItsLifetime) {
  ManualClock clock(kNowMs);
  TokenKeyring keyring = TokenKeyring::Generate();
  auto issued = IssueToken(keyring, Alice(), clock, /*ttl_seconds=*/60);
  ASSERT_TRUE(issued.ok());
  clock.Advance(59'999);
  EXPECT_TRUE(VerifyToken(issued->password, keyring, clock).ok());
  clock.Advance(1);
  auto v = VerifyToken(issued->password, keyring, clock);
  EXPECT_EQ(v.kind(), TokenError::kExpired);
  EXPECT_TRUE(v.status().Is(Code::kUnauthorized));
  EXPECT_NE(v.status().message().find("expired"), std::string::npos);
}

TEST(Token, DefaultLifetimeIsTwelveHours) {
  ManualClock clock(kNowMs);
  TokenKeyring keyring = TokenKeyring::Generate();
  auto issued = IssueToken(keyring, Alice(), clock);
  clock.Advance(12 * 3600 * 1000 - 1);
  EXPECT_TRUE(VerifyToken(issued->password, keyring, clock).ok());
  clock.Advance(1);
  EXPECT_EQ(VerifyToken(issued->password, keyring, clock).kind(), TokenError::kExpired);
}

TEST(Token, ForgedSignatureIsRefused) {
  ManualClock clock(kNowMs);
  TokenKeyring keyring = TokenKeyring::Generate();
  std::string pw = IssueToken(keyring, Alice(), clock)->password;
  // Flip the MAC's first character.
  std::string bad_mac = pw;
  size_t mac_at = pw.rfind('.') + 1;
  bad_mac[mac_at] = bad_mac[mac_at] == 'A' ? 'B' : 'A';
  EXPECT_EQ(VerifyToken(bad_mac, keyring, clock).kind(), TokenError::kForged);

  // Re-encode the claims for another account and keep the old MAC.
  auto parts_end = pw.find('.', 3 + keyring.key_id().size() + 1);
  std::string forged_claims =
      "999999999999\nAKIAABCDEFGHIJKLMNOP\narn:aws:iam::999999999999:root\n0\n9999999999";
  std::string forged = pw.substr(0, 3 + keyring.key_id().size() + 1) +
                       Base64UrlEncode(forged_claims) + pw.substr(parts_end);
  auto v = VerifyToken(forged, keyring, clock);
  EXPECT_EQ(v.kind(), TokenError::kForged);
  EXPECT_TRUE(v.status().Is(Code::kUnauthorized));
}

TEST(Token, AnotherRegistrysKeyIsUnknown) {
  ManualClock clock(kNowMs);
  TokenKeyring ours = TokenKeyring::Generate();
  TokenKeyring theirs = TokenKeyring::Generate();
  std::string pw = IssueToken(theirs, Alice(), clock)->password;
  auto v = VerifyToken(pw, ours, clock);
  EXPECT_EQ(v.kind(), TokenError::kUnknownKey);
  // Claiming our key id with their MAC is a forgery.
  std::string relabelled = "v1." + ours.key_id() + pw.substr(3 + theirs.key_id().size());
  EXPECT_EQ(VerifyToken(relabelled, ours, clock).kind(), TokenError::kForged);
}

TEST(Token, MalformedPasswords) {
  ManualClock clock(kNowMs);
  TokenKeyring keyring = TokenKeyring::Generate();
  std::string pw = IssueToken(keyring, Alice(), clock)->password;
  for (const std::string& bad : {std::string(""), std::string("hunter2"), std::string("v1.a.b"),
                                 "v2" + pw.substr(2), pw + ".extra", std::string("v1...")}) {
    auto v = VerifyToken(bad, keyring, clock);
    EXPECT_EQ(v.kind(), TokenError::kMalformed) << bad;
    EXPECT_TRUE(v.status().Is(Code::kUnauthorized));
  }
  // Authentic (correct MAC) but with claims that do not parse.
  auto sign = [&](std::string claims_b64) {
    std::string signed_part = "v1." + keyring.key_id() + "." + claims_b64;
    return signed_part + "." + Base64UrlEncode(HmacSha256(keyring.key(), signed_part));
  };
  EXPECT_EQ(VerifyToken(sign("!!"), keyring, clock).kind(), TokenError::kMalformed);
  EXPECT_EQ(VerifyToken(sign(Base64UrlEncode("a\nb\nc\n1")), keyring, clock).kind(),
            TokenError::kMalformed);
  EXPECT_EQ(VerifyToken(sign(Base64UrlEncode("a\nb\nc\nx\n2")), keyring, clock).kind(),
            TokenError::kMalformed);
  EXPECT_EQ(VerifyToken(sign(Base64UrlEncode("a\nb\nc\n5\n2")), keyring, clock).kind(),
            TokenError::kMalformed);
  EXPECT_EQ(VerifyToken(sign(Base64UrlEncode("\nb\nc\n1\n9999999999")), keyring, clock).kind(),
            TokenError::kMalformed);
  EXPECT_TRUE(VerifyToken(sign(Base64UrlEncode("a\nb\nc\n1\n9999999999")), keyring, clock).ok());
}

TEST(Token, NeverContainsAColon) {
  ManualClock clock(kNowMs);
  TokenKeyring keyring = TokenKeyring::Generate();
  for (int i = 0; i < 10'000; ++i) {
    Caller c = Alice();
    c.principal_arn = "arn:aws:iam::123456789012:user/u" + std::to_string(i);
    auto issued = IssueToken(keyring, c, clock, 1 + i);
    ASSERT_TRUE(issued.ok());
    ASSERT_EQ(issued->password.find(':'), std::string::npos) << issued->password;
    for (char ch : issued->password) {
      ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' ||
                  ch == '.')
          << issued->password;
    }
    if (i % 1000 == 0) keyring = TokenKeyring::Generate();
  }
}

TEST(Token, IssueValidatesItsInput) {
  ManualClock clock(kNowMs);
  TokenKeyring keyring = TokenKeyring::Generate();
  EXPECT_TRUE(IssueToken(keyring, Alice(), clock, 0).status().Is(Code::kInvalidArgument));
  Caller c = Alice();
  c.account_id = "";
  EXPECT_TRUE(IssueToken(keyring, c, clock).status().Is(Code::kInvalidArgument));
  c = Alice();
  c.principal_arn = "arn\nx";
  EXPECT_TRUE(IssueToken(keyring, c, clock).status().Is(Code::kInvalidArgument));
}

TEST(Token, DockerAuthorizationTokenIsBase64OfAwsColonPassword) {
  EXPECT_EQ(DockerAuthorizationToken("pw"), Base64Encode("AWS:pw"));
  ManualClock clock(kNowMs);
  TokenKeyring keyring = TokenKeyring::Generate();
  std::string pw = IssueToken(keyring, Alice(), clock)->password;
  // What the aws CLI does with it: decode, split on ':' → exactly ["AWS", password].
  std::string decoded = *Base64Decode(DockerAuthorizationToken(pw));
  EXPECT_EQ(decoded.substr(0, 4), "AWS:");
  EXPECT_EQ(decoded.substr(4), pw);
  EXPECT_EQ(std::count(decoded.begin(), decoded.end(), ':'), 1);
}

TEST(Token, ErrorNamesAreDistinct) {
  EXPECT_EQ(TokenErrorName(TokenError::kNone), "none");
  EXPECT_EQ(TokenErrorName(TokenError::kMalformed), "malformed");
  EXPECT_EQ(TokenErrorName(TokenError::kUnknownKey), "unknown_key");
  EXPECT_EQ(TokenErrorName(TokenError::kForged), "forged");
  EXPECT_EQ(TokenErrorName(TokenError::kExpired), "expired");
}

TEST(BasicAuthorization, ParsesUserAndPassword) {
  auto c = ParseBasicAuthorization("Basic " + Base64Encode("AWS:v1.abc.def.ghi"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->user, "AWS");
  EXPECT_EQ(c->password, "v1.abc.def.ghi");
  // Scheme is case-insensitive; the password may contain ':' and may be empty.
  c = ParseBasicAuthorization("basic " + Base64Encode("u:p:q"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->password, "p:q");
  c = ParseBasicAuthorization("BASIC  " + Base64Encode("u:") + " ");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->password, "");
}

TEST(BasicAuthorization, ClearErrors) {
  struct Case {
    std::string header;
    const char* message_part;
  };
  for (const Case& c : std::vector<Case>{
           {"Bearer abc", "scheme 'Bearer'"},
           {"", "scheme ''"},
           {"Basic", "no credentials"},
           {"Basic   ", "no credentials"},
           {"Basic !!!", "not valid base64"},
           {"Basic " + Base64Encode("nocolon"), "'user:password'"},
           {"Basic " + Base64Encode(":pw"), "empty user name"},
       }) {
    auto r = ParseBasicAuthorization(c.header);
    EXPECT_TRUE(r.status().Is(Code::kUnauthorized)) << c.header;
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos)
        << c.header << " → " << r.status().message();
  }
}

TEST(TokenKeyFile, CreatesKeyWithMode0600AndReopensTheSameKey) {
  TempDir dir;
  fs::path path = dir.path() / "data" / "token.key";
  ManualClock clock(kNowMs);
  auto file = TokenKeyFile::Open(path, clock);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(ModeOf(path), 0600u);
  std::string id = (*file)->Current()->key_id();
  auto again = TokenKeyFile::Open(path, clock);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Current()->key_id(), id);
  EXPECT_EQ(fs::file_size(path), 65u);  // 64 hex + newline
}

TEST(TokenKeyFile, RotationRevokesEveryEarlierToken) {
  TempDir dir;
  ManualClock clock(kNowMs);
  auto file = TokenKeyFile::Open(dir.path() / "token.key", clock);
  ASSERT_TRUE(file.ok());
  auto old_keyring = (*file)->Current();
  std::string pw = IssueToken(*old_keyring, Alice(), clock)->password;
  ASSERT_TRUE(VerifyToken(pw, *(*file)->Current(), clock).ok());

  ASSERT_TRUE((*file)->Rotate().ok());
  auto new_keyring = (*file)->Current();
  EXPECT_NE(new_keyring->key_id(), old_keyring->key_id());
  EXPECT_EQ(VerifyToken(pw, *new_keyring, clock).kind(), TokenError::kUnknownKey);
  EXPECT_TRUE(
      VerifyToken(IssueToken(*new_keyring, Alice(), clock)->password, *new_keyring, clock).ok());
  EXPECT_EQ(ModeOf(dir.path() / "token.key"), 0600u);
}

TEST(TokenKeyFile, PicksUpRotationByAnotherProcessWithinASecond) {
  TempDir dir;
  fs::path path = dir.path() / "token.key";
  ManualClock clock(kNowMs);
  auto file = TokenKeyFile::Open(path, clock);
  ASSERT_TRUE(file.ok());
  std::string before = (*file)->Current()->key_id();

  auto rotated = TokenKeyFile::RotateFile(path);  // what `berth admin rotate-token-key` does
  ASSERT_TRUE(rotated.ok());
  EXPECT_NE(*rotated, before);
  EXPECT_EQ((*file)->Current()->key_id(), before);  // checked at most once a second
  clock.Advance(1000);
  EXPECT_EQ((*file)->Current()->key_id(), *rotated);
}

TEST(TokenKeyFile, KeepsTheLastGoodKeyWhenTheFileBreaks) {
  TempDir dir;
  fs::path path = dir.path() / "token.key";
  ManualClock clock(kNowMs);
  auto file = TokenKeyFile::Open(path, clock);
  ASSERT_TRUE(file.ok());
  std::string before = (*file)->Current()->key_id();
  { std::ofstream(path, std::ios::trunc) << "garbage\n"; }
  clock.Advance(1000);
  EXPECT_EQ((*file)->Current()->key_id(), before);
  fs::remove(path);
  clock.Advance(1000);
  EXPECT_EQ((*file)->Current()->key_id(), before);
}

TEST(TokenKeyFile, CorruptFileIsAnErrorAtOpen) {
  TempDir dir;
  fs::path path = dir.path() / "token.key";
  { std::ofstream(path) << "abcd\n"; }
  auto file = TokenKeyFile::Open(path);
  EXPECT_TRUE(file.status().Is(Code::kCorruption));
  EXPECT_NE(file.status().message().find("rotate-token-key"), std::string::npos);
}

SharedStoreOptions SharedOptions() {
  SharedStoreOptions o;
  o.refresh_ms = 2000;
  return o;
}

std::unique_ptr<TokenKeySource> OpenShared(SharedDocuments& docs, const Clock& clock) {
  auto source = OpenSharedTokenKey(docs, clock, SharedOptions());
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  return source.ok() ? std::move(*source) : nullptr;
}

TEST(SharedTokenKey, ATokenMintedOnOneNodeVerifiesOnAnother) {
  MemorySharedDocuments docs;
  ManualClock clock(kNowMs);
  auto a = OpenShared(docs, clock);  // creates the key
  auto b = OpenShared(docs, clock);  // adopts it
  EXPECT_EQ(a->Current()->key_id(), b->Current()->key_id());
  std::string stored = **docs.Get(kSharedTokenKeyName);
  EXPECT_EQ(stored, HexEncode(a->Current()->key()));  // 64 hex characters, as token.key
  std::string pw = IssueToken(*a->Current(), Alice(), clock)->password;
  auto v = VerifyToken(pw, *b->Current(), clock);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->caller.principal_arn, Alice().principal_arn);
}

TEST(SharedTokenKey, RotationOnOneNodeEndsTokensOnEveryNodeWithinTheRefreshInterval) {
  MemorySharedDocuments docs;
  ManualClock clock(kNowMs);
  auto a = OpenShared(docs, clock);
  auto b = OpenShared(docs, clock);
  std::string pw = IssueToken(*b->Current(), Alice(), clock)->password;
  std::string old_id = a->Current()->key_id();

  ASSERT_TRUE(a->Rotate().ok());
  EXPECT_NE(a->Current()->key_id(), old_id);  // at once where it was rotated
  EXPECT_EQ(VerifyToken(pw, *a->Current(), clock).kind(), TokenError::kUnknownKey);
  clock.Advance(1999);
  EXPECT_TRUE(VerifyToken(pw, *b->Current(), clock).ok());
  clock.Advance(1);
  EXPECT_EQ(b->Current()->key_id(), a->Current()->key_id());
  EXPECT_EQ(VerifyToken(pw, *b->Current(), clock).kind(), TokenError::kUnknownKey);
  // New tokens work everywhere again.
  std::string fresh = IssueToken(*b->Current(), Alice(), clock)->password;
  EXPECT_TRUE(VerifyToken(fresh, *a->Current(), clock).ok());
}

TEST(SharedTokenKey, NodesOpeningAtOnceAgreeOnOneKey) {
  MemorySharedDocuments mem;
  CountingDocuments docs(mem);
  constexpr int kNodes = 8;
  std::latch start(kNodes);
  std::vector<std::string> ids(kNodes);
  std::vector<std::thread> threads;
  for (int n = 0; n < kNodes; ++n) {
    threads.emplace_back([&, n] {
      start.arrive_and_wait();
      auto source = OpenSharedTokenKey(docs);
      ASSERT_TRUE(source.ok()) << source.status().ToString();
      ids[n] = (*source)->Current()->key_id();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u);
  EXPECT_EQ(TokenKeyring::FromKey(*HexDecode(**mem.Get(kSharedTokenKeyName)))->key_id(), ids[0]);
}

TEST(SharedTokenKey, KeepsTheLastGoodKeyWhenTheDocumentBreaks) {
  MemorySharedDocuments mem;
  CountingDocuments docs(mem);
  ManualClock clock(kNowMs);
  auto source = OpenShared(docs, clock);
  std::string before = source->Current()->key_id();
  std::string good = **mem.Get(kSharedTokenKeyName);
  ASSERT_TRUE(mem.Swap(kSharedTokenKeyName, good, "garbage").ok());
  clock.Advance(2000);
  EXPECT_EQ(source->Current()->key_id(), before);
  docs.set_fail(true);
  clock.Advance(2000);
  EXPECT_EQ(source->Current()->key_id(), before);
  EXPECT_TRUE(source->Rotate().Is(Code::kUnavailable));
  EXPECT_EQ(source->Current()->key_id(), before);
  docs.set_fail(false);
  // Opening against a corrupt document fails fast; rotating repairs it.
  auto broken = OpenSharedTokenKey(docs, clock);
  EXPECT_TRUE(broken.status().Is(Code::kCorruption));
  EXPECT_NE(broken.status().message().find("rotate-token-key"), std::string::npos);
  ASSERT_TRUE(source->Rotate().ok());
  EXPECT_NE(source->Current()->key_id(), before);
  EXPECT_TRUE(OpenSharedTokenKey(docs, clock).ok());
}

TEST(TokenKeyFile, IsATokenKeySource) {
  TempDir dir;
  ManualClock clock(kNowMs);
  auto file = TokenKeyFile::Open(dir.path() / "token.key", clock);
  ASSERT_TRUE(file.ok());
  TokenKeySource& source = **file;
  std::string before = source.Current()->key_id();
  ASSERT_TRUE(source.Rotate().ok());
  EXPECT_NE(source.Current()->key_id(), before);
}

}  // namespace
}  // namespace berth::auth
