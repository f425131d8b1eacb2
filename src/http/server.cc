#include "http/server.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace berth::http {
namespace {

namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::use_awaitable;
using namespace std::chrono_literals;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Request ids only have to be unique (they tie a response to its log lines), not
// secret: each thread walks a SplitMix64 sequence from a random seed rather than asking
// the CSPRNG on every request, which cost ~2% of a cached manifest GET.
std::string NewRequestId() {
  thread_local uint64_t state = [] {
    uint64_t seed = 0;
    RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed);
    return seed;
  }();
  uint64_t x = (state += 0x9e3779b97f4a7c15ULL);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, x >>= 4) s[i] = kHex[x & 15];
  return s;
}

// Per-connection state visible to the shutdown logic.
struct Connection {
  asio::any_io_executor executor;
  std::function<void()> cancel;  // closes the socket; run on `executor`
  std::atomic<bool> idle{true};
};

template <class Stream>
class ParserBodyReader final : public BodyReader {
 public:
  ParserBodyReader(Stream& stream, beast::flat_buffer& buffer,
                   bhttp::request_parser<bhttp::buffer_body>& parser, int read_timeout_seconds)
      : stream_(stream), buffer_(buffer), parser_(parser), timeout_(read_timeout_seconds) {
    auto& req = parser_.get();
    auto expect = req.find(bhttp::field::expect);
    need_continue_ = expect != req.end() && beast::iequals(expect->value(), "100-continue");
    if (parser_.content_length() && !parser_.chunked()) {
      content_length_ = *parser_.content_length();
      remaining_ = *content_length_;
    }
  }

  asio::awaitable<Result<size_t>> Read(std::span<char> out) override {
    if (done() || out.empty()) co_return size_t{0};
    if (need_continue_) {
      // Solicit the body only when a handler actually wants it.
      need_continue_ = false;
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(timeout_));
      auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(kContinue), kTuple);
      if (ec) co_return Fail("writing 100 Continue: " + ec.message());
    }
    if (content_length_) {
      // Fixed-length body: bypass the parser and read straight into the caller's buffer
      // (no intermediate copy, reads as large as the buffer).
      size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), remaining_));
      size_t got = 0;
      if (buffer_.size() > 0) {
        got = asio::buffer_copy(asio::buffer(out.data(), want), buffer_.data());
        buffer_.consume(got);
      } else {
        beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(timeout_));
        auto [ec, n] =
            co_await stream_.async_read_some(asio::buffer(out.data(), want), kTuple);
        if (ec) co_return Fail("reading request body: " + ec.message());
        got = n;
      }
      remaining_ -= got;
      read_ += got;
      co_return got;
    }
    while (true) {  // chunked transfer encoding: let the parser decode it
      auto& body = parser_.get().body();
      body.data = out.data();
      body.size = out.size();
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(timeout_));
      auto [ec, n] = co_await bhttp::async_read(stream_, buffer_, parser_, kTuple);
      if (ec == bhttp::error::need_buffer) ec = {};
      size_t got = out.size() - parser_.get().body().size;
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_chunk).category()) {
        // The client's framing is broken (a bad chunk size or extension, a body cut off
        // before its last chunk): it deserves an answer, unlike a vanished client.
        malformed_ = ec == bhttp::error::partial_message
                         ? "the request body ended before its last chunk"
                         : "malformed chunked request body: " + ec.message();
      }
      if (ec) co_return Fail("reading request body: " + ec.message());
      read_ += got;
      if (got > 0 || parser_.is_done()) co_return got;
    }
  }

  std::optional<uint64_t> content_length() const override { return content_length_; }
  bool done() const override { return content_length_ ? remaining_ == 0 : parser_.is_done(); }
  uint64_t bytes_read() const override { return read_; }
  bool failed() const { return failed_; }
  // Why the chunked body is malformed; empty when it is not.
  const std::string& malformed() const { return malformed_; }

 private:
  Stream& stream_;
  beast::flat_buffer& buffer_;
  bhttp::request_parser<bhttp::buffer_body>& parser_;
  int timeout_;
  bool need_continue_ = false;
  bool failed_ = false;
  std::string malformed_;
  std::optional<uint64_t> content_length_;
  uint64_t remaining_ = 0;
  uint64_t read_ = 0;

  Status Fail(std::string message) {
    failed_ = true;
    return Status(Code::kAborted, std::move(message));
  }
};

