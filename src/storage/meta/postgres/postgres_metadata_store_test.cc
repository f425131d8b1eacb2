// The PostgreSQL MetadataStore against a real server: the shared conformance suite, plus
// what only a server backend has (migrations raced by several nodes, a schema from a
// newer binary, passwords kept out of URLs, an unreachable server, a restart under load,
// several store instances on one database).
//
// The server comes from tests/services/postgres.sh:
//   tests/services/postgres.sh start /tmp/berth-pg
//   set -a; . /tmp/berth-pg/env; set +a
// which sets BERTH_TEST_PG_URL (no password), BERTH_TEST_PG_PASSWORD (exported here as
// PGPASSWORD), BERTH_TEST_PG_DIR and BERTH_TEST_PG_SCRIPT. Without them every test here
// is skipped, except under CI (CI set), where they fail: CI must never skip silently.
//
// Each test works in a schema of its own (CREATE SCHEMA, then the URL's options set
// search_path to it), so tests are independent and cheap; the schemas a process made
// are dropped when it ends. Tests that disturb the server (restart it, end its sessions)
// hold DIR/test.lock exclusively, every other test of a process holds it shared, so that
// ctest -j never runs them beside each other.
#include "storage/meta/postgres/postgres_metadata_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "oci/digest.h"
#include "storage/meta/metadata_store_conformance.h"
#include "storage/meta/sqlite/sqlite_metadata_store.h"

namespace berth::storage {
namespace {

namespace fs = std::filesystem;
using testing::MetadataStoreBackend;
using testing::MetadataStoreBackendName;
using testing::MetadataStoreConformance;

constexpr int64_t kT0 = 1'700'000'000'000;

// ---------------------------------------------------------------------------------------
// The test server.

struct PgEnv {
  std::string url;     // postgresql://berth@127.0.0.1:PORT/berth
  std::string dir;     // BERTH_TEST_PG_DIR (may be empty)
  std::string script;  // tests/services/postgres.sh (may be empty)
};

std::string GetEnvOr(const char* name) {
  const char* v = ::getenv(name);
  return v != nullptr ? v : "";
}

// The server from the environment, or nullopt. Exports PGPASSWORD, which the store (via
// libpq) and the admin connections read.
const std::optional<PgEnv>& TestServer() {
  static const std::optional<PgEnv> env = []() -> std::optional<PgEnv> {
    std::string url = GetEnvOr("BERTH_TEST_PG_URL");
    if (url.empty()) return std::nullopt;
    std::string password = GetEnvOr("BERTH_TEST_PG_PASSWORD");
    if (!password.empty()) ::setenv("PGPASSWORD", password.c_str(), 1);
    PgEnv e{url, GetEnvOr("BERTH_TEST_PG_DIR"), GetEnvOr("BERTH_TEST_PG_SCRIPT")};
    if (e.script.empty()) {
      // The script beside this source tree (__FILE__ is absolute in CMake builds).
      fs::path guess = fs::path(__FILE__).parent_path() / "../../../../tests/services/postgres.sh";
      std::error_code ec;
      if (fs::exists(guess, ec)) e.script = fs::weakly_canonical(guess, ec).string();
    }
    return e;
  }();
  return env;
}

bool InCi() { return !GetEnvOr("CI").empty(); }

// DIR/test.lock (see the top of the file). A process holds it shared from its first use
// of the server until it exits; a disturbing test turns that into exclusive while it
// runs (flock converts the lock on the same descriptor, so one process never waits for
// itself).
class ServerLock {
 public:
  static ServerLock& Get() {
    static ServerLock* lock = new ServerLock;  // NOLINT: held until exit
    return *lock;
  }
  void Shared() { Take(LOCK_SH); }
  void Exclusive() { Take(LOCK_EX); }

