// A thin layer over libpq for the PostgreSQL MetadataStore.
//
//  - Param / Rows: statement parameters and results in PostgreSQL's binary format
//    (no text escaping, bytea comes back as raw bytes, text[] and bigint[] arrays for
//    multi-row statements).
//  - Connection: one server session in libpq pipeline mode. Run() sends several
//    statements and one Sync in a single round trip and reads their results in order;
//    each SQL text is prepared once per connection (the Parse rides along with its
//    first execution, so that costs no round trip either).
//  - ConnectionPool: a bounded, thread-safe pool that drops connections the server
//    closed (a restart, pg_terminate_backend) and, when asked to be patient, waits for
//    the server to accept connections again.
//
// Thread safety: a Connection is used by one thread at a time (whoever leased it);
// ConnectionPool is thread-safe. Nothing here throws.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace berth::storage::pg {

// One statement parameter, sent in binary format. Text and Bytes borrow the caller's
// bytes, which must outlive the Run() that sends them; integers and arrays own theirs.
class Param {
 public:
  static Param Text(std::string_view v);                        // text
  static Param Bytes(std::string_view v);                       // bytea
  static Param Int(int64_t v);                                  // bigint
  static Param Bool(bool v);                                    // boolean
  static Param NullText();                                      // a NULL text
  static Param TextArray(std::span<const std::string> v);       // text[]
  static Param TextArray(std::span<const std::string_view> v);  // text[]
  static Param IntArray(std::span<const int64_t> v);            // bigint[]

  Oid type() const { return type_; }
  // nullptr for SQL NULL.
  const char* data() const;
  int size() const;

 private:
  Param(Oid type, std::string_view view) : type_(type), view_(view) {}
  Param(Oid type, std::string owned) : type_(type), owned_(std::move(owned)), use_owned_(true) {}

  Oid type_ = 0;
  bool null_ = false;
  std::string_view view_;
  std::string owned_;
  bool use_owned_ = false;
};

// The rows (or the row count) a statement returned. Accessors expect the column types
// the SQL selects; a NULL reads as 0, "", false or an empty list.
class Rows {
 public:
  Rows() = default;
  explicit Rows(PGresult* result) : result_(result) {}
  ~Rows();
  Rows(Rows&& other) noexcept;
  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;

  int size() const;
  bool empty() const { return size() == 0; }
  // Rows an INSERT, UPDATE or DELETE changed (or returned).
  int64_t affected() const;
  // The command tag's verb and count ("COMMIT", "UPDATE 3", ...).
  const char* command() const;

  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;  // text or bytea, byte for byte
  int64_t Int(int row, int col) const;       // smallint, integer or bigint
  bool Bool(int row, int col) const;
  // text[] (one dimension); kCorruption if it is something else.
  Result<std::vector<std::string>> TextArray(int row, int col) const;

 private:
  PGresult* result_ = nullptr;
};

// One statement of a round trip. `sql` must outlive the Connection (a string literal):
// the connection caches its prepared form under that text. The parameter types must be
// the same on every use of the same text.
struct Statement {
  std::string_view sql;
  std::vector<Param> params;
};

// SQLSTATE classes the store reacts to.
bool IsConnectionLoss(std::string_view sqlstate);  // the session is gone (08xxx, 57P0x)
bool IsConflict(std::string_view sqlstate);        // 40001, 40P01: rolled back, run again

struct ConnectOptions {
  std::string url;  // libpq URI or key=value string, without a password
  int connect_timeout_s = 5;
};

class Connection {
 public:
  // Connects. Errors name the URL and say what to do: kUnavailable when the server is
  // unreachable (or starting, or shutting down), kFailedPrecondition when it refuses
  // the role or the password, or the database does not exist.
  static Result<std::unique_ptr<Connection>> Open(const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `statements` in order in one round trip and returns one Rows per statement.
  // The first statement that fails ends the batch (the server skips the rest) and its
  // error is returned. A lost connection returns kUnavailable and sets broken().
  Result<std::vector<Rows>> Run(std::span<Statement> statements);
  Result<Rows> Query(std::string_view sql, std::vector<Param> params = {});
  // A script of several statements, not prepared (migrations). No parameters.
  Status ExecScript(const char* sql);

  // The session is unusable (lost, or left in an unknown state); discard it.
  bool broken() const { return broken_; }
  void MarkBroken() { broken_ = true; }
  // SQLSTATE of the error the last Run returned; empty when it failed for another
  // reason or did not fail.
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  // Whether an idle connection is still good: false when the server closed it
  // meanwhile (it says so before closing, which makes the socket readable).
  bool StillUsable();
  // Outside a transaction block, with nothing pending.
  bool Idle() const;
  int server_version() const { return PQserverVersion(conn_); }
  int backend_pid() const { return PQbackendPID(conn_); }
  // A random number naming this session, unique among the sessions of every node (the
  // store marks each commit with it; see CommitWentThrough in the store).
  int64_t session_key() const { return session_key_; }

 private:
  struct Prepared {
    std::string name;
    std::vector<Oid> types;
  };

  explicit Connection(PGconn* conn);
  Status Lost(std::string_view what);
  Status ServerError(const PGresult* result);

  PGconn* conn_;
  const int64_t session_key_;
  std::unordered_map<std::string_view, Prepared> prepared_;
  uint64_t next_statement_ = 0;
  bool broken_ = false;
  std::string last_sqlstate_;
};

struct PoolOptions {
  ConnectOptions connect;
  size_t max_connections = 16;
  std::chrono::milliseconds acquire_timeout{30'000};
  std::chrono::milliseconds reconnect_timeout{30'000};
};

class ConnectionPool {
 public:
  // Whether an acquisition waits for an unreachable server to come back (up to
  // reconnect_timeout), or fails at once (health checks).
  enum class Patience : uint8_t { kWait, kFailFast };

  // A connection on loan. Goes back to the pool when destroyed, unless it is broken or
  // was left inside a transaction, in which case it is closed.
  class Lease {
   public:
    Lease() = default;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    ~Lease() { Return(); }
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&& other) noexcept {
      Return();
      pool_ = other.pool_;
      conn_ = std::move(other.conn_);
      return *this;
    }
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }
    // Closes the connection instead of returning it.
    void Discard() {
      if (conn_ != nullptr) conn_->MarkBroken();
      Return();
    }

   private:
    void Return() {
      if (conn_ != nullptr) pool_->Release(std::move(conn_));
    }
    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<Connection> conn_;
  };

  // `first` (may be null): an open connection to start with.
  ConnectionPool(PoolOptions options, std::unique_ptr<Connection> first);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // An idle connection that still works, or a new one while fewer than max_connections
  // are open; otherwise waits up to acquire_timeout for one to come back (kUnavailable).
  Result<Lease> Acquire(Patience patience);
  // A newly opened connection (the retry after a lost one: the idle ones are likely
  // dead too). Closes an idle connection to make room when the pool is full.
  Result<Lease> AcquireNew(Patience patience);

  // Connections open now, idle or leased (tests, metrics).
  size_t open_connections() const;
  size_t idle_connections() const;

 private:
  Result<Lease> Get(Patience patience, bool reuse);
  Result<std::unique_ptr<Connection>> Connect(Patience patience);
  void Release(std::unique_ptr<Connection> conn);

  const PoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_; most recent last
  size_t open_ = 0;                                // guarded by mu_: idle + leased + being opened
};

}  // namespace berth::storage::pg
