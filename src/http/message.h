// The request and response types handlers see. They hide the connection's stream
// type (plain TCP or TLS): a handler reads the body through BodyReader and returns
// a Response whose body is a string or a file range (sent with sendfile on plain TCP).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "storage/blob/blob_store.h"

namespace berth::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

// Streams a request body. Not thread-safe; owned by the connection.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  // Reads up to out.size() bytes; 0 means the body is complete. kAborted when the
  // client disconnects or stalls past the read timeout.
  virtual asio::awaitable<Result<size_t>> Read(std::span<char> out) = 0;
  // The declared Content-Length; nullopt for chunked transfer encoding.
  virtual std::optional<uint64_t> content_length() const = 0;
  virtual bool done() const = 0;
  virtual uint64_t bytes_read() const = 0;
};

struct Request {
  bhttp::verb method = bhttp::verb::unknown;
  std::string_view method_string;
  std::string_view target;  // as sent
  std::string path;         // percent-decoded path
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  const bhttp::fields* headers = nullptr;
  BodyReader* body = nullptr;
  std::string request_id;
  std::string remote;
  // When non-empty, listings are limited to this account's resources (set by
  // authentication for the catalog).
  std::string account_scope;
  // Set by the router: a low-cardinality route name for logs and metrics.
  std::string_view route = "unmatched";

  // First value of a query parameter.
  std::optional<std::string_view> Query(std::string_view key) const;
  bool HasQuery(std::string_view key) const { return Query(key).has_value(); }
  std::string_view Header(bhttp::field f) const;
  // Every value of a header that may be repeated or comma-joined (Accept).
  std::vector<std::string_view> HeaderList(bhttp::field f) const;
};

// A byte range of a stored blob to send as the body.
struct FileBody {
  std::unique_ptr<storage::BlobReader> reader;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct Response {
  bhttp::status status = bhttp::status::ok;
  bhttp::fields headers;
  std::string body;
  std::optional<FileBody> file;
  // For HEAD: the Content-Length to announce without sending a body.
  std::optional<uint64_t> head_length;
  // Close the connection after this response.
  bool close = false;
};

// Splits "a=1&b=%2F" into decoded pairs. Malformed escapes are kept literally.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);
// Percent-decodes a path; nullopt when an escape is malformed or decodes to NUL. An
// encoded slash (%2F) stays encoded: it is not a path separator, so "lib%2Fapp" never
// names the repository "lib/app" (every name, tag and digest check then refuses '%').
std::optional<std::string> DecodePath(std::string_view path);

// Why a request's message framing is refused, and the status to answer it with.
struct FramingError {
  bhttp::status status = bhttp::status::bad_request;
  std::string message;
};
// RFC 9112 §6: the body length of a request must be unambiguous, or a proxy in front
// and this server could split the byte stream into different requests (smuggling).
// Refused (the connection must then be closed): Transfer-Encoding with
// Content-Length, on HTTP/1.0, or whose codings are anything but one final "chunked"
// (501 for a coding before it: none is implemented); Content-Length repeated or a
// list. The parser accepts some of these (it reads "gzip" or "chunked, chunked" as
// no body), so they are checked once the headers are read.
std::optional<FramingError> CheckRequestFraming(const bhttp::fields& headers, unsigned version);

}  // namespace berth::http