 private:
  void Take(int how) {
    std::lock_guard guard(mu_);
    if (fd_ < 0) {
      if (!TestServer().has_value() || TestServer()->dir.empty()) return;
      std::string path = TestServer()->dir + "/test.lock";
      fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
      if (fd_ < 0) return;  // unusual permissions: run unguarded
    }
    if (held_ == how) return;
    while (::flock(fd_, how) != 0 && errno == EINTR) {
    }
    held_ = how;
  }
  std::mutex mu_;
  int fd_ = -1;
  int held_ = 0;
};

constexpr const char* kNoServer =
    "BERTH_TEST_PG_URL is not set: start a server with tests/services/postgres.sh start DIR "
    "and load DIR/env";

// Skips the test when there is no server (fails under CI). For test bodies and SetUp.
#define REQUIRE_TEST_SERVER()          \
  do {                                 \
    if (!TestServer().has_value()) {   \
      if (InCi()) FAIL() << kNoServer; \
      GTEST_SKIP() << kNoServer;       \
    }                                  \
  } while (0)

// `url` with its search_path set to `schema` (libpq's "options" parameter).
std::string WithSchema(const std::string& url, const std::string& schema) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
         schema;
}

// A plain libpq session as the test role, to set things up and look behind the store's
// back. Errors fail the current test.
class Admin {
 public:
  explicit Admin(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    EXPECT_EQ(PQstatus(conn_), CONNECTION_OK) << PQerrorMessage(conn_);
    // "drop cascades to ..." and the like.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~Admin() { PQfinish(conn_); }
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  // Runs `sql`; true on success.
  bool Exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    EXPECT_TRUE(ok) << sql << ": " << PQerrorMessage(conn_);
    PQclear(r);
    return ok;
  }
  // The first column of the first row as text ("" when none or NULL).
  std::string Query(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << sql << ": " << PQerrorMessage(conn_);
    std::string out;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
      out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
    return out;
  }

 private:
  PGconn* conn_;
};

// Schemas this process created, dropped when the next test starts (its stores are closed
// by then) and when the process ends.
class Schemas {
 public:
  static Schemas& Get() {
    static Schemas* s = new Schemas;  // NOLINT: lives until exit
    return *s;
  }
  // A new empty schema, named after this process; drops the earlier ones first.
  std::string Create() {
    ServerLock::Get().Shared();
    std::lock_guard lock(mu_);
    const PgEnv& env = *TestServer();
    Admin admin(env.url);
    DropAllLocked(admin);
    std::string name = "berth_test_" + std::to_string(::getpid()) + "_" + std::to_string(++n_);
    admin.Exec("CREATE SCHEMA " + name);
    created_.push_back(name);
    return name;
  }
  void DropAll() {
    std::lock_guard lock(mu_);
    if (created_.empty() || !TestServer().has_value()) return;
    Admin admin(TestServer()->url);
    DropAllLocked(admin);
  }

