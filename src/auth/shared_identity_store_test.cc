// The identity store on shared documents: several nodes over one document.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <latch>
#include <set>
#include <thread>

#include "auth/crypto.h"
#include "auth/identity_store.h"
#include "auth/secret_file.h"
#include "auth/shared_documents.h"
#include "auth/shared_documents_testing.h"

namespace berth::auth {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNowMs = 1714979289000;
constexpr char kAccount[] = "123456789012";
const char kReadOnly[] =
    R"({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["ecr:BatchGetImage"],"Resource":"*"}})";

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("berth-shared-identity-test-" + HexEncode(RandomBytes(8)));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

NewIdentity Named(std::string name) { return NewIdentity{kAccount, std::move(name), {kReadOnly}}; }

SharedStoreOptions Options() {
  SharedStoreOptions o;
  o.refresh_ms = 2000;
  o.miss_refresh_ms = 250;
  return o;
}

std::unique_ptr<IdentityStore> Open(SharedDocuments& docs, const Clock& clock,
                                    SharedStoreOptions options = Options()) {
  auto store = OpenSharedIdentityStore(docs, clock, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

size_t CountFiles(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(SharedIdentityStore, AbsentDocumentIsAnEmptyStore) {
  MemorySharedDocuments docs;
  ManualClock clock(kNowMs);
  auto store = Open(docs, clock);
  EXPECT_TRUE(store->List()->empty());
  EXPECT_TRUE(store->Lookup("AKIANOPE000000000000").status().Is(Code::kNotFound));
  EXPECT_FALSE(docs.Get(kSharedIdentitiesName)->has_value());  // nothing written by reading
}

TEST(SharedIdentityStore, NodesSeeEachOthersCreateAndDeleteWithinTheRefreshInterval) {
  MemorySharedDocuments docs;
  ManualClock clock(kNowMs);
  auto a = Open(docs, clock);
  auto b = Open(docs, clock);

  auto alice = a->Create(Named("alice"));
  ASSERT_TRUE(alice.ok()) << alice.status().ToString();
  EXPECT_TRUE(a->Lookup(alice->access_key_id).ok());  // at once on the node that made it
  EXPECT_EQ(a->List()->size(), 1u);
  EXPECT_TRUE(b->List()->empty());  // b's copy is younger than refresh_ms

  // A miss on b re-reads early, but not sooner than miss_refresh_ms after its last read.
  EXPECT_TRUE(b->Lookup(alice->access_key_id).status().Is(Code::kNotFound));
  clock.Advance(250);
  auto seen = b->Lookup(alice->access_key_id);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ((*seen)->secret_access_key, alice->secret_access_key);
  EXPECT_EQ((*seen)->policies.size(), 1u);

  // A deletion on b is seen by a (whose lookups still hit) at its next refresh.
  ASSERT_TRUE(b->Delete(alice->access_key_id).ok());
  EXPECT_TRUE(b->Lookup(alice->access_key_id).status().Is(Code::kNotFound));
  clock.Advance(1749);  // 1999 ms since a's last read (when it opened)
  EXPECT_TRUE(a->Lookup(alice->access_key_id).ok());
  clock.Advance(1);
  EXPECT_TRUE(a->Lookup(alice->access_key_id).status().Is(Code::kNotFound));
  EXPECT_TRUE(a->List()->empty());
  EXPECT_TRUE(a->Delete(alice->access_key_id).Is(Code::kNotFound));
}

TEST(SharedIdentityStore, MissRefreshIsRateLimited) {
  MemorySharedDocuments mem;
  CountingDocuments docs(mem);
  ManualClock clock(kNowMs);
  auto store = Open(docs, clock);
  ASSERT_EQ(docs.gets(), 1);  // the load

  // A flood of unknown keys: at most one read per miss_refresh_ms.
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(
        store->Lookup("AKIA" + std::to_string(1000000000000000 + i)).status().Is(Code::kNotFound));
  }
  EXPECT_EQ(docs.gets(), 1);
  for (int step = 1; step <= 8; ++step) {
    clock.Advance(125);
    for (int i = 0; i < 100; ++i) (void)store->Lookup("AKIANOPE000000000000");
    EXPECT_EQ(docs.gets(), 1 + step / 2) << "after " << step * 125 << " ms";
  }
  // Hits never read early; the periodic refresh still happens.
  Identity alice = *store->Create(Named("alice"));
  int before = docs.gets();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(store->Lookup(alice.access_key_id).ok());
  EXPECT_EQ(docs.gets(), before);
  clock.Advance(2000);
  ASSERT_TRUE(store->Lookup(alice.access_key_id).ok());
  EXPECT_EQ(docs.gets(), before + 1);
}

TEST(SharedIdentityStore, ConcurrentCreatesOnSeveralNodesLoseNone) {
  MemorySharedDocuments docs;
  constexpr int kNodes = 4, kThreadsPerNode = 2, kEach = 8;
  std::vector<std::unique_ptr<IdentityStore>> nodes;
  for (int n = 0; n < kNodes; ++n) nodes.push_back(Open(docs, Clock::Real()));
  std::latch start(kNodes * kThreadsPerNode);
  std::vector<std::thread> threads;
  for (int t = 0; t < kNodes * kThreadsPerNode; ++t) {
    threads.emplace_back([&, t] {
      IdentityStore& node = *nodes[t % kNodes];
      start.arrive_and_wait();
      for (int i = 0; i < kEach; ++i) {
        auto created = node.Create(Named("u" + std::to_string(t) + "-" + std::to_string(i)));
        ASSERT_TRUE(created.ok()) << created.status().ToString();
        EXPECT_TRUE(node.Lookup(created->access_key_id).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  auto fresh = Open(docs, Clock::Real());
  auto list = *fresh->List();
  EXPECT_EQ(list.size(), static_cast<size_t>(kNodes * kThreadsPerNode * kEach));
  std::set<std::string> keys, names;
  for (const auto& id : list) {
    keys.insert(id->access_key_id);
    names.insert(id->user_name);
  }
  EXPECT_EQ(keys.size(), list.size());
  EXPECT_EQ(names.size(), list.size());
}

TEST(SharedIdentityStore, UsesTheFileFormat) {
  MemorySharedDocuments docs;
  ManualClock clock(kNowMs);
  auto shared = Open(docs, clock);
  Identity alice = *shared->Create(Named("alice"));
  // The document can be copied to DATA/identities.json and back.
  TempDir dir;
  ASSERT_TRUE(
      WriteFileAtomically(dir.path() / "identities.json", **docs.Get(kSharedIdentitiesName)).ok());
  auto file = OpenFileIdentityStore(dir.path() / "identities.json", clock);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto same = (*file)->Lookup(alice.access_key_id);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ((*same)->secret_access_key, alice.secret_access_key);
  EXPECT_EQ((*same)->policy_documents, alice.policy_documents);
  EXPECT_EQ((*same)->created_at_seconds, kNowMs / 1000);
}

TEST(SharedIdentityStore, CreateValidatesItsInput) {
  MemorySharedDocuments docs;
  ManualClock clock(kNowMs);
  auto store = Open(docs, clock);
  EXPECT_TRUE(store->Create(NewIdentity{"12", "alice", {}}).status().Is(Code::kInvalidArgument));
  EXPECT_TRUE(store->Create(NewIdentity{kAccount, "a b", {}}).status().Is(Code::kInvalidArgument));
  EXPECT_TRUE(
      store->Create(NewIdentity{kAccount, "alice", {"{}"}}).status().Is(Code::kInvalidArgument));
  EXPECT_FALSE(docs.Get(kSharedIdentitiesName)->has_value());
}

TEST(SharedIdentityStore, KeepsLastGoodContentsWhenTheDocumentBreaks) {
  MemorySharedDocuments mem;
  CountingDocuments docs(mem);
  ManualClock clock(kNowMs);
  auto store = Open(docs, clock);
  std::string key = store->Create(Named("alice"))->access_key_id;
  std::string good = **mem.Get(kSharedIdentitiesName);
  ASSERT_TRUE(mem.Swap(kSharedIdentitiesName, good, "{ not json").ok());
  clock.Advance(2000);
  EXPECT_TRUE(store->Lookup(key).ok());
  // And refuses to edit it rather than overwrite what a person is fixing.
  EXPECT_TRUE(store->Create(Named("bob")).status().Is(Code::kInvalidArgument));
  EXPECT_EQ(**mem.Get(kSharedIdentitiesName), "{ not json");
  EXPECT_TRUE(OpenSharedIdentityStore(docs, clock).status().Is(Code::kInvalidArgument));

  // An unreachable store: lookups go on from memory, edits fail.
  ASSERT_TRUE(mem.Swap(kSharedIdentitiesName, std::string("{ not json"), good).ok());
  docs.set_fail(true);
  clock.Advance(2000);
  EXPECT_TRUE(store->Lookup(key).ok());
  EXPECT_TRUE(store->Create(Named("bob")).status().Is(Code::kUnavailable));
  EXPECT_TRUE(OpenSharedIdentityStore(docs, clock).status().Is(Code::kUnavailable));
}

TEST(EnsureSharedAdministrator, ExactlyOneOfManyNodesStartingAtOnceCreatesIt) {
  MemorySharedDocuments docs;
  TempDir dir;
  constexpr int kNodes = 8;
  std::vector<fs::path> data_dirs;
  for (int n = 0; n < kNodes; ++n) data_dirs.push_back(dir.path() / ("node" + std::to_string(n)));
  std::latch start(kNodes);
  std::vector<int> won(kNodes, -1);
  std::vector<std::thread> threads;
  for (int n = 0; n < kNodes; ++n) {
    threads.emplace_back([&, n] {
      start.arrive_and_wait();
      auto created = EnsureSharedAdministrator(docs, data_dirs[n], kAccount);
      ASSERT_TRUE(created.ok()) << created.status().ToString();
      won[n] = *created ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  int winners = 0, credential_files = 0, winner = -1;
  for (int n = 0; n < kNodes; ++n) {
    winners += won[n] == 1;
    if (won[n] == 1) winner = n;
    if (fs::exists(data_dirs[n] / "credentials")) ++credential_files;
    // No pending credentials left behind by the losers (nor the winner).
    if (fs::exists(data_dirs[n])) {
      EXPECT_EQ(CountFiles(data_dirs[n]), fs::exists(data_dirs[n] / "credentials") ? 1u : 0u)
          << data_dirs[n];
    }
  }
  ASSERT_EQ(winners, 1);
  EXPECT_EQ(credential_files, 1);

  ManualClock clock(kNowMs);
  auto store = Open(docs, clock);
  auto list = *store->List();
  ASSERT_EQ(list.size(), 1u);
  const Identity& admin = *list[0];
  EXPECT_TRUE(admin.admin);
  EXPECT_EQ(admin.user_name, "admin");
  EXPECT_EQ(admin.principal_arn(), "arn:aws:iam::123456789012:root");
  fs::path credentials = data_dirs[winner] / "credentials";
  EXPECT_EQ(*ReadSmallFile(credentials),
            "[default]\naws_access_key_id = " + admin.access_key_id +
                "\naws_secret_access_key = " + admin.secret_access_key + "\n");
  struct stat st;
  ASSERT_EQ(::stat(credentials.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // A later start creates nothing and writes nothing.
  std::string before = **docs.Get(kSharedIdentitiesName);
  auto again = EnsureSharedAdministrator(docs, dir.path() / "late", kAccount);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_FALSE(fs::exists(dir.path() / "late" / "credentials"));
  EXPECT_EQ(**docs.Get(kSharedIdentitiesName), before);
}

TEST(EnsureSharedAdministrator, AnEmptyDocumentCountsAsNoIdentity) {
  MemorySharedDocuments docs;
  ASSERT_TRUE(
      docs.Swap(kSharedIdentitiesName, std::nullopt, R"({"version": 1, "identities": []})").ok());
  TempDir dir;
  auto created = EnsureSharedAdministrator(docs, dir.path(), kAccount);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(*created);
  EXPECT_TRUE(fs::exists(dir.path() / "credentials"));
}

TEST(EnsureSharedAdministrator, RefusesBadAccountAndBrokenDocument) {
  MemorySharedDocuments docs;
  TempDir dir;
  EXPECT_TRUE(
      EnsureSharedAdministrator(docs, dir.path(), "abc").status().Is(Code::kInvalidArgument));
  ASSERT_TRUE(docs.Swap(kSharedIdentitiesName, std::nullopt, "{ broken").ok());
  EXPECT_TRUE(
      EnsureSharedAdministrator(docs, dir.path(), kAccount).status().Is(Code::kInvalidArgument));
  EXPECT_EQ(CountFiles(dir.path()), 0u);
  EXPECT_EQ(**docs.Get(kSharedIdentitiesName), "{ broken");
}

TEST(EnsureSharedAdministrator, TheWinnersKeyWorksOnEveryNode) {
  MemorySharedDocuments docs;
  TempDir dir;
  ManualClock clock(kNowMs);
  auto node = Open(docs, clock);  // opened before the administrator exists
  ASSERT_TRUE(*EnsureSharedAdministrator(docs, dir.path(), kAccount));
  std::string text = *ReadSmallFile(dir.path() / "credentials");
  std::string key_id = text.substr(text.find("aws_access_key_id = ") + 20, 20);
  clock.Advance(250);
  auto c = MakeCredentialLookup(*node)(key_id);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_NE(text.find(c->secret_access_key), std::string::npos);
}

TEST(ImportIdentityFile, CopiesTheFileIntoAnAbsentDocumentOnly) {
  MemorySharedDocuments docs;
  TempDir dir;
  fs::path file = dir.path() / "identities.json";
  EXPECT_FALSE(*ImportIdentityFile(docs, file));  // no file: nothing to import

  ManualClock clock(kNowMs);
  Identity alice = *(*OpenFileIdentityStore(file, clock))->Create(Named("alice"));
  auto imported = ImportIdentityFile(docs, file);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_TRUE(*imported);
  EXPECT_EQ(**docs.Get(kSharedIdentitiesName), *ReadSmallFile(file));
  auto shared = Open(docs, clock);
  EXPECT_TRUE(shared->Lookup(alice.access_key_id).ok());
  // Then EnsureSharedAdministrator finds identities and creates none.
  EXPECT_FALSE(*EnsureSharedAdministrator(docs, dir.path(), kAccount));

  // Never over an existing document; never a broken file.
  Identity bob = *shared->Create(Named("bob"));
  EXPECT_FALSE(*ImportIdentityFile(docs, file));
  clock.Advance(2000);
  EXPECT_TRUE(shared->Lookup(bob.access_key_id).ok());
  MemorySharedDocuments empty;
  ASSERT_TRUE(WriteFileAtomically(file, "{ broken").ok());
  EXPECT_TRUE(ImportIdentityFile(empty, file).status().Is(Code::kInvalidArgument));
  EXPECT_FALSE(empty.Get(kSharedIdentitiesName)->has_value());
}

}  // namespace
}  // namespace berth::auth
