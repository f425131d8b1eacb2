// A small HTTP/1.1 client for `berth bench`, built on Boost.Beast and C++20
// coroutines: keep-alive connections (plain TCP or TLS), request bodies streamed from
// a BodySource, response bodies streamed into a BodySink (or collected when small),
// and the registry auth dance (a 401 with WWW-Authenticate: Basic, or Bearer with a
// token fetched from the realm).
//
// Threading: a Connection (and the Client around it) belongs to one executor and
// runs one request at a time. An Authenticator is shared by every Client and is
// thread-safe. Errors are values: a failed exchange is a non-OK Status whose message
// says what happened (connect, write, read, timeout); HTTP error statuses are not
// errors here, the caller judges them.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/base64.h"
#include "base/status.h"
#include "bench/content.h"
#include "oci/digest.h"

namespace berth::bench {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

// A registry base URL, "http[s]://host[:port]", resolved once.
struct Endpoint {
  bool tls = false;
  std::string host;       // without IPv6 brackets
  std::string port;       // numeric
  std::string authority;  // the Host header: host[:port] as given
  std::vector<asio::ip::tcp::endpoint> addresses;

  // kInvalidArgument for anything but an http/https URL with a host.
  static Result<Endpoint> Parse(std::string_view url);
  // Resolves host:port (blocking; call at startup).
  Status Resolve();
};

// A request body produced piece by piece (never held whole in memory).
class BodySource {
 public:
  virtual ~BodySource() = default;
  virtual uint64_t size() const = 0;
  // Fills up to out.size() bytes; 0 at the end.
  virtual size_t Read(std::span<char> out) = 0;
  // Starts again from the beginning (a retry after a 401 or a stale connection).
  virtual void Rewind() = 0;
};

// Bytes [begin, end) of a RandomContent blob. With a hasher, every byte is hashed the
// first time it is produced (a rewind does not hash twice), so a blob sent in several
// requests is hashed while it is sent.
class ContentSource final : public BodySource {
 public:
  ContentSource(uint64_t seed, uint64_t blob_size, uint64_t begin, uint64_t end,
                oci::Hasher* hasher = nullptr);
  uint64_t size() const override { return end_ - begin_; }
  size_t Read(std::span<char> out) override;
  void Rewind() override { content_.Seek(begin_); }

 private:
  RandomContent content_;
  uint64_t begin_;
  uint64_t end_;
  oci::Hasher* hasher_;
};

// Receives the body of a 2xx response.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual void Write(std::span<const char> data) = 0;
};

// Counts bytes; optionally hashes them.
class HashingSink final : public BodySink {
 public:
  explicit HashingSink(bool hash, oci::DigestAlgorithm alg = oci::DigestAlgorithm::kSha256);
  void Write(std::span<const char> data) override;
  uint64_t bytes() const { return bytes_; }
  // The digest of what was written; only when constructed with hash = true.
  oci::Digest digest() const { return hasher_->Peek(); }
  bool hashing() const { return hasher_ != nullptr; }

 private:
  std::unique_ptr<oci::Hasher> hasher_;
  uint64_t bytes_ = 0;
};

struct ClientRequest {
  bhttp::verb method = bhttp::verb::get;
  std::string target;  // origin-form: "/v2/..."
  // Extra header lines, preformatted: "Name: value\r\n" each (see AddHeader).
  std::string headers;
  std::string_view body;         // an in-memory body (manifests); must outlive the call
  BodySource* source = nullptr;  // a streamed body; takes precedence over `body`
  // The repository the request is about ("" for registry-wide requests): the scope of
  // a bearer token.
  std::string scope;

  void AddHeader(std::string_view name, std::string_view value);
};

struct ClientResponse {
  unsigned status = 0;
  bhttp::fields headers;
  // The body when no sink took it: always for non-2xx, and for 2xx when the caller
  // passed no sink. Bounded (kMaxCollectedBody).
  std::string body;
  uint64_t body_bytes = 0;  // bytes of body received (whoever took them)

  std::string_view Header(std::string_view name) const;
};

// Largest response body collected into memory.
inline constexpr uint64_t kMaxCollectedBody = 256ull << 20;

struct Challenge {
  std::string scheme;                         // lower-case: "basic", "bearer"
  std::map<std::string, std::string> params;  // keys lower-case, values unquoted
};
// Parses one WWW-Authenticate challenge: `Bearer realm="...",service="...",scope="..."`.
std::optional<Challenge> ParseChallenge(std::string_view header);

struct Credentials {
  std::string user;
  std::string password;
  std::string token;  // a static bearer token: sent on every request, no challenge needed
};

// Turns 401 challenges into Authorization headers. Thread-safe.
class Authenticator {
 public:
  Authenticator(Credentials creds, asio::ssl::context* tls, int timeout_seconds);
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // The Authorization value for a request about `scope` ("" when none is known yet).
  std::string HeaderFor(std::string_view scope) const;
  // Learns from a 401: Basic → send the user's credentials from now on; Bearer → fetch
  // a token from the realm for the challenge's scope. `rejected`: the request already
  // carried an Authorization header. kUnauthorized when there is nothing to answer with.
  asio::awaitable<Status> OnChallenge(std::string_view www_authenticate, std::string_view scope,
                                      bool rejected);
  uint64_t token_fetches() const;

 private:
  Credentials creds_;
  std::string basic_value_;
  asio::ssl::context* tls_;
  int timeout_seconds_;
  mutable std::mutex mu_;
  bool use_basic_ = false;                                  // guarded by mu_
  std::map<std::string, std::string, std::less<>> tokens_;  // scope → token, guarded by mu_
  uint64_t token_fetches_ = 0;                              // guarded by mu_
};

// One keep-alive connection. Reconnects when the server closed an idle connection.
class Connection {
 public:
  // `endpoint` and `tls` must outlive the connection; `tls` is null for plain HTTP.
  Connection(asio::any_io_executor executor, const Endpoint& endpoint, asio::ssl::context* tls,
             int timeout_seconds);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  asio::awaitable<Status> Connect();
  // Sends `req` with `authorization` (may be empty) and reads the response. The body
  // of a 2xx response goes to `sink` when given.
  asio::awaitable<Result<ClientResponse>> RoundTrip(const ClientRequest& req,
                                                    std::string_view authorization, BodySink* sink);
  void Close();
  bool is_open() const;
  uint64_t connects() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A Connection plus the shared Authenticator: answers a 401 challenge and retries.
class Client {
 public:
  Client(asio::any_io_executor executor, const Endpoint& endpoint, asio::ssl::context* tls,
         int timeout_seconds, Authenticator& auth)
      : conn_(std::move(executor), endpoint, tls, timeout_seconds), auth_(auth) {}

  asio::awaitable<Result<ClientResponse>> Do(const ClientRequest& req, BodySink* sink = nullptr);
  Connection& connection() { return conn_; }

 private:
  Connection conn_;
  Authenticator& auth_;
};

// "/v2/x/blobs/uploads/u?_state=s" from a Location header that may be an absolute URL.
std::string TargetFromLocation(std::string_view location);
// Appends "name=value" (value percent-encoded) with '?' or '&'.
std::string WithQuery(std::string target, std::string_view name, std::string_view value);
std::string PercentEncode(std::string_view s);

}  // namespace berth::bench
