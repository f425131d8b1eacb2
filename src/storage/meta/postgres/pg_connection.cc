#include "storage/meta/postgres/pg_connection.h"

#include <poll.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

namespace berth::storage::pg {
namespace {

// Type OIDs (pg_type.h is a server header; these never change).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kTextOid = 25;
constexpr Oid kTextArrayOid = 1009;
constexpr Oid kInt8ArrayOid = 1016;

void PutBe32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void PutBe64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

uint64_t GetBe(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// The binary array format (array_send): ndim, has-nulls flag, element type, then per
// dimension its length and lower bound, then each element as length + bytes.
template <typename T, typename Encode>
std::string EncodeArray(Oid element_type, std::span<const T> items, Encode encode) {
  std::string out;
  PutBe32(out, items.empty() ? 0 : 1);
  PutBe32(out, 0);
  PutBe32(out, element_type);
  if (!items.empty()) {
    PutBe32(out, static_cast<uint32_t>(items.size()));
    PutBe32(out, 1);
  }
  for (const T& item : items) encode(out, item);
  return out;
}

void EncodeText(std::string& out, std::string_view v) {
  PutBe32(out, static_cast<uint32_t>(v.size()));
  out.append(v);
}

// libpq's messages end with a newline and continue on tab-indented lines; a Status
// message is one line.
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (char ch : text) {
    if (ch == '\n' || ch == '\t' || ch == '\r' || ch == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(ch);
  }
  return out;
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// What a failed connection attempt means for the person starting berth. libpq gives no
// SQLSTATE for it, only the server's (or its own) message.
Status ConnectError(std::string_view url, std::string_view libpq_message) {
  std::string msg = OneLine(libpq_message);
  std::string where = "PostgreSQL at " + std::string(url);
  if (Contains(msg, "password authentication failed") || Contains(msg, "no password supplied") ||
      Contains(msg, "authentication failed") || Contains(msg, "pg_hba.conf") ||
      (Contains(msg, "role \"") && Contains(msg, "does not exist"))) {
    return Status(Code::kFailedPrecondition,
                  where + " refused authentication: " + msg +
                      " (berth takes the password from PGPASSWORD or ~/.pgpass, never from its "
                      "configuration)");
  }
  if (Contains(msg, "database \"") && Contains(msg, "does not exist")) {
    return Status(Code::kFailedPrecondition,
                  where + ": " + msg + "; create it (createdb) or fix the URL");
  }
  return Status(Code::kUnavailable, "cannot connect to " + where + ": " + msg);
}

Code CodeForSqlstate(std::string_view s) {
  if (s == "23505") return Code::kAlreadyExists;
  if (s == "23503") return Code::kFailedPrecondition;
  if (s.starts_with("23")) return Code::kInvalidArgument;
  if (IsConflict(s)) return Code::kAborted;
  // Bytes the database encoding cannot hold, values over a limit.
  if (s == "22021" || s == "22P05" || s == "22001" || s == "54000") return Code::kInvalidArgument;
  if (s == "53100") return Code::kIoError;  // disk full
  if (s.starts_with("53") || s == "57014") return Code::kUnavailable;
  if (s.starts_with("58")) return Code::kIoError;
  if (s == "XX001" || s == "XX002") return Code::kCorruption;
  if (s == "42501") return Code::kFailedPrecondition;  // the role lacks a privilege
  return Code::kInternal;
}

}  // namespace

bool IsConnectionLoss(std::string_view s) {
  // 08: connection exception; 57P01-03: administrator shutdown, crash shutdown, cannot
  // connect now; 25006: read-only transaction (this session now sits on a standby).
  return s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "25006";
}

bool IsConflict(std::string_view s) { return s == "40001" || s == "40P01"; }

// ---------------------------------------------------------------------------------------
// Param

Param Param::Text(std::string_view v) { return Param(kTextOid, v); }
Param Param::Bytes(std::string_view v) { return Param(kByteaOid, v); }

Param Param::Int(int64_t v) {
  std::string out;
  PutBe64(out, static_cast<uint64_t>(v));
  return Param(kInt8Oid, std::move(out));
}

Param Param::Bool(bool v) { return Param(kBoolOid, std::string(1, v ? '\1' : '\0')); }

Param Param::NullText() {
  Param p(kTextOid, std::string_view());
  p.null_ = true;
  return p;
}

Param Param::TextArray(std::span<const std::string> v) {
  return Param(kTextArrayOid, EncodeArray(kTextOid, v, [](std::string& out, const std::string& s) {
                 EncodeText(out, s);
               }));
}

Param Param::TextArray(std::span<const std::string_view> v) {
  return Param(kTextArrayOid, EncodeArray(kTextOid, v, [](std::string& out, std::string_view s) {
                 EncodeText(out, s);
               }));
}

Param Param::IntArray(std::span<const int64_t> v) {
  return Param(kInt8ArrayOid, EncodeArray(kInt8Oid, v, [](std::string& out, int64_t i) {
                 PutBe32(out, 8);
                 PutBe64(out, static_cast<uint64_t>(i));
               }));
}

const char* Param::data() const {
  if (null_) return nullptr;
  if (use_owned_) return owned_.data();
  // libpq reads a null pointer as SQL NULL; an empty view may have one.
  return view_.data() != nullptr ? view_.data() : "";
}

int Param::size() const { return static_cast<int>(use_owned_ ? owned_.size() : view_.size()); }

// ---------------------------------------------------------------------------------------
// Rows

Rows::~Rows() {
  if (result_ != nullptr) PQclear(result_);
}

Rows::Rows(Rows&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

int Rows::size() const { return result_ != nullptr ? PQntuples(result_) : 0; }

int64_t Rows::affected() const {
  if (result_ == nullptr) return 0;
  const char* n = PQcmdTuples(result_);
  return n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
}

const char* Rows::command() const { return result_ != nullptr ? PQcmdStatus(result_) : ""; }

bool Rows::IsNull(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }

std::string Rows::Text(int row, int col) const {
  if (IsNull(row, col)) return {};
  return std::string(PQgetvalue(result_, row, col),
                     static_cast<size_t>(PQgetlength(result_, row, col)));
}

int64_t Rows::Int(int row, int col) const {
  if (IsNull(row, col)) return 0;
  int n = PQgetlength(result_, row, col);
  uint64_t v = GetBe(PQgetvalue(result_, row, col), n);
  switch (n) {
    case 2:
      return static_cast<int16_t>(v);
    case 4:
      return static_cast<int32_t>(v);
    default:
      return static_cast<int64_t>(v);
  }
}

bool Rows::Bool(int row, int col) const {
  return !IsNull(row, col) && PQgetlength(result_, row, col) == 1 &&
         PQgetvalue(result_, row, col)[0] != 0;
}

Result<std::vector<std::string>> Rows::TextArray(int row, int col) const {
  std::vector<std::string> out;
  if (IsNull(row, col)) return out;
  const char* p = PQgetvalue(result_, row, col);
  const char* end = p + PQgetlength(result_, row, col);
  auto bad = [] { return Status::Corruption("metadata store: malformed text[] from PostgreSQL"); };
  auto take = [&](uint32_t& v) {
    if (end - p < 4) return false;
    v = static_cast<uint32_t>(GetBe(p, 4));
    p += 4;
    return true;
  };
  uint32_t ndim = 0, flags = 0, type = 0;
  if (!take(ndim) || !take(flags) || !take(type)) return bad();
  if (ndim == 0) return out;
  uint32_t count = 0, lower = 0;
  if (ndim != 1 || (type != kTextOid && type != 1043 /* varchar */) || !take(count) ||
      !take(lower)) {
    return bad();
  }
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = 0;
    if (!take(len) || len == 0xffffffffu || static_cast<uint64_t>(end - p) < len) return bad();
    out.emplace_back(p, len);
    p += len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Connection

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectOptions& options) {
  std::string timeout = std::to_string(std::max(1, options.connect_timeout_s));
  // Later keywords override earlier ones, and "dbname" expands the URL in place: so the
  // URL may override these defaults, except the encoding, which must be UTF8 because
  // text travels in binary form (verbatim bytes).
  const char* keys[] = {"application_name", "connect_timeout",     "keepalives",
                        "keepalives_idle",  "keepalives_interval", "keepalives_count",
                        "dbname",           "client_encoding",     nullptr};
  const char* values[] = {"berth", timeout.c_str(),     "1",    "30",   "10",
                          "3",     options.url.c_str(), "UTF8", nullptr};
  PGconn* raw = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (raw == nullptr) {
    return Status(Code::kUnavailable,
                  "cannot connect to PostgreSQL at " + options.url + ": out of memory");
  }
  auto conn = std::unique_ptr<Connection>(new Connection(raw));  // owns raw even on failure
  if (PQstatus(raw) != CONNECTION_OK) return ConnectError(options.url, PQerrorMessage(raw));
  // Notices ("relation already exists, skipping", a FATAL that arrives while idle) are
  // not errors of any operation; the results carry those.
  PQsetNoticeProcessor(
      raw, [](void*, const char*) {}, nullptr);
  if (PQserverVersion(raw) < 100000) {
    return Status(Code::kFailedPrecondition, "PostgreSQL at " + options.url + " is version " +
                                                 std::to_string(PQserverVersion(raw) / 10000) +
                                                 "; berth needs 10 or later");
  }
  // The store's transactions never sit idle between round trips for long, so a session
  // idle inside one belongs to a node that vanished (its machine or network died, which
  // closes no socket): end it, and with it the row locks it holds, instead of leaving
  // every other node waiting for the kernel's two-hour keepalive. The server's own
  // keepalives notice such a peer sooner too.
  PGresult* set = PQexec(raw,
                         "SET idle_in_transaction_session_timeout = '60s'; "
                         "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; "
                         "SET tcp_keepalives_count = 3");
  bool set_ok = set != nullptr && PQresultStatus(set) == PGRES_COMMAND_OK;
  std::string set_error = set_ok ? "" : OneLine(PQresultErrorMessage(set));
  if (set != nullptr) PQclear(set);
  if (!set_ok) {
    if (PQstatus(raw) != CONNECTION_OK) return conn->Lost("configure the session");
    return Status(Code::kFailedPrecondition,
                  "PostgreSQL at " + options.url + " refused the session settings: " + set_error);
  }
  if (PQenterPipelineMode(raw) == 0) return conn->Lost("enter pipeline mode");
  return conn;
}

namespace {
int64_t NewSessionKey() {
  // 62 random bits: collisions between the sessions of all nodes are out of the question.
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard lock(mu);
  return static_cast<int64_t>(rng() >> 2);
}
}  // namespace

Connection::Connection(PGconn* conn) : conn_(conn), session_key_(NewSessionKey()) {}

Connection::~Connection() { PQfinish(conn_); }

Status Connection::Lost(std::string_view what) {
  broken_ = true;
  return Status(Code::kUnavailable, "metadata store: lost the connection to PostgreSQL (" +
                                        std::string(what) + "): " + OneLine(PQerrorMessage(conn_)));
}

Status Connection::ServerError(const PGresult* result) {
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  last_sqlstate_ = state != nullptr ? state : "";
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  std::string msg =
      "metadata store: PostgreSQL: " +
      (primary != nullptr ? std::string(primary) : OneLine(PQresultErrorMessage(result)));
  if (!last_sqlstate_.empty()) msg += " (SQLSTATE " + last_sqlstate_ + ")";
  if (PQstatus(conn_) != CONNECTION_OK || IsConnectionLoss(last_sqlstate_)) {
    broken_ = true;
    return Status(Code::kUnavailable, std::move(msg));
  }
  return Status(CodeForSqlstate(last_sqlstate_), std::move(msg));
}

Result<std::vector<Rows>> Connection::Run(std::span<Statement> statements) {
  last_sqlstate_.clear();
  if (broken_) return Status(Code::kUnavailable, "metadata store: connection is broken");
  // Check every statement before sending any, so a programming error never leaves a
  // half-sent pipeline behind.
  for (const Statement& s : statements) {
    auto it = prepared_.find(s.sql);
    if (it == prepared_.end()) continue;
    bool same = it->second.types.size() == s.params.size();
    for (size_t i = 0; same && i < s.params.size(); ++i) {
      same = it->second.types[i] == s.params[i].type();
    }
    if (!same) {
      return Status::Internal("metadata store: statement used with other parameter types: " +
                              std::string(s.sql.substr(0, 60)));
    }
  }

  // What was sent, in order: each statement's Parse (first use only), then its
  // Bind/Execute.
  struct Sent {
    size_t statement;
    bool parse;
  };
  std::vector<Sent> sent;
  sent.reserve(statements.size() * 2);
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (size_t i = 0; i < statements.size(); ++i) {
    const Statement& s = statements[i];
    auto it = prepared_.find(s.sql);
    if (it == prepared_.end()) {
      Prepared p{"b" + std::to_string(++next_statement_), {}};
      for (const Param& param : s.params) p.types.push_back(param.type());
      std::string sql(s.sql);  // NUL-terminated
      if (PQsendPrepare(conn_, p.name.c_str(), sql.c_str(), static_cast<int>(p.types.size()),
                        p.types.data()) == 0) {
        return Lost("send");
      }
      it = prepared_.emplace(s.sql, std::move(p)).first;
      sent.push_back({i, true});
    }
    values.clear();
    lengths.clear();
    formats.clear();
    for (const Param& param : s.params) {
      values.push_back(param.data());
      lengths.push_back(param.size());
      formats.push_back(1);
    }
    if (PQsendQueryPrepared(conn_, it->second.name.c_str(), static_cast<int>(values.size()),
                            values.data(), lengths.data(), formats.data(),
                            /*resultFormat=*/1) == 0) {
      return Lost("send");
    }
    sent.push_back({i, false});
  }
  if (PQpipelineSync(conn_) == 0) return Lost("send");

  std::vector<Rows> out(statements.size());
  Status first_error;
  for (const Sent& x : sent) {
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) return Lost("read");
    Rows rows(r);
    ExecStatusType status = PQresultStatus(r);
    bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (status == PGRES_FATAL_ERROR && first_error.ok()) first_error = ServerError(r);
    if (broken_) return first_error;
    // A Parse that did not happen must happen again next time.
    if (x.parse && !ok) prepared_.erase(statements[x.statement].sql);
    if (!x.parse && ok) out[x.statement] = std::move(rows);
    // Each query's results end with a null result.
    PGresult* end = PQgetResult(conn_);
    if (end != nullptr) {
      PQclear(end);
      broken_ = true;
      return Status::Internal("metadata store: unexpected extra result from PostgreSQL");
    }
    if (PQstatus(conn_) != CONNECTION_OK) return Lost("read");
  }
  PGresult* sync = PQgetResult(conn_);
  bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  if (sync != nullptr) PQclear(sync);
  if (!synced) {
    if (first_error.ok()) return Lost("sync");
    broken_ = true;
    return first_error;
  }
  if (!first_error.ok()) return first_error;
  return out;
}

Result<Rows> Connection::Query(std::string_view sql, std::vector<Param> params) {
  Statement s{sql, std::move(params)};
  BERTH_ASSIGN_OR_RETURN(std::vector<Rows> rows, Run(std::span<Statement>(&s, 1)));
  return std::move(rows[0]);
}

Status Connection::ExecScript(const char* sql) {
  last_sqlstate_.clear();
  if (broken_) return Status(Code::kUnavailable, "metadata store: connection is broken");
  // The simple query protocol (several statements in one string) is not allowed in
  // pipeline mode; leaving it needs nothing pending, which holds between Runs.
  if (PQexitPipelineMode(conn_) == 0) return Lost("leave pipeline mode");
  PGresult* r = PQexec(conn_, sql);
  Status st;
  if (r == nullptr) {
    st = Lost("exec");
  } else if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    st = ServerError(r);
  }
  if (r != nullptr) PQclear(r);
  if (!broken_ && PQenterPipelineMode(conn_) == 0) return Lost("enter pipeline mode");
  return st;
}

bool Connection::StillUsable() {
  if (broken_ || PQstatus(conn_) != CONNECTION_OK) return false;
  // Nothing arrives on an idle session of ours (no LISTEN, no async notices we asked
  // for) except the server's goodbye: a FATAL before it closes the session, or the close
  // itself. So a readable socket means the connection is gone or going.
  pollfd p{PQsocket(conn_), POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

bool Connection::Idle() const {
  return !broken_ && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

// ---------------------------------------------------------------------------------------
// ConnectionPool

ConnectionPool::ConnectionPool(PoolOptions options, std::unique_ptr<Connection> first)
    : options_(std::move(options)) {
  if (first != nullptr) {
    idle_.push_back(std::move(first));
    open_ = 1;
  }
}

ConnectionPool::~ConnectionPool() = default;  // every Lease is gone by now

Result<ConnectionPool::Lease> ConnectionPool::Acquire(Patience patience) {
  return Get(patience, /*reuse=*/true);
}

Result<ConnectionPool::Lease> ConnectionPool::AcquireNew(Patience patience) {
  return Get(patience, /*reuse=*/false);
}

Result<ConnectionPool::Lease> ConnectionPool::Get(Patience patience, bool reuse) {
  const size_t max = std::max<size_t>(1, options_.max_connections);
  auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  for (;;) {
    std::unique_ptr<Connection> idle;
    {
      std::unique_lock lock(mu_);
      // A slot: an idle connection to reuse (or to close and replace), or room to open one.
      while (idle_.empty() && open_ >= max) {
        if (returned_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
            open_ >= max) {
          return Status(Code::kUnavailable,
                        "metadata store: all " + std::to_string(max) +
                            " PostgreSQL connections are busy (max_connections)");
        }
      }
      if (!idle_.empty() && (reuse || open_ >= max)) {
        idle = std::move(idle_.back());
        idle_.pop_back();
        if (!reuse) --open_;  // closed below, replaced by a new one
      }
      if (!reuse || idle == nullptr) ++open_;  // the slot of the connection opened below
    }
    if (idle != nullptr && reuse) {
      if (idle->StillUsable()) return Lease(this, std::move(idle));
      idle.reset();  // the server closed it; try the next one
      std::lock_guard lock(mu_);
      --open_;
      returned_.notify_one();
      continue;
    }
    idle.reset();
    auto conn = Connect(patience);
    if (!conn.ok()) {
      std::lock_guard lock(mu_);
      --open_;
      returned_.notify_one();
      return conn.status();
    }
    return Lease(this, std::move(conn).value());
  }
}

Result<std::unique_ptr<Connection>> ConnectionPool::Connect(Patience patience) {
  auto deadline = std::chrono::steady_clock::now() + options_.reconnect_timeout;
  auto backoff = std::chrono::milliseconds(50);
  for (;;) {
    auto conn = Connection::Open(options_.connect);
    // Only an unreachable server is worth waiting for (a restart, a failover); a
    // refused password or a missing database will not fix themselves.
    if (conn.ok() || patience == Patience::kFailFast || !conn.status().Is(Code::kUnavailable) ||
        std::chrono::steady_clock::now() + backoff > deadline) {
      return conn;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(1));
  }
}

void ConnectionPool::Release(std::unique_ptr<Connection> conn) {
  // A connection left inside a transaction (or broken) is closed, never reused.
  bool keep = conn->Idle();
  std::unique_ptr<Connection> closing;
  {
    std::lock_guard lock(mu_);
    if (keep) {
      idle_.push_back(std::move(conn));
    } else {
      closing = std::move(conn);
      --open_;
    }
  }
  returned_.notify_one();
  // PQfinish outside the lock.
}

size_t ConnectionPool::open_connections() const {
  std::lock_guard lock(mu_);
  return open_;
}

size_t ConnectionPool::idle_connections() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

}  // namespace berth::storage::pg
