#include "bench/http_client.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <chrono>

namespace berth::bench {
namespace {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// Body scratch buffer per connection: large enough for few syscalls per GiB.
constexpr size_t kIoChunk = 256 * 1024;
constexpr uint32_t kMaxResponseHeader = 64 * 1024;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsStaleError(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == bhttp::error::end_of_stream;
}

}  // namespace

// ---------------------------------------------------------------------------- Endpoint

Result<Endpoint> Endpoint::Parse(std::string_view url) {
  auto u = boost::urls::parse_uri(url);
  if (!u) return Status::InvalidArgument("not a URL: '" + std::string(url) + "'");
  Endpoint ep;
  std::string scheme = Lower(u->scheme());
  if (scheme == "https") {
    ep.tls = true;
  } else if (scheme != "http") {
    return Status::InvalidArgument("URL scheme must be http or https: '" + std::string(url) + "'");
  }
  ep.host = std::string(u->encoded_host_address());
  if (ep.host.size() >= 2 && ep.host.front() == '[')
    ep.host = ep.host.substr(1, ep.host.size() - 2);
  if (ep.host.empty())
    return Status::InvalidArgument("URL has no host: '" + std::string(url) + "'");
  ep.port = u->has_port() ? std::string(u->port()) : (ep.tls ? "443" : "80");
  ep.authority = std::string(u->encoded_host_and_port());
  return ep;
}

Status Endpoint::Resolve() {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto results = resolver.resolve(host, port, ec);
  if (ec) return Status::Unavailable("cannot resolve " + host + ":" + port + ": " + ec.message());
  addresses.clear();
  for (const auto& r : results) addresses.push_back(r.endpoint());
  if (addresses.empty()) return Status::Unavailable("no address for " + host);
  return {};
}

// ----------------------------------------------------------------------- bodies

ContentSource::ContentSource(uint64_t seed, uint64_t blob_size, uint64_t begin, uint64_t end,
                             oci::Hasher* hasher)
    : content_(seed, blob_size), begin_(begin), end_(std::min(end, blob_size)), hasher_(hasher) {
  content_.Seek(begin_);
}

size_t ContentSource::Read(std::span<char> out) {
  uint64_t pos = content_.offset();
  if (pos >= end_) return 0;
  size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), end_ - pos));
  size_t n = content_.Read(out.first(want));
  if (hasher_ != nullptr && pos + n > hasher_->size()) {
    // Hash only bytes not hashed before (a rewound retry re-sends, not re-hashes).
    uint64_t skip = hasher_->size() > pos ? hasher_->size() - pos : 0;
    hasher_->Update(std::span<const char>(out.data() + skip, n - skip));
  }
  return n;
}

HashingSink::HashingSink(bool hash, oci::DigestAlgorithm alg) {
  if (hash) hasher_ = std::make_unique<oci::Hasher>(alg);
}

void HashingSink::Write(std::span<const char> data) {
  bytes_ += data.size();
  if (hasher_) hasher_->Update(data);
}

void ClientRequest::AddHeader(std::string_view name, std::string_view value) {
  headers += name;
  headers += ": ";
  headers += value;
  headers += "\r\n";
}

std::string_view ClientResponse::Header(std::string_view name) const {
  auto it = headers.find(name);
  if (it == headers.end()) return {};
  auto v = it->value();
  return std::string_view(v.data(), v.size());
}

// ------------------------------------------------------------------------- auth


std::optional<Challenge> ParseChallenge(std::string_view h) {
  auto skip_ws = [&] {
    while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  };
  skip_ws();
  size_t sp = 0;
  while (sp < h.size() && h[sp] != ' ' && h[sp] != '\t') ++sp;
  if (sp == 0) return std::nullopt;
  Challenge c;
  c.scheme = Lower(h.substr(0, sp));
  h.remove_prefix(sp);
  while (true) {
    skip_ws();
    while (!h.empty() && h.front() == ',') {
      h.remove_prefix(1);
      skip_ws();
    }
    if (h.empty()) break;
    auto eq = h.find('=');
    if (eq == std::string_view::npos) break;  // token68 (unused by registries)
    std::string key = Lower(h.substr(0, eq));
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    h.remove_prefix(eq + 1);
    skip_ws();
    std::string value;
    if (!h.empty() && h.front() == '"') {
      h.remove_prefix(1);
      while (!h.empty() && h.front() != '"') {
        if (h.front() == '\\' && h.size() > 1) h.remove_prefix(1);
        value += h.front();
        h.remove_prefix(1);
      }
      if (h.empty()) return std::nullopt;  // unterminated quote
      h.remove_prefix(1);
    } else {
      size_t end = h.find(',');
      value = std::string(h.substr(0, end));
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
      h.remove_prefix(end == std::string_view::npos ? h.size() : end);
    }
    c.params[key] = value;
  }
  return c;
}

