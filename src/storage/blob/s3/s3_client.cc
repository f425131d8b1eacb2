#include "storage/blob/s3/s3_client.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "auth/crypto.h"
#include "auth/sigv4.h"
#include "base/base64.h"
#include "storage/blob/s3/s3_protocol.h"

namespace berth::storage::s3 {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

using RequestBody = http::span_body<const char>;
using Request = http::request<RequestBody>;
using Parser = http::response_parser<http::buffer_body>;

constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr size_t kMaxResultBody = 32 * 1024 * 1024;  // a 1000-key listing is ~0.5 MiB
constexpr uint32_t kMaxHeaderBytes = 64 * 1024;
constexpr int kMaxStaleResends = 2;
constexpr std::string_view kUserAgent = "berth-s3/0.1";

std::string Ms(milliseconds d) { return std::to_string(d.count()) + " ms"; }

// The message of a Beast/Asio error, with timeouts made explicit.
std::string Describe(const error_code& ec, milliseconds timeout) {
  if (ec == beast::error::timeout) return "timed out after " + Ms(timeout);
  return ec.message();
}

// The peer closed a kept-alive connection before answering: the request never reached
// a server that was going to answer it, so it can be resent on a new connection at once.
bool IsClosedByPeer(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

// A failed attempt at talking to the store.
struct Failure {
  std::string what;
  bool stale = false;  // on a reused connection, before any response: resend at once
  // Set when retrying cannot help (an untrusted certificate): the call's result.
  std::optional<Status> fatal;

  static Failure Retryable(std::string what, bool stale = false) {
    return Failure{std::move(what), stale, std::nullopt};
  }
  static Failure Fatal(Status status) { return Failure{"", false, std::move(status)}; }
};

// One HTTP/1.1 connection, plain or TLS, driven synchronously: each operation starts
// the asynchronous Beast operation and runs the connection's own io_context until it
// completes, so that Beast's timers bound connects, reads and writes (blocking socket
// calls have no timeouts). Used by one thread at a time (the borrower).
class Connection final {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Resolves, connects and (https) handshakes. nullopt on success.
  std::optional<Failure> Open(const S3Endpoint& ep, ssl::context* tls, bool verify,
                              milliseconds timeout) {
    const std::string where = ep.connect_host + ":" + ep.port;
    tcp::resolver resolver(ioc_);
    tcp::resolver::results_type addresses;
    error_code ec;
    bool done = false;
    resolver.async_resolve(ep.connect_host, ep.port,
                           [&](const error_code& e, tcp::resolver::results_type r) {
                             ec = e;
                             addresses = std::move(r);
                             done = true;
                           });
    // Resolution runs on Asio's resolver thread and knows no deadline of its own.
    asio::steady_timer deadline(ioc_, timeout);
    bool resolve_timed_out = false;
    bool deadline_done = false;
    deadline.async_wait([&](const error_code& e) {
      if (!e && !done) {
        resolve_timed_out = true;
        resolver.cancel();
      }
      deadline_done = true;
    });
    RunUntil(done);
    deadline.cancel();
    RunUntil(deadline_done);
    if (ec) {
      return Failure::Retryable(
          "resolve " + ep.connect_host + ": " +
          (resolve_timed_out ? "timed out after " + Ms(timeout) : ec.message()));
    }

    beast::tcp_stream stream(ioc_);
    stream.expires_after(timeout);
    done = false;
    stream.async_connect(addresses, [&](const error_code& e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    RunUntil(done);
    if (ec) return Failure::Retryable("connect to " + where + ": " + Describe(ec, timeout));
    stream.socket().set_option(tcp::no_delay(true), ec);

    if (!ep.tls) {
      tcp_.emplace(std::move(stream));
      return std::nullopt;
    }
    tls_.emplace(std::move(stream), *tls);
    error_code parse_ec;
    asio::ip::make_address(ep.connect_host, parse_ec);
    const bool is_ip = !parse_ec;
    // SNI carries names only (RFC 6066 §3).
    if (!is_ip) SSL_set_tlsext_host_name(tls_->native_handle(), ep.connect_host.c_str());
    if (verify) tls_->set_verify_callback(ssl::host_name_verification(ep.connect_host));
    beast::get_lowest_layer(*tls_).expires_after(timeout);
    done = false;
    tls_->async_handshake(ssl::stream_base::client, [&](const error_code& e) {
      ec = e;
      done = true;
    });
    RunUntil(done);
    if (ec) {
      const long verify_result = SSL_get_verify_result(tls_->native_handle());
      if (verify && verify_result != X509_V_OK) {
        return Failure::Fatal(Status::FailedPrecondition(
            "TLS certificate of object store " + ep.display + " (" + where +
            ") is not trusted: " + X509_verify_cert_error_string(verify_result) +
            "; trust its CA with the object store's CA file setting"));
      }
      return Failure::Retryable("TLS handshake with " + where + ": " + Describe(ec, timeout));
    }
    return std::nullopt;
  }

  error_code Write(Request& req, milliseconds timeout) {
    http::request_serializer<RequestBody> sr(req);
    error_code ec;
    // One write_some at a time, each with its own deadline: the timeout bounds a stall,
    // not the time a large part takes to send.
    while (!sr.is_done() && !ec) {
      Lowest().expires_after(timeout);
      bool done = false;
      WithStream([&](auto& s) {
        http::async_write_some(s, sr, [&](const error_code& e, size_t) {
          ec = e;
          done = true;
        });
      });
      RunUntil(done);
    }
    return ec;
  }

  error_code ReadHeader(Parser& parser, milliseconds timeout) {
    Lowest().expires_after(timeout);
    error_code ec;
    bool done = false;
    WithStream([&](auto& s) {
      http::async_read_header(s, buffer_, parser, [&](const error_code& e, size_t) {
        ec = e;
        done = true;
      });
    });
    RunUntil(done);
    return ec;
  }

  // Reads body bytes into `out` until it is full or the message ends; `n` is how many.
  error_code ReadBody(Parser& parser, std::span<char> out, size_t& n, milliseconds timeout) {
    n = 0;
    error_code ec;
    while (n < out.size() && !parser.is_done()) {
      auto& body = parser.get().body();
      body.data = out.data() + n;
      body.size = out.size() - n;
      Lowest().expires_after(timeout);
      bool done = false;
      WithStream([&](auto& s) {
        http::async_read_some(s, buffer_, parser, [&](const error_code& e, size_t) {
          ec = e;
          done = true;
        });
      });
      RunUntil(done);
      n += (out.size() - n) - body.size;
      if (ec == http::error::need_buffer) ec = {};  // `out` is full
      if (ec) break;
    }
    parser.get().body().data = nullptr;
    parser.get().body().size = 0;
    return ec;
  }

  // Whether a pooled connection can carry another request: the server has neither
  // closed it nor sent anything unasked (poll with no wait, no read).
  bool LooksReusable() {
    if (buffer_.size() != 0) return false;
    pollfd p{Lowest().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

  SteadyClock::time_point idle_since() const { return idle_since_; }
  void MarkIdle() { idle_since_ = SteadyClock::now(); }

 private:
  beast::tcp_stream& Lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *tcp_; }

  template <typename F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*tcp_);
    }
  }

  // Runs handlers until `done`. Every caller has an operation pending, whose completion
  // sets `done`; running out of work first would be a broken invariant.
  void RunUntil(const bool& done) {
    ioc_.restart();
    while (!done) {
      if (ioc_.run_one() == 0) {
        spdlog::critical("s3 connection ran out of work before its operation completed");
        std::abort();
      }
    }
  }

  // Declared first: the streams' destructors need it alive.
  asio::io_context ioc_{1};
  std::optional<beast::tcp_stream> tcp_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
  SteadyClock::time_point idle_since_;
};

// Idle keep-alive connections, newest last. Thread-safe.
class ConnectionPool final {
 public:
  ConnectionPool(size_t max_idle, milliseconds idle_timeout)
      : max_idle_(max_idle), idle_timeout_(idle_timeout) {}

  // A connection that still looks usable, or nullptr.
  std::unique_ptr<Connection> Take() {
    for (;;) {
      std::unique_ptr<Connection> c;
      {
        std::lock_guard lock(mu_);
        if (idle_.empty()) return nullptr;
        // Newest first: the least likely to have been closed by the server.
        c = std::move(idle_.back());
        idle_.pop_back();
      }
      if (SteadyClock::now() - c->idle_since() < idle_timeout_ && c->LooksReusable()) return c;
      // Dropped (closed) here, outside the lock.
    }
  }

  void Put(std::unique_ptr<Connection> c) {
    c->MarkIdle();
    std::unique_ptr<Connection> surplus;
    std::lock_guard lock(mu_);
    if (idle_.size() >= max_idle_) {
      surplus = std::move(c);  // closed after the lock is released (declared before it)
      return;
    }
    idle_.push_back(std::move(c));
  }

 private:
  const size_t max_idle_;
  const milliseconds idle_timeout_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
};

// One S3 request, as an operation describes it.
struct Call {
  http::verb method = http::verb::get;
  std::string_view op;
  std::string key;  // full key; "" for the bucket
  QueryParams query;
  Headers headers;
  std::span<const char> body;
  // CompleteMultipartUpload, CopyObject and UploadPartCopy can answer 200 and report
  // the failure in the body.
  bool error_in_200 = false;
  std::string_view upload_id;  // for messages
};

// A response: its header, and either its body (read) or the open exchange (streamed).
struct Response {
  http::response_header<> header;
  std::string body;
  std::unique_ptr<Connection> conn;
  std::unique_ptr<Parser> parser;
  int attempts = 0;

  int status() const { return static_cast<int>(header.result_int()); }
  std::string Field(http::field f) const { return std::string(header[f]); }
};

// Everything a call needs; shared by the client and its ObjectReaders so a reader may
// outlive the client. Immutable after construction but for the pool: thread-safe.
class Core final {
 public:
  Core(S3Config config, S3Endpoint endpoint, S3Credentials credentials, S3ClientHooks hooks,
       std::unique_ptr<ssl::context> tls)
      : config_(std::move(config)),
        endpoint_(std::move(endpoint)),
        credentials_(std::move(credentials)),
        hooks_(std::move(hooks)),
        tls_(std::move(tls)),
        pool_(config_.max_idle_connections, config_.idle_timeout) {}

  const S3Config& config() const { return config_; }
  const S3Endpoint& endpoint() const { return endpoint_; }
  const S3Credentials& credentials() const { return credentials_; }
  int64_t NowSeconds() const { return hooks_.clock->NowMillis() / 1000; }

  OpContext Context(const Call& call) const {
    return OpContext{call.op,  endpoint_.display, endpoint_.bucket,
                     call.key, call.upload_id,    credentials_.access_key_id};
  }

  // Sends `call`, retrying as the header comment of s3_client.h says. A 2xx response
  // comes back with its body read, or, with `stream`, with the exchange open for the
  // caller to read the body from. Any other answer becomes the operation's Status.
  Result<Response> Execute(const Call& call, bool stream, int* attempts_out = nullptr) {
    try {
      return ExecuteOrThrow(call, stream, attempts_out);
    } catch (const std::exception& e) {
      // Beast and Asio report through error codes here; this is the adapter's net.
      return Status::Internal("s3 " + std::string(call.op) + ": unexpected exception: " + e.what());
    }
  }

  void Release(std::unique_ptr<Connection> conn, const Parser& parser) {
    if (conn && parser.is_done() && parser.keep_alive()) pool_.Put(std::move(conn));
  }

  void Backoff(int retry, const OpContext& ctx, std::string_view error) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const milliseconds delay = RetryDelay(retry, config_.retry_base_delay, config_.retry_max_delay,
                                          std::uniform_real_distribution<double>(0.0, 1.0)(rng));
    spdlog::warn(
        "s3 request failed, retrying op={} bucket={} key={} retry={} max_retries={} delay_ms={} "
        "error=\"{}\"",
        ctx.op, ctx.bucket, ctx.key, retry, config_.max_retries, delay.count(), error);
    hooks_.sleep(delay);
  }

  milliseconds io_timeout() const { return config_.io_timeout; }

 private:
  Result<Response> ExecuteOrThrow(const Call& call, bool stream, int* attempts_out) {
    const OpContext ctx = Context(call);
    const std::string payload_sha256 = PayloadHash(call.body);
    int attempt = 0;
    int stale_resends = 0;
    bool fresh_connection = false;
    for (;;) {
      ++attempt;
      if (attempts_out != nullptr) *attempts_out = attempt;
      Response r;
      r.attempts = attempt;
      std::optional<Failure> failure = Attempt(call, payload_sha256, fresh_connection, r);
      fresh_connection = false;
      if (!failure && (r.status() < 200 || r.status() > 299 || !stream || call.error_in_200)) {
        // Read the body: the result document, or the error document.
        const bool ok_status = r.status() >= 200 && r.status() <= 299;
        failure = ReadBody(r, ok_status ? kMaxResultBody : kMaxErrorBody);
      }
      if (failure) {
        if (failure->stale && stale_resends < kMaxStaleResends) {
          ++stale_resends;
          --attempt;
          fresh_connection = true;
          continue;
        }
        if (failure->fatal) return *failure->fatal;
        if (attempt > config_.max_retries) return UnreachableStatus(failure->what, ctx, attempt);
        Backoff(attempt, ctx, failure->what);
        continue;
      }

      std::optional<S3Error> error;
      if (r.status() < 200 || r.status() > 299) {
        error = ParseErrorBody(r.status(), r.body);
        if (!error) error = S3Error{r.status(), "", "", ""};
      } else if (call.error_in_200) {
        error = ParseErrorBody(r.status(), r.body);
      }
      if (!error) return r;
      if (IsRetryable(*error) && attempt <= config_.max_retries) {
        Backoff(attempt, ctx,
                error->code.empty() ? "HTTP " + std::to_string(error->http_status)
                                    : error->code + ": " + error->message);
        continue;
      }
      return ErrorStatus(*error, ctx, attempt);
    }
  }

  // Over https a large body goes unsigned: TLS already authenticates it, and hashing a
  // 100 MiB part costs a pass over it. Over plain http the hash is the only check the
  // store can make, so it is always signed.
  std::string PayloadHash(std::span<const char> body) const {
    if (body.empty()) return std::string(auth::kEmptyPayloadSha256);
    if (endpoint_.tls && body.size() >= config_.unsigned_payload_min_size) {
      return std::string(auth::kUnsignedPayload);
    }
    return auth::Sha256Hex(std::string_view(body.data(), body.size()));
  }

  // Sends the request and reads the response header into `r`.
  std::optional<Failure> Attempt(const Call& call, const std::string& payload_sha256,
                                 bool fresh_connection, Response& r) {
    std::unique_ptr<Connection> conn = fresh_connection ? nullptr : pool_.Take();
    const bool reused = conn != nullptr;
    if (!conn) {
      conn = std::make_unique<Connection>();
      if (auto f = conn->Open(endpoint_, tls_.get(), config_.verify_tls, config_.connect_timeout)) {
        return f;
      }
    }
    auto signed_req =
        SignS3Request(endpoint_, credentials_, config_.region, http::to_string(call.method),
                      call.key, call.query, call.headers, payload_sha256, NowSeconds());
    if (!signed_req.ok()) return Failure::Fatal(signed_req.status());

    Request req{call.method, signed_req->target, 11};
    for (const auto& [name, value] : signed_req->headers) req.insert(name, value);
    req.set(http::field::user_agent, kUserAgent);
    req.body() = RequestBody::value_type(call.body.data(), call.body.size());
    if (!call.body.empty() || call.method == http::verb::put || call.method == http::verb::post) {
      req.content_length(call.body.size());
    }
    if (error_code ec = conn->Write(req, config_.io_timeout)) {
      return Failure::Retryable("send request: " + Describe(ec, config_.io_timeout),
                                reused && IsClosedByPeer(ec));
    }
    auto parser = std::make_unique<Parser>();
    parser->header_limit(kMaxHeaderBytes);
    parser->body_limit(boost::none);  // GetObject bodies are streamed, of any size
    if (call.method == http::verb::head) parser->skip(true);
    if (error_code ec = conn->ReadHeader(*parser, config_.io_timeout)) {
      return Failure::Retryable("read response: " + Describe(ec, config_.io_timeout),
                                reused && IsClosedByPeer(ec));
    }
    r.header = parser->get().base();
    r.conn = std::move(conn);
    r.parser = std::move(parser);
    return std::nullopt;
  }

  // Reads the whole body of `r` (at most `limit` bytes) and pools its connection.
  std::optional<Failure> ReadBody(Response& r, size_t limit) {
    std::vector<char> chunk(64 * 1024);
    while (!r.parser->is_done()) {
      size_t n = 0;
      if (error_code ec = r.conn->ReadBody(*r.parser, chunk, n, config_.io_timeout)) {
        r.conn.reset();
        return Failure::Retryable("read response body: " + Describe(ec, config_.io_timeout));
      }
      if (r.body.size() + n > limit) {
        // Stop reading; the connection cannot be reused with a body half read.
        r.conn.reset();
        r.body.append(chunk.data(), std::min(n, limit - r.body.size()));
        return std::nullopt;
      }
      r.body.append(chunk.data(), n);
    }
    Release(std::move(r.conn), *r.parser);
    return std::nullopt;
  }

  const S3Config config_;
  const S3Endpoint endpoint_;
  const S3Credentials credentials_;
  const S3ClientHooks hooks_;
  const std::unique_ptr<ssl::context> tls_;
  ConnectionPool pool_;
};

std::optional<uint64_t> ParseU64(std::string_view s) {
  uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// "bytes FIRST-LAST/TOTAL".
bool ParseContentRange(std::string_view s, uint64_t& first, uint64_t& last, uint64_t& total) {
  if (s.substr(0, 6) != "bytes ") return false;
  s.remove_prefix(6);
  size_t dash = s.find('-');
  size_t slash = s.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    return false;
  }
  auto f = ParseU64(s.substr(0, dash));
  auto l = ParseU64(s.substr(dash + 1, slash - dash - 1));
  auto t = ParseU64(s.substr(slash + 1));
  if (!f || !l || !t || *l < *f || *l >= *t) return false;
  first = *f;
  last = *l;
  total = *t;
  return true;
}

class ObjectReaderImpl final : public ObjectReader {
 public:
  ObjectReaderImpl(std::shared_ptr<Core> core, std::string key, uint64_t start, uint64_t size,
                   uint64_t object_size, std::string etag, Response open)
      : core_(std::move(core)),
        key_(std::move(key)),
        start_(start),
        size_(size),
        object_size_(object_size),
        etag_(std::move(etag)),
        conn_(std::move(open.conn)),
        parser_(std::move(open.parser)) {}

