// HttpClient: the blocking HTTP transport of the registry client, a thin adapter over
// libcurl. Connections are kept alive: finished easy handles go back to a pool and
// all handles share one connection cache, DNS cache and TLS session cache.
// Proxies come from the usual environment (http_proxy, https_proxy, no_proxy).
//
// Thread-safe: Do() may be called from many threads at once (each call borrows its
// own easy handle). Transport failures are values (kUnavailable); every HTTP status,
// including 4xx/5xx, is a successful Result.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/base64.h"
#include "base/status.h"

namespace berth::client {

struct TransportOptions {
  // Skip TLS certificate and host name verification. Default: false.
  bool insecure_skip_verify = false;
  // PEM bundle of extra trusted CAs. Default: empty (the system store).
  std::string ca_file;
  // Default: 30 seconds.
  long connect_timeout_seconds = 30;
  // A transfer slower than 1 byte/s for this long is aborted. Default: 120 seconds.
  long stall_timeout_seconds = 120;
  // Upload bandwidth cap per transfer in bytes/s. Default: 0 (unlimited).
  int64_t max_send_bytes_per_second = 0;
  // Default: "berth/0.1.0".
  std::string user_agent = "berth/0.1.0";
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// A request body of known length, read by offset so that a retry can re-send it.
struct BodySource {
  uint64_t size = 0;
  // Fills buf with up to n bytes starting at `offset` (relative to the body);
  // returns the count, 0 only at the end.
  std::function<Result<size_t>(uint64_t offset, char* buf, size_t n)> read_at;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  HeaderList headers;
  // In-memory body; ignored when `source` is set.
  std::optional<std::string> body;
  const BodySource* source = nullptr;
  // When set, the body of a 2xx response is streamed here instead of being buffered.
  // A non-OK Status aborts the transfer and becomes the result of Do().
  std::function<Status(std::string_view)> sink;
  // Called once with the status code before the first body byte of a 2xx response.
  std::function<void(int status)> on_body_start;
  bool follow_redirects = true;
  // Called as bytes move (bytes sent, bytes received), from the calling thread.
  std::function<void(uint64_t sent, uint64_t received)> progress;
};

struct HttpResponse {
  int status = 0;
  // Header names lower-cased, in the order received (final response of a redirect chain).
  HeaderList headers;
  // Buffered body: always for non-2xx (capped at 1 MiB), for 2xx only without a sink.
  std::string body;
  std::string effective_url;

  // First value of a header (case-insensitive name), or "".
  std::string Header(std::string_view name) const;
  std::vector<std::string> HeaderValues(std::string_view name) const;
};

class HttpClient {
 public:
  explicit HttpClient(TransportOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one request. Errors: kUnavailable "<METHOD> <url>: <reason>" for transport
  // failures; its detail() is "tls" for TLS handshake failures (used to detect a
  // plain-HTTP server) and "connect" when the host could not be reached.
  Result<HttpResponse> Do(const HttpRequest& request);

  const TransportOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Lenient base64 for what other tools write (docker's "auth" field, manifest lists):
// line breaks, missing padding and the URL-safe alphabet are accepted. Encoding uses
// berth::Base64Encode (base/base64.h).
Result<std::string> Base64Decode(std::string_view in);

}  // namespace berth::client