Authenticator::Authenticator(Credentials creds, asio::ssl::context* tls, int timeout_seconds)
    : creds_(std::move(creds)), tls_(tls), timeout_seconds_(timeout_seconds) {
  if (!creds_.user.empty())
    basic_value_ = "Basic " + Base64Encode(creds_.user + ":" + creds_.password);
}

std::string Authenticator::HeaderFor(std::string_view scope) const {
  if (!creds_.token.empty()) return "Bearer " + creds_.token;
  std::lock_guard lock(mu_);
  if (use_basic_) return basic_value_;
  auto it = tokens_.find(scope);
  if (it != tokens_.end()) return "Bearer " + it->second;
  return {};
}

uint64_t Authenticator::token_fetches() const {
  std::lock_guard lock(mu_);
  return token_fetches_;
}

asio::awaitable<Status> Authenticator::OnChallenge(std::string_view www_authenticate,
                                                   std::string_view scope, bool rejected) {
  auto ch = ParseChallenge(www_authenticate);
  if (!ch) {
    co_return Status(Code::kUnauthorized,
                     "unparseable WWW-Authenticate header: " + std::string(www_authenticate));
  }
  if (ch->scheme == "basic") {
    if (creds_.user.empty()) {
      co_return Status(Code::kUnauthorized, "the registry asks for Basic credentials (" +
                                                std::string(www_authenticate) +
                                                "); pass --user and --password");
    }
    std::lock_guard lock(mu_);
    if (rejected && use_basic_) {
      co_return Status(Code::kUnauthorized,
                       "the registry refused the Basic credentials of user '" + creds_.user + "'");
    }
    use_basic_ = true;
    co_return Status();
  }
  if (ch->scheme != "bearer") {
    co_return Status(Code::kUnauthorized, "unsupported auth scheme in WWW-Authenticate: " +
                                              std::string(www_authenticate));
  }
  if (!creds_.token.empty()) {
    co_return Status(Code::kUnauthorized, "the registry refused the --token given");
  }
  auto realm_it = ch->params.find("realm");
  if (realm_it == ch->params.end() || realm_it->second.empty()) {
    co_return Status(Code::kUnauthorized,
                     "Bearer challenge without a realm: " + std::string(www_authenticate));
  }
  auto realm = Endpoint::Parse(realm_it->second);
  if (!realm.ok()) co_return realm.status();
  if (Status st = realm->Resolve(); !st.ok()) co_return st;
  auto target_url = boost::urls::parse_uri(realm_it->second);
  std::string target = target_url ? std::string(target_url->encoded_path()) : "/";
  if (target.empty()) target = "/";
  if (target_url && target_url->has_query())
    target += "?" + std::string(target_url->encoded_query());
  if (auto s = ch->params.find("service"); s != ch->params.end()) {
    target = WithQuery(std::move(target), "service", s->second);
  }
  std::string want_scope;
  if (auto s = ch->params.find("scope"); s != ch->params.end()) {
    want_scope = s->second;
  } else if (!scope.empty()) {
    want_scope = "repository:" + std::string(scope) + ":pull,push";
  }
  // Several scopes are space-separated; each is its own parameter.
  for (size_t pos = 0; pos < want_scope.size();) {
    size_t sp = want_scope.find(' ', pos);
    std::string one =
        want_scope.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
    if (!one.empty()) target = WithQuery(std::move(target), "scope", one);
    pos = sp == std::string::npos ? want_scope.size() : sp + 1;
  }
  auto ex = co_await asio::this_coro::executor;
  Connection conn(ex, *realm, realm->tls ? tls_ : nullptr, timeout_seconds_);
  ClientRequest req;
  req.target = target;
  req.AddHeader("Accept", "application/json");
  auto res = co_await conn.RoundTrip(req, basic_value_, nullptr);
  if (!res.ok()) {
    co_return Status(Code::kUnauthorized,
                     "fetching a token from " + realm_it->second + ": " + res.status().message());
  }
  if (res->status != 200) {
    co_return Status(Code::kUnauthorized, "token endpoint " + realm_it->second + " answered " +
                                              std::to_string(res->status) + ": " +
                                              res->body.substr(0, 300));
  }
  boost::system::error_code ec;
  auto doc = boost::json::parse(res->body, ec);
  std::string token;
  if (!ec && doc.is_object()) {
    for (const char* key : {"token", "access_token"}) {
      if (auto* v = doc.as_object().if_contains(key);
          v && v->is_string() && !v->as_string().empty()) {
        token = std::string(v->as_string());
        break;
      }
    }
  }
  if (token.empty()) {
    co_return Status(Code::kUnauthorized,
                     "token endpoint " + realm_it->second +
                         " answered without a token: " + res->body.substr(0, 300));
  }
  std::lock_guard lock(mu_);
  tokens_[std::string(scope)] = std::move(token);
  ++token_fetches_;
  co_return Status();
}