  uint64_t size() const override { return size_; }
  uint64_t object_size() const override { return object_size_; }
  const std::string& etag() const override { return etag_; }

  Result<size_t> Read(std::span<char> out) override {
    if (!error_.ok()) return error_;
    try {
      auto n = ReadOrThrow(out);
      if (!n.ok()) error_ = n.status();
      return n;
    } catch (const std::exception& e) {
      error_ = Status::Internal("s3 GetObject " + key_ + ": unexpected exception: " + e.what());
      return error_;
    }
  }

 private:
  Result<size_t> ReadOrThrow(std::span<char> out) {
    size_t total = 0;
    while (total < out.size() && delivered_ < size_) {
      if (!parser_) BERTH_RETURN_IF_ERROR(Resume());
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(out.size() - total, size_ - delivered_));
      size_t n = 0;
      error_code ec = conn_->ReadBody(*parser_, out.subspan(total, want), n, core_->io_timeout());
      total += n;
      delivered_ += n;
      if (ec) {
        conn_.reset();
        parser_.reset();
        OpContext ctx = Context();
        const std::string what = "read object body at byte " + std::to_string(start_ + delivered_) +
                                 ": " + Describe(ec, core_->io_timeout());
        if (++resumes_ > core_->config().max_retries) {
          return UnreachableStatus(what, ctx, resumes_);
        }
        spdlog::warn(
            "s3 object read interrupted, resuming op=GetObject bucket={} key={} offset={} "
            "resume={} error=\"{}\"",
            ctx.bucket, key_, start_ + delivered_, resumes_, what);
        continue;
      }
      if (parser_->is_done() && delivered_ < size_) {
        return Status::Corruption("object " + key_ + ": the store sent " +
                                  std::to_string(delivered_) + " of " + std::to_string(size_) +
                                  " bytes and ended the response");
      }
    }
    if (delivered_ == size_ && parser_) BERTH_RETURN_IF_ERROR(Finish());
    return total;
  }