 private:
  void DropAllLocked(Admin& admin) {
    if (!admin.ok()) return;
    for (const std::string& s : created_) admin.Exec("DROP SCHEMA IF EXISTS " + s + " CASCADE");
    created_.clear();
  }
  std::mutex mu_;
  std::vector<std::string> created_;
  int n_ = 0;
};

class DropSchemasAtExit : public ::testing::Environment {
 public:
  void TearDown() override { Schemas::Get().DropAll(); }
};
[[maybe_unused]] ::testing::Environment* const kDropSchemas =
    ::testing::AddGlobalTestEnvironment(new DropSchemasAtExit);

PostgresOptions OptionsFor(const std::string& url) {
  PostgresOptions o;
  o.url = url;
  o.max_connections = 16;
  o.reconnect_timeout_ms = 30'000;
  return o;
}

// ---------------------------------------------------------------------------------------
// The conformance suite: one fresh schema per test.
//
// The suite is instantiated whether or not a server is configured: ctest learns the
// test list when the binary is built (gtest_discover_tests), usually before the server
// is started, and a suite that only appears with the server would silently not run.

Result<std::unique_ptr<MetadataStore>> OpenForConformance(const fs::path& scratch) {
  if (!TestServer().has_value()) {
    if (InCi()) return Status::FailedPrecondition(std::string("CI is set and ") + kNoServer);
    // Skip the test. The suite's SetUp insists on a store, so it gets one it will never
    // use: the test body does not run once the test is marked skipped.
    [] { GTEST_SKIP() << kNoServer; }();
    return OpenSqliteMetadataStore(scratch / "unused.db");
  }
  std::string schema = Schemas::Get().Create();
  return OpenPostgresMetadataStore(OptionsFor(WithSchema(TestServer()->url, schema)));
}

INSTANTIATE_TEST_SUITE_P(Postgres, MetadataStoreConformance,
                         ::testing::Values(MetadataStoreBackend{"postgres", OpenForConformance}),
                         MetadataStoreBackendName);

TEST(PostgresTestServer, IsConfigured) {
  REQUIRE_TEST_SERVER();
  Admin admin(TestServer()->url);
  ASSERT_TRUE(admin.ok());
  EXPECT_GE(std::stoi(admin.Query("SHOW server_version_num")), 100000);
}

// ---------------------------------------------------------------------------------------
// PostgreSQL-specific behaviour.

class PostgresMetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TEST_SERVER();
    schema_ = Schemas::Get().Create();
    url_ = WithSchema(TestServer()->url, schema_);
  }

  std::unique_ptr<MetadataStore> Open(PostgresOptions options) {
    auto store = OpenPostgresMetadataStore(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  std::unique_ptr<MetadataStore> Open() { return Open(OptionsFor(url_)); }

  // An admin session in this test's schema.
  std::unique_ptr<Admin> AdminInSchema() { return std::make_unique<Admin>(url_); }

  std::string schema_;
  std::string url_;
};

// Pushes an image with one layer into `repo`; returns its manifest.
ManifestRecord Push(MetadataStore& s, std::string_view repo, std::string_view name,
                    std::string_view tag, PutManifestOptions options = {}) {
  oci::Digest layer = oci::Digest::Of(std::string("layer ") + std::string(name));
  EXPECT_TRUE(s.CommitBlob(repo, {layer, 10, kT0}, "").ok());
  ManifestRecord m;
  m.repository = std::string(repo);
  m.bytes = "{\"name\":\"" + std::string(name) + "\"}";
  m.digest = oci::Digest::Of(m.bytes);
  m.size = static_cast<int64_t>(m.bytes.size());
  m.media_type = "application/vnd.oci.image.manifest.v1+json";
  m.pushed_at_ms = kT0;
  m.annotations_json = "{}";
  m.blob_refs = {layer};
  Status st = s.PutManifest(m, tag, options).status();
  EXPECT_TRUE(st.ok()) << st.ToString();
  return m;
}

TEST_F(PostgresMetadataStoreTest, ReadEpochIsOffSoCachesStayOff) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->ReadEpoch().has_value());
}

TEST_F(PostgresMetadataStoreTest, MigrationsAreRecordedAndIdempotent) {
  ASSERT_NE(Open(), nullptr);
  auto store = Open();  // a second node starting later: nothing to do
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateRepository({"app", kT0}).ok());
  store.reset();
  ASSERT_NE(Open(), nullptr);
  auto admin = AdminInSchema();
  EXPECT_EQ(admin->Query("SELECT count(*) FROM schema_migrations"),
            admin->Query("SELECT count(DISTINCT version) FROM schema_migrations"));
  EXPECT_EQ(admin->Query("SELECT max(version) FROM schema_migrations"),
            std::to_string(PostgresSchemaVersion()));
  EXPECT_EQ(admin->Query("SELECT count(*) FROM repositories"), "1");
  // The tables went into the schema of the URL's search_path, nowhere else.
  EXPECT_EQ(admin->Query("SELECT count(*) FROM pg_tables WHERE tablename = 'manifests' AND "
                         "schemaname = '" +
                         schema_ + "'"),
            "1");
}