template <class Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, beast::tcp_stream>;

}  // namespace

struct Server::Impl {
  ServerOptions options;
  Handler handler;
  metrics::Metrics& metrics;
  // One io_context per I/O thread, each run by exactly that thread; a connection lives
  // on one of them (round robin) for its whole life. With one shared io_context a
  // connection's handlers hopped between threads, and every completion posted back from
  // the blocking pool woke an idle thread through the scheduler's condition variable:
  // ~19 futex calls per MiB uploaded, 10-15% of the server's CPU. contexts[0] also runs
  // the acceptor, timers, signals and shutdown.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  asio::io_context& ioc;
  size_t next_context = 0;  // used only by the accept loop
  tcp::acceptor acceptor{ioc};
  std::unique_ptr<ssl::context> tls;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::set<std::shared_ptr<Connection>> connections;  // guarded by mu
  std::vector<std::unique_ptr<asio::steady_timer>> timers;

  Impl(ServerOptions o, Handler h, metrics::Metrics& m)
      : options(std::move(o)),
        handler(std::move(h)),
        metrics(m),
        contexts(MakeContexts(options.io_threads)),
        ioc(*contexts[0]) {}

  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(int threads) {
    std::vector<std::unique_ptr<asio::io_context>> v;
    for (int i = 0; i < std::max(1, threads); ++i) {
      v.push_back(std::make_unique<asio::io_context>(1));  // one thread runs it
    }
    return v;
  }

  asio::io_context& NextContext() {
    asio::io_context& c = *contexts[next_context];
    next_context = (next_context + 1) % contexts.size();
    return c;
  }