// -------------------------------------------------------------------- Connection

struct Connection::Impl {
  asio::any_io_executor executor;
  const Endpoint& endpoint;
  asio::ssl::context* tls_ctx;
  std::chrono::seconds timeout;
  std::optional<beast::tcp_stream> tcp;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  std::string head;
  std::vector<char> scratch;  // allocated on first use: idle connections stay small
  uint64_t connects = 0;

  Impl(asio::any_io_executor ex, const Endpoint& ep, asio::ssl::context* ctx, int timeout_s)
      : executor(std::move(ex)), endpoint(ep), tls_ctx(ctx), timeout(timeout_s) {}

  bool open() const { return tcp.has_value() || tls.has_value(); }

  void Close() {
    beast::error_code ec;
    if (tcp) {
      tcp->socket().shutdown(tcp::socket::shutdown_both, ec);
      tcp->close();
      tcp.reset();
    }
    if (tls) {
      beast::get_lowest_layer(*tls).close();
      tls.reset();
    }
    buffer.clear();
  }

  std::span<char> Scratch(uint64_t want) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(std::max<uint64_t>(want, 1), kIoChunk));
    if (scratch.size() < n) scratch.resize(n);
    return std::span<char>(scratch.data(), n);
  }

  void BuildHead(const ClientRequest& req, std::string_view auth, uint64_t body_len) {
    head.clear();
    head += bhttp::to_string(req.method);
    head += ' ';
    head += req.target;
    head += " HTTP/1.1\r\nHost: ";
    head += endpoint.authority;
    head += "\r\nUser-Agent: berth-bench/0.1\r\n";
    if (!auth.empty()) {
      head += "Authorization: ";
      head += auth;
      head += "\r\n";
    }
    head += req.headers;
    bool has_body = req.source != nullptr || !req.body.empty();
    if (has_body || req.method == bhttp::verb::post || req.method == bhttp::verb::put ||
        req.method == bhttp::verb::patch) {
      head += "Content-Length: ";
      head += std::to_string(body_len);
      head += "\r\n";
    }
    head += "\r\n";
  }

  // The header and the first piece of the body in one write where that is safe.
  template <class Stream>
  asio::awaitable<beast::error_code> WriteHeadAndBody(Stream& s, asio::const_buffer body) {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      std::array<asio::const_buffer, 2> both{asio::buffer(head), body};
      auto [ec, w] = co_await asio::async_write(s, both, kTuple);
      co_return ec;
    } else {
      // Over beast::ssl_stream a two-buffer async_write completes after the first
      // buffer (its flat_stream writes a prefix and the SSL layer then reports 0 bytes
      // for the rest), silently dropping the body: write the pieces one by one.
      auto [ec, w] = co_await asio::async_write(s, asio::buffer(head), kTuple);
      if (ec || body.size() == 0) co_return ec;
      auto [ec2, w2] = co_await asio::async_write(s, body, kTuple);
      co_return ec2;
    }
  }

  template <class Stream>
  asio::awaitable<Result<ClientResponse>> Exchange(Stream& s, const ClientRequest& req,
                                                   std::string_view auth, BodySink* sink,
                                                   bool& stale) {
    auto& low = beast::get_lowest_layer(s);
    uint64_t body_len = req.source ? req.source->size() : req.body.size();
    BuildHead(req, auth, body_len);

    // ---- send
    beast::error_code wec;
    uint64_t sent_body = 0;
    low.expires_after(timeout);
    if (req.source != nullptr) {
      std::span<char> buf = Scratch(body_len);
      size_t n = req.source->Read(buf);
      wec = co_await WriteHeadAndBody(s, asio::const_buffer(buf.data(), n));
      if (!wec) sent_body += n;
      while (!wec && sent_body < body_len) {
        n = req.source->Read(buf);
        if (n == 0) break;
        low.expires_after(timeout);
        auto [ec2, w2] = co_await asio::async_write(s, asio::buffer(buf.data(), n), kTuple);
        wec = ec2;
        if (!ec2) sent_body += n;
      }
      if (!wec && sent_body != body_len) {
        co_return Status::Internal("body source produced " + std::to_string(sent_body) +
                                   " bytes, declared " + std::to_string(body_len));
      }
    } else {
      wec = co_await WriteHeadAndBody(s, asio::buffer(req.body));
    }
    if (wec == beast::error::timeout) {
      co_return Status(Code::kAborted,
                       "timed out sending the request (" + std::to_string(timeout.count()) + " s)");
    }
    bool write_failed = static_cast<bool>(wec);

    // ---- response header. After a failed write the server may still have answered
    // (401, 413) before closing: read what it said, briefly.
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.header_limit(kMaxResponseHeader);
    parser.body_limit(boost::none);
    if (req.method == bhttp::verb::head) parser.skip(true);
    low.expires_after(write_failed ? std::chrono::seconds(2) : timeout);
    auto [rec, rn] = co_await bhttp::async_read_header(s, buffer, parser, kTuple);
    if (rec) {
      if (write_failed) {
        stale = IsStaleError(wec) && sent_body == 0;
        co_return Status(Code::kUnavailable, "sending the request failed after " +
                                                 std::to_string(sent_body) +
                                                 " body bytes: " + wec.message());
      }
      if (IsStaleError(rec) && buffer.size() == 0 && !parser.got_some()) {
        stale = true;
        co_return Status(Code::kUnavailable, "the server closed the connection without answering");
      }
      if (rec == beast::error::timeout) {
        co_return Status(Code::kAborted, "timed out waiting for the response (" +
                                             std::to_string(timeout.count()) + " s)");
      }
      co_return Status(Code::kAborted, "reading the response header: " + rec.message());
    }
    ClientResponse res;
    res.status = parser.get().result_int();
    bool keep_alive = parser.get().keep_alive() && !write_failed;
    bool ok_status = res.status >= 200 && res.status < 300;
    BodySink* out = ok_status ? sink : nullptr;

    // ---- body
    auto emit = [&](const char* p, size_t n) -> Status {
      res.body_bytes += n;
      if (out != nullptr) {
        out->Write(std::span<const char>(p, n));
      } else {
        if (res.body.size() + n > kMaxCollectedBody) {
          return Status(Code::kTooLarge, "response body larger than " +
                                             std::to_string(kMaxCollectedBody) + " bytes");
        }
        res.body.append(p, n);
      }
      return {};
    };
    if (!parser.is_done()) {
      auto cl = parser.content_length();
      if (cl && !parser.chunked()) {
        // Fast path: read straight from the socket into the sink's buffer.
        uint64_t remaining = *cl;
        if (out == nullptr) {
          if (remaining > kMaxCollectedBody) {
            co_return Status(Code::kTooLarge, "response body of " + std::to_string(remaining) +
                                                  " bytes is too large to collect");
          }
          res.body.reserve(static_cast<size_t>(remaining));
        }
        size_t have = static_cast<size_t>(std::min<uint64_t>(buffer.size(), remaining));
        if (have > 0) {
          if (Status st = emit(static_cast<const char*>(buffer.data().data()), have); !st.ok()) {
            co_return st;
          }
          buffer.consume(have);
          remaining -= have;
        }
        while (remaining > 0) {
          std::span<char> buf = Scratch(remaining);
          size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, buf.size()));
          low.expires_after(timeout);
          auto [ec, n] = co_await s.async_read_some(asio::buffer(buf.data(), want), kTuple);
          if (ec) {
            co_return Status(Code::kAborted, "reading the response body after " +
                                                 std::to_string(*cl - remaining) + " of " +
                                                 std::to_string(*cl) + " bytes: " + ec.message());
          }
          if (Status st = emit(buf.data(), n); !st.ok()) co_return st;
          remaining -= n;
        }
      } else {
        // Chunked or delimited by close: let the parser find the end.
        if (!cl && !parser.chunked()) keep_alive = false;
        while (!parser.is_done()) {
          std::span<char> buf = Scratch(kIoChunk);
          parser.get().body().data = buf.data();
          parser.get().body().size = buf.size();
          low.expires_after(timeout);
          auto [ec, n] = co_await bhttp::async_read(s, buffer, parser, kTuple);
          if (ec == bhttp::error::need_buffer) ec = {};
          size_t got = buf.size() - parser.get().body().size;
          if (got > 0) {
            if (Status st = emit(buf.data(), got); !st.ok()) co_return st;
          }
          if (ec == bhttp::error::end_of_stream && !cl && !parser.chunked()) break;
          if (ec) co_return Status(Code::kAborted, "reading the response body: " + ec.message());
        }
      }
    }
    auto msg = parser.release();
    res.headers = std::move(static_cast<bhttp::fields&>(msg));
    if (!keep_alive) Close();
    co_return res;
  }
};

