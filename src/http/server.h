// The HTTP/1.1 server: accepts connections, runs one coroutine per connection,
// enforces header/idle/body-stall limits, sniffs TLS, streams bodies, and shuts
// down gracefully. It knows nothing of registries: every request goes to one
// Handler. Thread-safe; Run() drives `io_threads` threads.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "http/message.h"
#include "metrics/metrics.h"

namespace berth::http {

using Handler = std::function<asio::awaitable<Response>(Request&)>;

struct ServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 5000;
  int io_threads = 1;
  int idle_timeout_seconds = 60;
  int read_timeout_seconds = 60;
  // Longest time from accepting a connection to the end of its first request's
  // headers: a client that sends nothing, or its headers a byte at a time, is cut.
  int header_timeout_seconds = 20;
  uint32_t max_header_bytes = 16 * 1024;
  // PEM files; empty = plain HTTP only.
  std::string tls_cert;
  std::string tls_key;
  bool access_log = true;
  // Path prefixes whose remainder is a secret (a presigned download token): the access
  // log shows PREFIX<redacted> instead of the request target.
  std::vector<std::string> redacted_path_prefixes;
  // The response to an error the server answers by itself (malformed or ambiguous
  // request, 431), in the error format of the API the request was for, given the HTTP
  // status and a message; `req` is null when the request line could not be read.
  // Empty = plain text.
  std::function<Response(const Request* req, int status, const std::string& message)>
      error_response;
  // Longest wait for in-flight requests at shutdown.
  int shutdown_grace_seconds = 30;
  // Runs a blocking read of a response body off the I/O threads (the blocking pool):
  // used for bodies that are not files (an object store's stream), so that a slow
  // store never stalls the other connections of an I/O thread. Empty = read inline.
  std::function<boost::asio::awaitable<Result<size_t>>(std::function<Result<size_t>()>)>
      run_blocking_read;
};

class Server {
 public:
  Server(ServerOptions options, Handler handler, metrics::Metrics& metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; returns the bound port (useful with port 0).
  Result<uint16_t> Listen();
  // Serves until Shutdown() (or SIGINT/SIGTERM) completes. Blocks.
  void Run();
  // Stops accepting, lets in-flight requests finish, closes idle connections.
  void Shutdown();
  // Runs `fn` every `interval_seconds` on a server thread until shutdown.
  void Every(int64_t interval_seconds, std::function<asio::awaitable<void>()> fn);
  asio::any_io_executor executor();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::http