  asio::awaitable<void> AcceptLoop() {
    while (!stopping) {
      auto [ec, sock] = co_await acceptor.async_accept(NextContext(), kTuple);
      if (ec) {
        if (stopping || ec == asio::error::operation_aborted) break;
        spdlog::warn("accept failed error=\"{}\"", ec.message());
        // EMFILE and friends: back off instead of spinning.
        asio::steady_timer t(ioc, 50ms);
        co_await t.async_wait(kTuple);
        continue;
      }
      auto ex = sock.get_executor();
      asio::co_spawn(ex, Accepted(std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> Accepted(tcp::socket sock) {
    metrics.ConnectionOpened();
    auto conn = std::make_shared<Connection>();
    conn->executor = sock.get_executor();
    {
      std::lock_guard lock(mu);
      connections.insert(conn);
    }
    try {
      co_await Sniff(std::move(sock), conn);
    } catch (const std::exception& e) {
      spdlog::error("connection failed error=\"{}\"", e.what());
    }
    {
      std::lock_guard lock(mu);
      connections.erase(conn);
    }
    metrics.ConnectionClosed();
  }

  // Peeks at the first byte: 0x16 is a TLS handshake record.
  asio::awaitable<void> Sniff(tcp::socket sock, std::shared_ptr<Connection> conn) {
    beast::tcp_stream stream(std::move(sock));
    conn->cancel = [&stream] {
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream.socket().close(ec);
    };
    // Runs on this connection's thread before the streams die, so a cancel posted by
    // Shutdown() never touches a destroyed stream.
    struct ClearCancel {
      Connection& c;
      ~ClearCancel() { c.cancel = nullptr; }
    } clear_cancel{*conn};
    if (stopping) co_return;
    // The first request's headers must be complete by this deadline, however slowly
    // they trickle in (a raw wait on the socket does not honour the stream's timeout).
    auto header_deadline = std::chrono::steady_clock::now() +
                           std::chrono::seconds(options.header_timeout_seconds);
    asio::steady_timer deadline_timer(stream.get_executor(), header_deadline);
    unsigned char first = 0;
    while (true) {
      using namespace asio::experimental::awaitable_operators;
      auto which = co_await (stream.socket().async_wait(tcp::socket::wait_read, kTuple) ||
                             deadline_timer.async_wait(kTuple));
      if (which.index() == 1 || std::get<0>(std::get<0>(which))) co_return;
      ssize_t n = ::recv(stream.socket().native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 1) break;
      if (n == 0) co_return;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) co_return;
    }
    if (first != 0x16) {
      co_await Serve(stream, *conn, header_deadline);
      co_return;
    }
    if (!tls) {
      // A TLS ClientHello on the plain port: answer in HTTP so that clients with an
      // "insecure registry" setting (docker) fall back to plain HTTP.
      static constexpr std::string_view kReply =
          "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
          "Content-Length: 52\r\n\r\nClient sent an HTTPS request to a plain HTTP server\n";
      stream.expires_after(5s);
      co_await asio::async_write(stream, asio::buffer(kReply), kTuple);
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> tls_stream(std::move(stream), *tls);
    conn->cancel = [&tls_stream] {
      beast::error_code ec;
      beast::get_lowest_layer(tls_stream).socket().close(ec);
    };
    ClearCancel clear_tls_cancel{*conn};
    beast::get_lowest_layer(tls_stream).expires_after(30s);
    auto [ec] = co_await tls_stream.async_handshake(ssl::stream_base::server, kTuple);
    if (ec) {
      spdlog::debug("tls handshake failed error=\"{}\"", ec.message());
      co_return;
    }
    co_await Serve(tls_stream, *conn, header_deadline);
    beast::get_lowest_layer(tls_stream).expires_after(5s);
    co_await tls_stream.async_shutdown(kTuple);
  }

  // The request target as the access log shows it: secrets in the path redacted.
  std::string_view LoggedTarget(std::string_view target) const {
    for (const std::string& prefix : options.redacted_path_prefixes) {
      if (target.starts_with(prefix)) {
        thread_local std::string redacted;
        redacted = prefix + "<redacted>";
        return redacted;
      }
    }
    return target.substr(0, 512);
  }

  template <class Stream>
  asio::awaitable<void> Serve(Stream& stream, Connection& conn,
                              std::chrono::steady_clock::time_point header_deadline) {
    beast::flat_buffer buffer;
    std::string remote;
    {
      beast::error_code ec;
      auto ep = beast::get_lowest_layer(stream).socket().remote_endpoint(ec);
      if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    bool first_request = true;
    while (!stopping) {
      bhttp::request_parser<bhttp::buffer_body> parser;
      parser.header_limit(options.max_header_bytes);
      parser.body_limit(boost::none);  // handlers bound what they buffer
      conn.idle = true;
      if (stopping) break;
      auto idle_deadline = std::chrono::steady_clock::now() +
                           std::chrono::seconds(options.idle_timeout_seconds);
      // The first request: whichever comes first (a short idle timeout still applies).
      beast::get_lowest_layer(stream).expires_at(
          first_request ? std::min(header_deadline, idle_deadline) : idle_deadline);
      first_request = false;
      auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
      conn.idle = false;
      if (ec) {
        if (ec == bhttp::error::header_limit) {
          co_await WriteSimple(stream, bhttp::status::request_header_fields_too_large,
                               "request headers exceed the limit of " +
                                   std::to_string(options.max_header_bytes) + " bytes");
        } else if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
                   ec != asio::error::operation_aborted && ec != asio::error::eof &&
                   ec != asio::error::connection_reset && n > 0) {
          co_await WriteSimple(stream, bhttp::status::bad_request,
                               "malformed HTTP request: " + ec.message());
        }
        break;
      }
      auto start = std::chrono::steady_clock::now();
      auto& hdr = parser.get();
      ParserBodyReader<Stream> body(stream, buffer, parser, options.read_timeout_seconds);
      Request req;
      req.method = hdr.method();
      req.method_string = hdr.method_string();
      req.target = hdr.target();
      std::string_view target = req.target;
      auto qpos = target.find('?');
      auto path = DecodePath(target.substr(0, qpos));
      if (qpos != std::string_view::npos) req.query = ParseQuery(target.substr(qpos + 1));
      req.headers = &hdr.base();
      req.body = &body;
      req.request_id = NewRequestId();
      req.remote = remote;

      if (path) req.path = std::move(*path);

      Response res;
      if (auto framing = CheckRequestFraming(hdr.base(), hdr.version())) {
        // Where this request ends is ambiguous: nothing after it on this connection
        // can be trusted to be a request of its own.
        res = ProtocolError(&req, framing->status, framing->message);
        res.close = true;
      } else if (!path) {
        res = ProtocolError(&req, bhttp::status::bad_request,
                            "malformed percent-encoding in the request path");
      } else {
        try {
          res = co_await handler(req);
        } catch (const std::exception& e) {
          spdlog::error("handler threw request_id={} error=\"{}\"", req.request_id, e.what());
          res = Response();
          res.status = bhttp::status::internal_server_error;
          res.headers.set(bhttp::field::content_type, "application/json");
          res.body =
              R"({"errors":[{"code":"UNKNOWN","message":"internal error; see the server log","detail":")" +
              req.request_id + "\"}]}";
        }
      }
      // Whatever the handler made of a malformed chunked body, the client is told what
      // is wrong with it; its framing is lost, so the connection closes.
      bool malformed = !body.malformed().empty();
      if (malformed) {
        res = ProtocolError(&req, bhttp::status::bad_request, body.malformed());
        res.close = true;
      }
      // A body the handler did not read (an error before it needed it) can't be skipped
      // cheaply and safely: close the connection after answering.
      bool keep_alive =
          hdr.keep_alive() && !res.close && !stopping && body.done() && !body.failed();
      res.headers.set("X-Request-Id", req.request_id);
      uint64_t sent = 0;
      bool ok = true;
      if (!body.failed() || malformed) {
        auto wr = co_await WriteResponse(stream, req, res, keep_alive);
        ok = wr.ok();
        if (ok) sent = *wr;
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      int status = body.failed() && !malformed ? 499 : static_cast<int>(res.status);
      // to_string(verb) is a static string; unknown verbs share one series.
      metrics.ObserveRequest(req.route, bhttp::to_string(req.method), status, secs,
                             body.bytes_read(), sent);
      if (options.access_log) {
        spdlog::info(
            "request request_id={} remote={} method={} path=\"{}\" route={} status={} "
            "bytes_in={} bytes_out={} duration_ms={:.3f} user_agent=\"{}\"",
            req.request_id, remote, req.method_string, LoggedTarget(req.target), req.route,
            status, body.bytes_read(), sent, secs * 1000, req.Header(bhttp::field::user_agent));
      }
      if (!ok || !keep_alive) break;
    }
    beast::error_code ec;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // An error the server answers by itself, in the API's error format when it has one.
  Response ProtocolError(const Request* req, bhttp::status status, std::string message) const {
    if (options.error_response) {
      return options.error_response(req, static_cast<int>(status), message);
    }
    Response res;
    res.status = status;
    res.headers.set(bhttp::field::content_type, "text/plain");
    res.body = std::move(message) + "\n";
    return res;
  }

  template <class Stream>
  asio::awaitable<void> WriteSimple(Stream& stream, bhttp::status status, std::string message) {
    Response res = ProtocolError(nullptr, status, std::move(message));
    bhttp::response<bhttp::string_body> msg{std::piecewise_construct,
                                            std::make_tuple(std::move(res.body)),
                                            std::make_tuple(std::move(res.headers))};
    msg.result(res.status);
    msg.version(11);
    msg.set(bhttp::field::connection, "close");
    msg.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(5s);
    co_await bhttp::async_write(stream, msg, kTuple);
  }

  template <class Stream>
  asio::awaitable<Result<uint64_t>> WriteResponse(Stream& stream, const Request& req,
                                                  Response& res, bool keep_alive) {
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(std::chrono::seconds(options.idle_timeout_seconds));
    bool head = req.method == bhttp::verb::head;
    // The handler's header fields move into the message (no copy of each field).
    if (res.file || res.head_length) {
      bhttp::response<bhttp::empty_body> msg{std::piecewise_construct, std::make_tuple(),
                                             std::make_tuple(std::move(res.headers))};
      msg.result(res.status);
      msg.version(11);
      uint64_t length = res.file ? res.file->length : *res.head_length;
      msg.content_length(length);
      msg.keep_alive(keep_alive);
      bhttp::response_serializer<bhttp::empty_body> sr{msg};
      auto [ec, n] = co_await bhttp::async_write_header(stream, sr, kTuple);
      if (ec) co_return Status(Code::kAborted, ec.message());
      if (head || !res.file) co_return uint64_t{0};
      co_return co_await SendFile(stream, *res.file);
    }
    uint64_t size = res.body.size();
    bhttp::response<bhttp::string_body> msg{std::piecewise_construct,
                                            std::make_tuple(std::move(res.body)),
                                            std::make_tuple(std::move(res.headers))};
    msg.result(res.status);
    msg.version(11);
    msg.keep_alive(keep_alive);
    msg.prepare_payload();
    if (head) msg.body().clear();
    auto [ec, n] = co_await bhttp::async_write(stream, msg, kTuple);
    if (ec) co_return Status(Code::kAborted, ec.message());
    co_return head ? 0 : size;
  }

  template <class Stream>
  asio::awaitable<Result<uint64_t>> SendFile(Stream& stream, FileBody& file) {
    auto& lowest = beast::get_lowest_layer(stream);
    int fd = file.reader->native_fd();
    if constexpr (!kIsTls<Stream>) {
      if (fd >= 0) {
        // Zero-copy: the kernel moves page-cache pages to the socket.
        auto& sock = lowest.socket();
        sock.native_non_blocking(true);
        off_t off = static_cast<off_t>(file.offset);
        uint64_t remaining = file.length;
        asio::steady_timer timer(sock.get_executor());
        while (remaining > 0) {
          size_t chunk = static_cast<size_t>(std::min<uint64_t>(remaining, 1ULL << 30));
          ssize_t n = ::sendfile(sock.native_handle(), fd, &off, chunk);
          if (n > 0) {
            remaining -= static_cast<uint64_t>(n);
            continue;
          }
          if (n == 0) co_return Status::Corruption("blob shorter than its recorded size");
          if (errno == EINTR) continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK) {
            co_return Status::FromErrno("sendfile", errno);
          }
          using namespace asio::experimental::awaitable_operators;
          timer.expires_after(std::chrono::seconds(options.idle_timeout_seconds));
          auto which = co_await (sock.async_wait(tcp::socket::wait_write, kTuple) ||
                                 timer.async_wait(kTuple));
          if (which.index() == 1) co_return Status(Code::kAborted, "client stopped reading");
        }
        co_return file.length;
      }
    }
    std::vector<char> buf(256 * 1024);
    uint64_t off = file.offset;
    uint64_t remaining = file.length;
    while (remaining > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, buf.size()));
      // A file (TLS, or a reader without a descriptor) reads from the page cache
      // inline; anything else may wait on the network and goes to the pool.
      auto read = [&file, &buf, off, want]() -> Result<size_t> {
        return file.reader->ReadAt(off, std::span<char>(buf.data(), want));
      };
      auto n = fd < 0 && options.run_blocking_read ? co_await options.run_blocking_read(read)
                                                   : read();
      if (!n.ok()) co_return n.status();
      if (*n == 0) co_return Status::Corruption("blob shorter than its recorded size");
      lowest.expires_after(std::chrono::seconds(options.idle_timeout_seconds));
      auto [ec, w] = co_await asio::async_write(stream, asio::buffer(buf.data(), *n), kTuple);
      if (ec) co_return Status(Code::kAborted, ec.message());
      off += *n;
      remaining -= *n;
    }
    co_return file.length;
  }
};

Server::Server(ServerOptions options, Handler handler, metrics::Metrics& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), metrics)) {}