TEST_F(PostgresMetadataStoreTest, SchemaFromANewerBinaryIsRefused) {
  auto first = Open();
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(
      AdminInSchema()->Exec("INSERT INTO schema_migrations(version, applied_at) VALUES (9999, 0)"));
  // A node of this (older) binary starting now refuses to run.
  auto store = OpenPostgresMetadataStore(OptionsFor(url_));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition) << store.status().ToString();
  EXPECT_NE(store.status().message().find("9999"), std::string::npos) << store.status().ToString();
  EXPECT_NE(store.status().message().find("upgrade berth"), std::string::npos)
      << store.status().ToString();
  // A node already running says so in its health check.
  Status check = first->Check();
  EXPECT_EQ(check.code(), Code::kFailedPrecondition) << check.ToString();
}

TEST_F(PostgresMetadataStoreTest, ConcurrentOpenersMigrateOnceWithoutErrors) {
  constexpr int kNodes = 8;
  std::vector<std::unique_ptr<MetadataStore>> stores(kNodes);
  std::vector<Status> errors(kNodes);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kNodes) std::this_thread::yield();
      auto s = OpenPostgresMetadataStore(OptionsFor(url_));
      if (s.ok()) {
        stores[i] = std::move(s).value();
      } else {
        errors[i] = s.status();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(errors[i].ok()) << "node " << i << ": " << errors[i].ToString();
  }
  // Every node works on the one schema.
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(stores[i]->CreateRepository({"r" + std::to_string(i), kT0}).ok());
  }
  EXPECT_EQ(stores[0]->ListRepositories("", 100)->size(), static_cast<size_t>(kNodes));
  auto admin = AdminInSchema();
  EXPECT_EQ(admin->Query("SELECT count(*) FROM schema_migrations"),
            admin->Query("SELECT count(DISTINCT version) FROM schema_migrations"));
}

TEST_F(PostgresMetadataStoreTest, PasswordInTheUrlIsRefused) {
  for (const std::string& url :
       {std::string("postgresql://berth:s3cret-pw@127.0.0.1:5432/berth"),
        std::string("postgresql://berth@127.0.0.1:5432/berth?password=s3cret-pw"),
        std::string("host=127.0.0.1 user=berth dbname=berth password=s3cret-pw")}) {
    auto store = OpenPostgresMetadataStore(OptionsFor(url));
    ASSERT_FALSE(store.ok()) << url;
    EXPECT_EQ(store.status().code(), Code::kInvalidArgument) << store.status().ToString();
    EXPECT_NE(store.status().message().find("PGPASSWORD"), std::string::npos)
        << store.status().ToString();
    // The refusal never repeats the secret (it ends up in logs).
    EXPECT_EQ(store.status().ToString().find("s3cret-pw"), std::string::npos)
        << store.status().ToString();
  }
}

TEST_F(PostgresMetadataStoreTest, WrongPasswordIsFailedPreconditionAndNotRetried) {
  const char* saved = ::getenv("PGPASSWORD");
  std::string restore = saved != nullptr ? saved : "";
  ::setenv("PGPASSWORD", "not-the-password", 1);
  auto t0 = std::chrono::steady_clock::now();
  auto store = OpenPostgresMetadataStore(OptionsFor(url_));
  auto took = std::chrono::steady_clock::now() - t0;
  if (saved != nullptr) {
    ::setenv("PGPASSWORD", restore.c_str(), 1);
  } else {
    ::unsetenv("PGPASSWORD");
  }
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition) << store.status().ToString();
  EXPECT_EQ(store.status().ToString().find("not-the-password"), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(5));
}

// A loopback port nobody listens on.
int UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(PostgresMetadataStoreTest, UnreachableServerIsUnavailableNamingTheUrl) {
  std::string url = "postgresql://berth@127.0.0.1:" + std::to_string(UnusedPort()) + "/berth";
  PostgresOptions options = OptionsFor(url);
  options.connect_timeout_s = 2;
  auto t0 = std::chrono::steady_clock::now();
  auto store = OpenPostgresMetadataStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kUnavailable) << store.status().ToString();
  EXPECT_NE(store.status().message().find(url), std::string::npos) << store.status().ToString();
  // Opening fails fast: berth's startup reports it rather than hanging.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST_F(PostgresMetadataStoreTest, MissingDatabaseIsFailedPrecondition) {
  std::string url = TestServer()->url;
  url = url.substr(0, url.rfind('/')) + "/berth_no_such_database";
  auto store = OpenPostgresMetadataStore(OptionsFor(url));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kFailedPrecondition) << store.status().ToString();
  EXPECT_NE(store.status().message().find("berth_no_such_database"), std::string::npos);
}