  OpContext Context() const {
    return OpContext{"GetObject", core_->endpoint().display,         core_->endpoint().bucket, key_,
                     "",          core_->credentials().access_key_id};
  }

  // Everything was delivered: read what is left of the message (a chunked body's last
  // chunk) so the connection can be pooled.
  Status Finish() {
    if (!parser_->is_done()) {
      char extra = 0;
      size_t n = 0;
      error_code ec = conn_->ReadBody(*parser_, std::span<char>(&extra, 1), n, core_->io_timeout());
      if (!ec && n > 0) {
        return Status::Corruption("object " + key_ + ": the store sent more than the " +
                                  std::to_string(size_) + " bytes it announced");
      }
    }
    if (parser_->is_done()) core_->Release(std::move(conn_), *parser_);
    conn_.reset();
    parser_.reset();
    return Status::Ok();
  }

  // Asks again for what is left, on the condition that the object has not changed.
  Status Resume() {
    Call call;
    call.method = http::verb::get;
    call.op = "GetObject";
    call.key = key_;
    const uint64_t from = start_ + delivered_;
    const uint64_t to = start_ + size_ - 1;
    call.headers = {{"Range", "bytes=" + std::to_string(from) + "-" + std::to_string(to)},
                    {"If-Match", etag_}};
    BERTH_ASSIGN_OR_RETURN(Response r, core_->Execute(call, /*stream=*/true));
    uint64_t first = 0, last = 0, total = 0;
    if (r.status() != 206 ||
        !ParseContentRange(r.Field(http::field::content_range), first, last, total) ||
        first != from || last != to || total != object_size_) {
      return Status(Code::kAborted,
                    "object " + key_ + " changed while it was being read (resuming at " +
                        std::to_string(from) + " got HTTP " + std::to_string(r.status()) + " '" +
                        r.Field(http::field::content_range) + "')");
    }
    conn_ = std::move(r.conn);
    parser_ = std::move(r.parser);
    return Status::Ok();
  }