Server::~Server() = default;

asio::any_io_executor Server::executor() { return impl_->ioc.get_executor(); }

Result<uint16_t> Server::Listen() {
  auto& o = impl_->options;
  if (!o.tls_cert.empty()) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    beast::error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx->use_certificate_chain_file(o.tls_cert, ec);
    if (ec) return Status::InvalidArgument("tls.cert " + o.tls_cert + ": " + ec.message());
    ctx->use_private_key_file(o.tls_key, ssl::context::pem, ec);
    if (ec) return Status::InvalidArgument("tls.key " + o.tls_key + ": " + ec.message());
    impl_->tls = std::move(ctx);
  }
  beast::error_code ec;
  auto addr = asio::ip::make_address(o.host, ec);
  if (ec) return Status::InvalidArgument("listen: invalid address '" + o.host + "'");
  tcp::endpoint ep(addr, o.port);
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                               ": " + ec.message());
  }
  return acc.local_endpoint().port();
}

void Server::Every(int64_t interval_seconds, std::function<asio::awaitable<void>()> fn) {
  auto timer = std::make_unique<asio::steady_timer>(impl_->ioc);
  asio::steady_timer* t = timer.get();
  impl_->timers.push_back(std::move(timer));
  asio::co_spawn(
      impl_->ioc,
      [this, t, interval_seconds, fn = std::move(fn)]() -> asio::awaitable<void> {
        while (!impl_->stopping) {
          t->expires_after(std::chrono::seconds(interval_seconds));
          auto [ec] = co_await t->async_wait(kTuple);
          if (ec || impl_->stopping) break;
          try {
            co_await fn();
          } catch (const std::exception& e) {
            spdlog::error("periodic task failed error=\"{}\"", e.what());
          }
        }
      },
      asio::detached);
}