TEST_F(PostgresMetadataStoreTest, ConcurrentTagPushesAcrossTwoNodesHaveOneWinner) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->CreateRepository({"app", kT0}).ok());
  constexpr int kThreads = 8;  // per node
  std::vector<ManifestRecord> images;
  for (int t = 0; t < 2 * kThreads; ++t) {
    images.push_back(Push(t % 2 == 0 ? *a : *b, "app", "image " + std::to_string(t), ""));
  }
  std::atomic<int> won{0}, refused{0}, failed{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreads; ++t) {
    threads.emplace_back([&, t] {
      MetadataStore& node = t % 2 == 0 ? *a : *b;
      ++ready;
      while (ready.load() < 2 * kThreads) std::this_thread::yield();
      // An immutable tag: exactly one push may create it.
      auto put = node.PutManifest(images[t], "release", PutManifestOptions{true});
      if (put.ok()) {
        ++won;
      } else if (put.status().Is(Code::kTagInvalid)) {
        ++refused;
      } else {
        ADD_FAILURE() << put.status().ToString();
        ++failed;
      }
      // A mutable tag: everyone moves it, one of them last.
      for (int r = 0; r < 10; ++r) {
        Status st = node.PutManifest(images[t], "latest").status();
        if (!st.ok()) {
          ADD_FAILURE() << st.ToString();
          ++failed;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), 2 * kThreads - 1);
  EXPECT_EQ(failed.load(), 0);
  for (const char* tag : {"release", "latest"}) {
    // Both nodes see the same single winner, with its whole record.
    auto from_a = a->GetManifestByTag("app", tag);
    auto from_b = b->GetManifestByTag("app", tag);
    ASSERT_TRUE(from_a.ok() && from_b.ok()) << tag;
    EXPECT_EQ(from_a->digest, from_b->digest) << tag;
    EXPECT_EQ(oci::Digest::Of(from_a->bytes), from_a->digest) << tag;
    EXPECT_EQ(from_a->blob_refs.size(), 1u) << tag;
    int holders = 0;
    for (const auto& m : images) {
      auto tags = b->TagsOf("app", m.digest, "", 10);
      ASSERT_TRUE(tags.ok());
      holders += std::count(tags->begin(), tags->end(), tag);
    }
    EXPECT_EQ(holders, 1) << tag;
  }
}

TEST_F(PostgresMetadataStoreTest, SessionsEndedByTheServerAreReplacedTransparently) {
  // An administrator (or a pooler, or a failover) ends the store's sessions: the next
  // operations notice, reconnect and succeed, reads and writes alike.
  ServerLock::Get().Exclusive();  // ends every berth session on the server
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateRepository({"app", kT0}).ok());
  // Several pooled connections.
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { Push(*store, "app", "warm " + std::to_string(i), ""); });
  }
  for (auto& th : threads) th.join();
  for (int round = 0; round < 3; ++round) {
    Admin admin(TestServer()->url);
    ASSERT_NE(admin.Query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE application_name = 'berth' AND pid <> pg_backend_pid()"),
              "0");
    auto got = store->GetRepository("app");
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    Status st = store->CreateRepository({"r" + std::to_string(round), kT0});
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_TRUE(store->Check().ok());
  }
  EXPECT_EQ(store->ListRepositories("", 10)->size(), 4u);
}