Connection::Connection(asio::any_io_executor executor, const Endpoint& endpoint,
                       asio::ssl::context* tls, int timeout_seconds)
    : impl_(std::make_unique<Impl>(std::move(executor), endpoint, tls, timeout_seconds)) {}

Connection::~Connection() {
  if (impl_) impl_->Close();
}

bool Connection::is_open() const { return impl_->open(); }
uint64_t Connection::connects() const { return impl_->connects; }
void Connection::Close() { impl_->Close(); }

asio::awaitable<Status> Connection::Connect() {
  Impl& m = *impl_;
  m.Close();
  beast::tcp_stream stream(m.executor);
  stream.expires_after(m.timeout);
  auto [ec, ep] = co_await stream.async_connect(m.endpoint.addresses, kTuple);
  if (ec) {
    co_return Status::Unavailable("cannot connect to " + m.endpoint.authority + ": " +
                                  ec.message());
  }
  beast::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  ++m.connects;
  if (!m.endpoint.tls) {
    m.tcp.emplace(std::move(stream));
    co_return Status();
  }
  if (m.tls_ctx == nullptr) co_return Status::InvalidArgument("https URL but no TLS context");
  m.tls.emplace(std::move(stream), *m.tls_ctx);
  if (!SSL_set_tlsext_host_name(m.tls->native_handle(), m.endpoint.host.c_str())) {
    m.Close();
    co_return Status::Unavailable("cannot set TLS SNI host name");
  }
  if (m.tls_ctx->native_handle() != nullptr &&
      SSL_CTX_get_verify_mode(m.tls_ctx->native_handle()) != SSL_VERIFY_NONE) {
    m.tls->set_verify_callback(asio::ssl::host_name_verification(m.endpoint.host));
  }
  beast::get_lowest_layer(*m.tls).expires_after(m.timeout);
  auto [hec] = co_await m.tls->async_handshake(asio::ssl::stream_base::client, kTuple);
  if (hec) {
    m.Close();
    co_return Status::Unavailable("TLS handshake with " + m.endpoint.authority +
                                  " failed: " + hec.message());
  }
  co_return Status();
}