void Server::Run() {
  asio::co_spawn(impl_->ioc, impl_->AcceptLoop(), asio::detached);
  asio::signal_set signals(impl_->ioc, SIGINT, SIGTERM);
  signals.async_wait([this](const beast::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("shutting down signal={}", sig);
    Shutdown();
  });
  // The other contexts have no work of their own between connections: keep them
  // running until shutdown stops them.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->contexts.size(); ++i) {
    asio::io_context& c = *impl_->contexts[i];
    guards.push_back(asio::make_work_guard(c));
    threads.emplace_back([&c] { c.run(); });
  }
  impl_->ioc.run();
  for (auto& c : impl_->contexts) c->stop();
  for (auto& t : threads) t.join();
}

void Server::Shutdown() {
  asio::post(impl_->ioc, [this] {
    if (impl_->stopping.exchange(true)) return;
    beast::error_code ec;
    impl_->acceptor.close(ec);
    for (auto& t : impl_->timers) t->cancel();
    asio::co_spawn(
        impl_->ioc,
        [this]() -> asio::awaitable<void> {
          auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::seconds(impl_->options.shutdown_grace_seconds);
          asio::steady_timer t(impl_->ioc);
          while (true) {
            std::vector<std::shared_ptr<Connection>> open;
            {
              std::lock_guard lock(impl_->mu);
              open.assign(impl_->connections.begin(), impl_->connections.end());
            }
            bool force = std::chrono::steady_clock::now() > deadline;
            for (auto& c : open) {
              // Idle keep-alive connections close now; busy ones finish their request.
              if (c->idle || force) {
                asio::post(c->executor, [c] {
                  if (c->cancel) c->cancel();
                });
              }
            }
            if (open.empty()) break;
            t.expires_after(20ms);
            co_await t.async_wait(kTuple);
          }
          impl_->ioc.stop();
        },
        asio::detached);
  });
}

}  // namespace berth::http