  const std::shared_ptr<Core> core_;
  const std::string key_;  // full key
  const uint64_t start_;
  const uint64_t size_;
  const uint64_t object_size_;
  const std::string etag_;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<Parser> parser_;
  uint64_t delivered_ = 0;
  int resumes_ = 0;
  Status error_;
};

class S3ClientImpl final : public S3Client {
 public:
  S3ClientImpl(S3Config config, std::shared_ptr<Core> core)
      : S3Client(std::move(config)), core_(std::move(core)) {}

  Status HeadBucket() override { return Do(Bucket(http::verb::head, "HeadBucket")).status(); }

  Status CreateBucket() override {
    Call call = Bucket(http::verb::put, "CreateBucket");
    std::string body;
    // us-east-1 is the default location, and the one name AWS refuses as a constraint.
    if (config().region != "us-east-1") {
      body =
          "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
          "<LocationConstraint>" +
          xml::Escape(config().region) + "</LocationConstraint></CreateBucketConfiguration>";
      call.body = body;
    }
    auto r = Do(std::move(call));
    // Ours already (also when a retry follows a create whose answer was lost).
    if (!r.ok() && r.status().detail() == "BucketAlreadyOwnedByYou") return Status::Ok();
    return r.status();
  }

  Status DeleteBucket() override {
    return Do(Bucket(http::verb::delete_, "DeleteBucket")).status();
  }