TEST_F(PostgresMetadataStoreTest, TextAndBytesRoundTripExactly) {
  // Binary parameters: no escaping, no encoding conversion, NUL bytes kept in bytea.
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateRepository({"app", kT0}).ok());
  constexpr char kBinary[] = "\0\x01\xff\xfe'\"\\ end";
  std::string binary(kBinary, sizeof kBinary - 1);
  ASSERT_TRUE(store->SwapSetting("secret", std::nullopt, binary).ok());
  EXPECT_EQ(*store->GetSetting("secret"), binary);
  std::string policy = "{\"Sid\":\"it's \\\"quoted\\\" – ünïcödé\"}";
  ASSERT_TRUE(store->SetRepositoryPolicy("app", policy).ok());
  EXPECT_EQ(*store->GetRepository("app")->policy, policy);
}

struct StatusOrder {
  bool operator()(const Status& a, const Status& b) const { return a.ToString() < b.ToString(); }
};

// ---------------------------------------------------------------------------------------
// Restarts: the pool must get over a server restart by itself, and no write it
// acknowledged may be lost.

// Tests that stop and start the server through tests/services/postgres.sh.
class PostgresServerTest : public PostgresMetadataStoreTest {
 protected:
  void SetUp() override {
    PostgresMetadataStoreTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (TestServer()->dir.empty() || TestServer()->script.empty()) {
      if (InCi()) FAIL() << "BERTH_TEST_PG_DIR or BERTH_TEST_PG_SCRIPT is not set";
      GTEST_SKIP() << "BERTH_TEST_PG_DIR or BERTH_TEST_PG_SCRIPT is not set";
    }
    ServerLock::Get().Exclusive();
  }
  void TearDown() override {
    // The server must be up for whoever comes next.
    if (!IsSkipped() && !TestServer()->dir.empty()) ServerCommand("start");
    ServerLock::Get().Shared();
  }
  // Runs `postgres.sh COMMAND DIR [ARG]`; true when it succeeded.
  static bool ServerCommand(const std::string& command, const std::string& arg = "") {
    std::string cmd = "'" + TestServer()->script + "' " + command + " '" + TestServer()->dir +
                      "' " + arg + " >/dev/null";
    return std::system(cmd.c_str()) == 0;
  }
};

class PostgresRestartTest : public PostgresServerTest,
                            public ::testing::WithParamInterface<const char*> {};

TEST_P(PostgresRestartTest, PoolRecoversAndNoAcknowledgedWriteIsLost) {
  const std::string mode = GetParam();
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateRepository({"app", kT0}).ok());
  ManifestRecord base = Push(*store, "app", "base", "v0");

  constexpr int kWriters = 6;
  std::atomic<bool> stop{false};
  std::atomic<bool> restarted{false};
  std::atomic<int> after_restart{0};
  std::mutex mu;
  std::vector<std::string> acknowledged;  // repositories whose creation returned OK
  std::map<Status, int, StatusOrder> failures;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        std::string name = "w" + std::to_string(w) + "/r" + std::to_string(i);
        Status st = store->CreateRepository({name, kT0});
        // Reads are retried too.
        auto read = store->GetManifestByTag("app", "v0");
        std::lock_guard lock(mu);
        if (st.ok()) {
          acknowledged.push_back(name);
          if (restarted.load()) ++after_restart;
        } else {
          ++failures[st];
        }
        if (!read.ok()) ++failures[read.status()];
      }
    });
  }
  // Let the writers get going, restart under them, and let them go on until each has
  // written after the restart.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  bool back = ServerCommand("restart", mode);
  restarted = true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (after_restart.load() < 4 * kWriters && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  for (auto& th : threads) th.join();
  ASSERT_TRUE(back) << "the server did not restart";
  EXPECT_GE(after_restart.load(), 4 * kWriters) << "writes did not resume after the restart";

  // No operation fails: each waits for the server and runs again when that is safe, or
  // learns that its lost COMMIT went through. (A kAlreadyExists would mean a write was
  // applied twice.)
  for (const auto& [st, n] : failures) ADD_FAILURE() << n << " x " << st.ToString();
  // Every acknowledged write is there, seen from a fresh node too.
  auto fresh = Open();
  ASSERT_NE(fresh, nullptr);
  std::set<std::string> present;
  std::string after;
  for (;;) {
    auto page = fresh->ListRepositories(after, 1000);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    if (page->empty()) break;
    present.insert(page->begin(), page->end());
    after = page->back();
  }
  size_t lost = 0;
  for (const std::string& name : acknowledged) lost += present.contains(name) ? 0 : 1;
  EXPECT_EQ(lost, 0u) << "of " << acknowledged.size() << " acknowledged writes";
  EXPECT_GT(acknowledged.size(), static_cast<size_t>(kWriters));
  EXPECT_EQ(fresh->GetManifestByTag("app", "v0")->digest, base.digest);
  EXPECT_TRUE(store->Check().ok());
}