asio::awaitable<Result<ClientResponse>> Connection::RoundTrip(const ClientRequest& req,
                                                              std::string_view authorization,
                                                              BodySink* sink) {
  Impl& m = *impl_;
  for (int attempt = 0;; ++attempt) {
    bool reused = m.open();
    if (!reused) {
      if (Status st = co_await Connect(); !st.ok()) co_return st;
    }
    bool stale = false;
    // (Not a ?: with co_await in both arms: GCC 12 miscompiles that.)
    Result<ClientResponse> r;
    if (m.tls) {
      r = co_await m.Exchange(*m.tls, req, authorization, sink, stale);
    } else {
      r = co_await m.Exchange(*m.tcp, req, authorization, sink, stale);
    }
    if (r.ok()) co_return r;
    m.Close();
    // A keep-alive connection the server closed while idle: retry once on a new one.
    if (!(stale && reused && attempt == 0)) co_return r;
    if (req.source != nullptr) req.source->Rewind();
  }
}

asio::awaitable<Result<ClientResponse>> Client::Do(const ClientRequest& req, BodySink* sink) {
  for (int attempt = 0;; ++attempt) {
    std::string auth = auth_.HeaderFor(req.scope);
    auto res = co_await conn_.RoundTrip(req, auth, sink);
    if (!res.ok() || res->status != 401 || attempt >= 2) co_return res;
    std::string_view challenge = res->Header("WWW-Authenticate");
    if (challenge.empty()) co_return res;  // the caller reports the 401
    Status st = co_await auth_.OnChallenge(challenge, req.scope, !auth.empty());
    if (!st.ok()) co_return st;
    if (req.source != nullptr) req.source->Rewind();
  }
}

// ---------------------------------------------------------------------- helpers

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string WithQuery(std::string target, std::string_view name, std::string_view value) {
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += name;
  target += '=';
  target += PercentEncode(value);
  return target;
}

std::string TargetFromLocation(std::string_view location) {
  auto scheme = location.find("://");
  if (scheme != std::string_view::npos && scheme < location.find('/')) {
    auto path = location.find('/', scheme + 3);
    if (path == std::string_view::npos) return "/";
    return std::string(location.substr(path));
  }
  return std::string(location);
}

}  // namespace berth::bench