  Result<ObjectInfo> HeadObject(std::string_view key) override {
    BERTH_ASSIGN_OR_RETURN(Call call, Object(http::verb::head, "HeadObject", key));
    BERTH_ASSIGN_OR_RETURN(Response r, Do(std::move(call)));
    ObjectInfo info;
    auto size = ParseU64(r.Field(http::field::content_length));
    if (!size) return Missing("HeadObject", key, "Content-Length");
    info.size = *size;
    info.etag = r.Field(http::field::etag);
    info.last_modified = r.Field(http::field::last_modified);
    constexpr std::string_view kMeta = "x-amz-meta-";
    for (const auto& field : r.header) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (name.size() > kMeta.size() && name.compare(0, kMeta.size(), kMeta) == 0) {
        info.metadata[name.substr(kMeta.size())] = std::string(field.value());
      }
    }
    return info;
  }

  Result<std::unique_ptr<ObjectReader>> GetObject(std::string_view key,
                                                  std::optional<ByteRange> range) override {
    BERTH_ASSIGN_OR_RETURN(Call call, Object(http::verb::get, "GetObject", key));
    std::optional<std::string> range_header;
    if (range) {
      BERTH_ASSIGN_OR_RETURN(range_header, RangeHeader(*range));
      if (range_header) call.headers.emplace_back("Range", *range_header);
    }
    BERTH_ASSIGN_OR_RETURN(Response r, core_->Execute(call, /*stream=*/true));
    auto length = ParseU64(r.Field(http::field::content_length));
    if (!length) return Missing("GetObject", key, "Content-Length");
    uint64_t start = 0, size = *length, object_size = *length;
    if (r.status() == 206) {
      uint64_t last = 0;
      if (!range_header) {
        return Status::Internal("GetObject " + call.key + ": object store " +
                                core_->endpoint().display +
                                " sent a partial answer (206) to "
                                "a request for the whole object");
      }
      if (!ParseContentRange(r.Field(http::field::content_range), start, last, object_size) ||
          last - start + 1 != size || start != range->offset) {
        return Status::Internal("GetObject " + call.key + ": object store " +
                                core_->endpoint().display + " answered range '" + *range_header +
                                "' with Content-Range '" + r.Field(http::field::content_range) +
                                "'");
      }
    } else if (range_header) {
      return Status::Internal("GetObject " + call.key + ": object store " +
                              core_->endpoint().display + " ignored the Range header (HTTP " +
                              std::to_string(r.status()) + ")");
    }
    std::string etag = r.Field(http::field::etag);
    return std::unique_ptr<ObjectReader>(std::make_unique<ObjectReaderImpl>(
        core_, call.key, start, size, object_size, std::move(etag), std::move(r)));
  }

  Result<std::string> PutObject(std::string_view key, std::span<const char> body) override {
    BERTH_ASSIGN_OR_RETURN(Call call, Object(http::verb::put, "PutObject", key));
    call.body = body;
    BERTH_ASSIGN_OR_RETURN(Response r, Do(std::move(call)));
    return r.Field(http::field::etag);
  }

  Result<std::string> PutObjectIfAbsent(
      std::string_view key, std::span<const char> body,
      const std::map<std::string, std::string>& metadata) override {
    BERTH_ASSIGN_OR_RETURN(Call call, Object(http::verb::put, "PutObject", key));
    call.headers = {{"If-None-Match", "*"}};
    for (const auto& [name, value] : metadata) call.headers.emplace_back("x-amz-meta-" + name, value);
    call.body = body;
    auto r = Do(std::move(call));
    if (!r.ok()) {
      if (r.status().Is(Code::kAborted)) {  // 412: the condition failed
        return Status(Code::kAlreadyExists,
                      "object " + config().prefix + std::string(key) +
                          " already exists in bucket " + config().bucket,
                      "PreconditionFailed");
      }
      return r.status();
    }
    return r->Field(http::field::etag);
  }

  Status DeleteObject(std::string_view key) override {
    BERTH_ASSIGN_OR_RETURN(Call call, Object(http::verb::delete_, "DeleteObject", key));
    auto r = Do(std::move(call));
    // Deleting what is not there succeeds in S3; some stores still say NoSuchKey.
    if (!r.ok() && r.status().Is(Code::kNotFound)) return Status::Ok();
    return r.status();
  }

  Result<std::vector<DeleteFailure>> DeleteObjects(std::span<const std::string> keys) override {
    constexpr size_t kMaxPerRequest = 1000;  // S3's limit
    std::vector<DeleteFailure> failures;
    for (size_t begin = 0; begin < keys.size(); begin += kMaxPerRequest) {
      std::vector<std::string> full;
      for (size_t i = begin; i < std::min(keys.size(), begin + kMaxPerRequest); ++i) {
        if (keys[i].empty()) return Status::InvalidArgument("DeleteObjects: an empty key");
        full.push_back(config().prefix + keys[i]);
      }
      const std::string body = DeleteObjectsBody(full);
      Call call = Bucket(http::verb::post, "DeleteObjects");
      call.query = {{"delete", ""}};
      // S3 insists on an integrity header for this one request.
      call.headers = {{"Content-MD5", Md5Base64(body)}, {"Content-Type", "application/xml"}};
      call.body = body;
      BERTH_ASSIGN_OR_RETURN(Response r, Do(std::move(call)));
      BERTH_ASSIGN_OR_RETURN(auto batch, ParseDeleteResult(r.body, config().prefix));
      for (auto& f : batch) failures.push_back(std::move(f));
    }
    return failures;
  }

  Result<ListObjectsPage> ListObjectsV2(const ListObjectsRequest& request) override {
    if (request.max_keys < 1 || request.max_keys > 1000) {
      return Status::InvalidArgument("ListObjectsV2: max_keys must be 1 to 1000, not " +
                                     std::to_string(request.max_keys));
    }
    Call call = Bucket(http::verb::get, "ListObjectsV2");
    call.query = {{"list-type", "2"},
                  {"max-keys", std::to_string(request.max_keys)},
                  // Keys travel percent-encoded: XML 1.0 cannot carry every byte a key may.
                  {"encoding-type", "url"}};
    const std::string prefix = config().prefix + request.prefix;
    if (!prefix.empty()) call.query.emplace_back("prefix", prefix);
    if (!request.delimiter.empty()) call.query.emplace_back("delimiter", request.delimiter);
    if (!request.continuation_token.empty()) {
      call.query.emplace_back("continuation-token", request.continuation_token);
    }
    if (!request.start_after.empty()) {
      call.query.emplace_back("start-after", config().prefix + request.start_after);
    }
    BERTH_ASSIGN_OR_RETURN(Response r, Do(std::move(call)));
    return ParseListObjectsV2(r.body, config().prefix);
  }

  Result<std::string> CopyObject(std::string_view source_key,
                                 std::string_view destination_key) override {
    if (source_key.empty()) return Status::InvalidArgument("CopyObject: empty source key");
    BERTH_ASSIGN_OR_RETURN(Call call, Object(http::verb::put, "CopyObject", destination_key));
    call.headers = {{"x-amz-copy-source", CopySource(source_key)}};
    call.error_in_200 = true;
    BERTH_ASSIGN_OR_RETURN(Response r, Do(std::move(call)));
    return ParseResultETag(r.body, "CopyObjectResult");
  }

  Result<std::string> CreateMultipartUpload(std::string_view key) override {
    BERTH_ASSIGN_OR_RETURN(Call call, Object(http::verb::post, "CreateMultipartUpload", key));
    call.query = {{"uploads", ""}};
    BERTH_ASSIGN_OR_RETURN(Response r, Do(std::move(call)));
    return ParseInitiateMultipartUpload(r.body);
  }

  Result<std::string> UploadPart(std::string_view key, std::string_view upload_id, int part_number,
                                 std::span<const char> body) override {
    BERTH_ASSIGN_OR_RETURN(Call call,
                           Part(http::verb::put, "UploadPart", key, upload_id, part_number));
    call.body = body;
    BERTH_ASSIGN_OR_RETURN(Response r, Do(std::move(call)));
    std::string etag = r.Field(http::field::etag);
    if (etag.empty()) return Missing("UploadPart", key, "ETag");
    return etag;
  }

  Result<std::string> UploadPartCopy(std::string_view key, std::string_view upload_id,
                                     int part_number, std::string_view source_key,
                                     std::optional<ByteRange> range) override {
    if (source_key.empty()) return Status::InvalidArgument("UploadPartCopy: empty source key");
    BERTH_ASSIGN_OR_RETURN(Call call,
                           Part(http::verb::put, "UploadPartCopy", key, upload_id, part_number));
    call.headers = {{"x-amz-copy-source", CopySource(source_key)}};
    if (range) {
      // x-amz-copy-source-range has no open-ended form.
      if (!range->length) {
        return Status::InvalidArgument("UploadPartCopy: a source range needs a length");
      }
      BERTH_ASSIGN_OR_RETURN(std::optional<std::string> header, RangeHeader(*range));
      call.headers.emplace_back("x-amz-copy-source-range", *header);  // set: a length is given
    }
    call.error_in_200 = true;
    BERTH_ASSIGN_OR_RETURN(Response r, Do(std::move(call)));
    return ParseResultETag(r.body, "CopyPartResult");
  }

  Result<std::string> CompleteMultipartUpload(std::string_view key, std::string_view upload_id,
                                              std::span<const CompletedPart> parts) override {
    if (parts.empty()) {
      return Status::InvalidArgument("CompleteMultipartUpload: an upload needs at least one part");
    }
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i].part_number <= parts[i - 1].part_number) {
        return Status::InvalidArgument(
            "CompleteMultipartUpload: parts must be in ascending part number order");
      }
    }
    BERTH_ASSIGN_OR_RETURN(Call call, Object(http::verb::post, "CompleteMultipartUpload", key));
    if (upload_id.empty())
      return Status::InvalidArgument("CompleteMultipartUpload: empty upload id");
    call.query = {{"uploadId", std::string(upload_id)}};
    call.upload_id = upload_id;
    const std::string body = CompleteMultipartUploadBody(parts);
    call.headers = {{"Content-Type", "application/xml"}};
    call.body = body;
    call.error_in_200 = true;
    int attempts = 0;
    auto r = core_->Execute(call, /*stream=*/false, &attempts);
    if (r.ok()) {
      auto etag = ParseResultETag(r->body, "CompleteMultipartUploadResult");
      if (etag.ok()) return etag;
      // Radosgw 16.2 answers <ETag></ETag>; the object itself has one.
      auto doc = xml::Parse(r->body);
      if (!doc.ok() || doc->name != "CompleteMultipartUploadResult") return etag.status();
      BERTH_ASSIGN_OR_RETURN(ObjectInfo info, HeadObject(key));
      return info.etag;
    }
    if (r.status().Is(Code::kUploadUnknown) && attempts > 1) {
      // An earlier attempt may have completed the upload and lost the answer. The object
      // is ours if it is now a multipart object of exactly these parts ("...-N").
      auto info = HeadObject(key);
      const std::string suffix = "-" + std::to_string(parts.size()) + "\"";
      if (info.ok() && info->etag.size() > suffix.size() &&
          info->etag.compare(info->etag.size() - suffix.size(), suffix.size(), suffix) == 0) {
        spdlog::warn(
            "s3 multipart upload completed by an earlier attempt bucket={} key={} upload_id={} "
            "etag={}",
            config().bucket, call.key, upload_id, info->etag);
        return info->etag;
      }
    }
    return r.status();
  }

  Status AbortMultipartUpload(std::string_view key, std::string_view upload_id) override {
    BERTH_ASSIGN_OR_RETURN(Call call, Object(http::verb::delete_, "AbortMultipartUpload", key));
    if (upload_id.empty()) return Status::InvalidArgument("AbortMultipartUpload: empty upload id");
    call.query = {{"uploadId", std::string(upload_id)}};
    call.upload_id = upload_id;
    int attempts = 0;
    auto r = core_->Execute(call, /*stream=*/false, &attempts);
    // Gone on a retry: the lost first attempt aborted it.
    if (!r.ok() && r.status().Is(Code::kUploadUnknown) && attempts > 1) return Status::Ok();
    return r.status();
  }

  Result<ListMultipartUploadsPage> ListMultipartUploads(std::string_view prefix,
                                                        std::string_view key_marker,
                                                        std::string_view upload_id_marker,
                                                        int max_uploads) override {
    if (max_uploads < 1 || max_uploads > 1000) {
      return Status::InvalidArgument("ListMultipartUploads: max_uploads must be 1 to 1000");
    }
    Call call = Bucket(http::verb::get, "ListMultipartUploads");
    call.query = {
        {"uploads", ""}, {"max-uploads", std::to_string(max_uploads)}, {"encoding-type", "url"}};
    const std::string full_prefix = config().prefix + std::string(prefix);
    if (!full_prefix.empty()) call.query.emplace_back("prefix", full_prefix);
    if (!key_marker.empty()) {
      call.query.emplace_back("key-marker", std::string(key_marker));
      if (!upload_id_marker.empty()) {
        call.query.emplace_back("upload-id-marker", std::string(upload_id_marker));
      }
    }
    BERTH_ASSIGN_OR_RETURN(Response r, Do(std::move(call)));
    return ParseListMultipartUploads(r.body, config().prefix);
  }

  Result<ListPartsPage> ListParts(std::string_view key, std::string_view upload_id,
                                  int part_number_marker, int max_parts) override {
    if (max_parts < 1 || max_parts > 1000) {
      return Status::InvalidArgument("ListParts: max_parts must be 1 to 1000");
    }
    BERTH_ASSIGN_OR_RETURN(Call call, Object(http::verb::get, "ListParts", key));
    if (upload_id.empty()) return Status::InvalidArgument("ListParts: empty upload id");
    call.query = {{"uploadId", std::string(upload_id)}, {"max-parts", std::to_string(max_parts)}};
    if (part_number_marker > 0) {
      call.query.emplace_back("part-number-marker", std::to_string(part_number_marker));
    }
    call.upload_id = upload_id;
    BERTH_ASSIGN_OR_RETURN(Response r, Do(std::move(call)));
    return ParseListParts(r.body);
  }

  Result<std::string> PresignGetObject(std::string_view key,
                                       std::chrono::seconds expires) override {
    if (key.empty()) return Status::InvalidArgument("PresignGetObject: empty key");
    return PresignS3Url(core_->endpoint(), core_->credentials(), config().region, "GET",
                        config().prefix + std::string(key), expires.count(), core_->NowSeconds());
  }

 private:
  Result<Response> Do(Call call) { return core_->Execute(call, /*stream=*/false); }

  Call Bucket(http::verb method, std::string_view op) const {
    Call call;
    call.method = method;
    call.op = op;
    return call;
  }

  Result<Call> Object(http::verb method, std::string_view op, std::string_view key) const {
    if (key.empty()) return Status::InvalidArgument(std::string(op) + ": empty object key");
    Call call = Bucket(method, op);
    call.key = config().prefix + std::string(key);
    return call;
  }

  Result<Call> Part(http::verb method, std::string_view op, std::string_view key,
                    std::string_view upload_id, int part_number) const {
    if (part_number < 1 || part_number > 10000) {
      return Status::InvalidArgument(std::string(op) + ": part number must be 1 to 10000, not " +
                                     std::to_string(part_number));
    }
    if (upload_id.empty()) return Status::InvalidArgument(std::string(op) + ": empty upload id");
    BERTH_ASSIGN_OR_RETURN(Call call, Object(method, op, key));
    call.query = {{"partNumber", std::to_string(part_number)},
                  {"uploadId", std::string(upload_id)}};
    call.upload_id = upload_id;
    return call;
  }

  std::string CopySource(std::string_view source_key) const {
    return "/" + config().bucket + "/" +
           auth::UriEncode(config().prefix + std::string(source_key), /*keep_slash=*/true);
  }

  Status Missing(std::string_view op, std::string_view key, std::string_view header) const {
    return Status::Internal(std::string(op) + " " + config().prefix + std::string(key) +
                            ": object store " + core_->endpoint().display + " sent no " +
                            std::string(header) + " header");
  }

  static std::string Md5Base64(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr) != 1) {
      spdlog::critical("openssl md5 failed");
      std::abort();
    }
    return Base64Encode(std::string_view(reinterpret_cast<const char*>(md), len));
  }

  const std::shared_ptr<Core> core_;
};

}  // namespace