INSTANTIATE_TEST_SUITE_P(Modes, PostgresRestartTest, ::testing::Values("fast", "immediate"));

TEST_F(PostgresServerTest, CheckFailsFastWhileOperationsWaitForTheServer) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateRepository({"app", kT0}).ok());
  ASSERT_TRUE(ServerCommand("stop"));
  // The health check answers at once; an operation waits for the server to come back.
  auto t0 = std::chrono::steady_clock::now();
  Status check = store->Check();
  EXPECT_EQ(check.code(), Code::kUnavailable) << check.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  std::atomic<bool> done{false};
  Result<RepositoryRecord> read = Status::Internal("not run");
  std::thread reader([&] {
    read = store->GetRepository("app");
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(done.load()) << read.status().ToString();
  bool started = ServerCommand("start");
  reader.join();
  ASSERT_TRUE(started);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->name, "app");
  EXPECT_TRUE(store->Check().ok());
}

// ---------------------------------------------------------------------------------------
// Commit cost (not a pass/fail test): run with --gtest_also_run_disabled_tests
// --gtest_filter='*CommitThroughput*'.

TEST_F(PostgresMetadataStoreTest, DISABLED_CommitThroughput) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateRepository({"bench", kT0}).ok());
  auto run = [&](const char* what, int threads, int per_thread, auto op) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    std::atomic<int> bad{0};
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          if (!op(t, i).ok()) ++bad;
        }
      });
    }
    for (auto& th : pool) th.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-40s threads=%d ops=%d  %.0f ops/s  (%.2f ms/op per thread)\n", what, threads,
                threads * per_thread, threads * per_thread / s, 1000 * s / per_thread);
    EXPECT_EQ(bad.load(), 0);
  };
  std::atomic<int> seq{0};
  auto commit_blob = [&](int t, int i) {
    std::string content = "blob " + std::to_string(seq++);
    return store->CommitBlob("bench", {oci::Digest::Of(content), content.size(), kT0}, "");
  };
  auto put_manifest = [&](int t, int i) {
    std::string layer = "layer " + std::to_string(seq++);
    oci::Digest d = oci::Digest::Of(layer);
    Status st = store->CommitBlob("bench", {d, layer.size(), kT0}, "");
    if (!st.ok()) return st;
    ManifestRecord m;
    m.repository = "bench";
    m.bytes = "{\"layer\":\"" + d.str() + "\"}";
    m.digest = oci::Digest::Of(m.bytes);
    m.size = static_cast<int64_t>(m.bytes.size());
    m.media_type = "application/vnd.oci.image.manifest.v1+json";
    m.pushed_at_ms = kT0;
    m.annotations_json = "{}";
    m.blob_refs = {d};
    return store->PutManifest(m, "t" + std::to_string(t)).status();
  };
  auto read = [&](int t, int i) { return store->GetManifestByTag("bench", "t0").status(); };
  for (int threads : {1, 8}) {
    run("CommitBlob", threads, 2000 / threads, commit_blob);
  }
  for (int threads : {1, 8}) {
    run("CommitBlob + PutManifest (tagged)", threads, 1000 / threads, put_manifest);
  }
  for (int threads : {1, 8}) {
    run("GetManifestByTag", threads, 4000 / threads, read);
  }
}

}  // namespace
}  // namespace berth::storage