Result<std::unique_ptr<S3Client>> S3Client::Create(S3Config config, S3Credentials credentials,
                                                   S3ClientHooks hooks) {
  BERTH_ASSIGN_OR_RETURN(S3Endpoint endpoint, ResolveEndpoint(config));
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return Status::InvalidArgument("S3 client: credentials need an access key id and a secret");
  }
  if (config.max_retries < 0 || config.connect_timeout.count() <= 0 ||
      config.io_timeout.count() <= 0 || config.retry_base_delay.count() < 0 ||
      config.retry_max_delay.count() < 0) {
    return Status::InvalidArgument(
        "S3 client: max_retries must be >= 0 and timeouts and delays positive");
  }
  if (config.region.empty()) return Status::InvalidArgument("S3 client: region is empty");
  if (!hooks.clock) hooks.clock = &Clock::Real();
  if (!hooks.sleep) hooks.sleep = [](milliseconds d) { std::this_thread::sleep_for(d); };

  std::unique_ptr<ssl::context> tls;
  if (endpoint.tls) {
    try {
      tls = std::make_unique<ssl::context>(ssl::context::tls_client);
    } catch (const std::exception& e) {
      return Status::Internal(std::string("S3 client: cannot create a TLS context: ") + e.what());
    }
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    error_code ec;
    if (config.verify_tls) {
      tls->set_verify_mode(ssl::verify_peer, ec);
      if (!config.ca_file.empty()) {
        tls->load_verify_file(config.ca_file, ec);
        if (ec) {
          return Status::FailedPrecondition("cannot load the object store CA file " +
                                            config.ca_file + ": " + ec.message());
        }
      } else {
        tls->set_default_verify_paths(ec);
      }
    } else {
      tls->set_verify_mode(ssl::verify_none, ec);
    }
  }
  auto core = std::make_shared<Core>(config, std::move(endpoint), std::move(credentials),
                                     std::move(hooks), std::move(tls));
  return std::unique_ptr<S3Client>(
      std::make_unique<S3ClientImpl>(std::move(config), std::move(core)));
}

}  // namespace berth::storage::s3
