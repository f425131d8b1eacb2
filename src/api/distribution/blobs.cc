// GET, HEAD, DELETE /v2/<name>/blobs/<digest>
#include <charconv>

#include "api/distribution/errors.h"
#include "api/distribution/handlers.h"
#include "oci/reference.h"

namespace berth::api::distribution {

using http::bhttp::field;
using http::bhttp::status;
using http::bhttp::verb;

namespace {

struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};

bool ParseNumber(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// RFC 9110 single byte range: "bytes=a-b", "bytes=a-", "bytes=-n". Returns nullopt
// for a header to ignore (not bytes, several ranges, malformed) and kOutOfRange
// when it is unsatisfiable for `size`.
Result<std::optional<ByteRange>> ParseRange(std::string_view h, uint64_t size) {
  if (!h.starts_with("bytes=")) return std::optional<ByteRange>();
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return std::optional<ByteRange>();
  auto dash = h.find('-');
  if (dash == std::string_view::npos) return std::optional<ByteRange>();
  std::string_view a = h.substr(0, dash), b = h.substr(dash + 1);
  ByteRange r;
  uint64_t x = 0, y = 0;
  if (a.empty()) {
    if (!ParseNumber(b, y)) return std::optional<ByteRange>();
    if (y == 0 || size == 0) {
      return Status(Code::kOutOfRange, "requested range is empty or the blob is empty");
    }
    r.first = y >= size ? 0 : size - y;
    r.last = size - 1;
    return std::optional(r);
  }
  if (!ParseNumber(a, x)) return std::optional<ByteRange>();
  if (b.empty()) {
    y = size == 0 ? 0 : size - 1;
  } else if (!ParseNumber(b, y) || y < x) {
    return std::optional<ByteRange>();
  }
  if (x >= size) {
    return Status(Code::kOutOfRange, "requested range starts at byte " + std::to_string(x) +
                                         " but the blob has " + std::to_string(size) + " bytes");
  }
  r.first = x;
  r.last = std::min(y, size - 1);
  return std::optional(r);
}

}  // namespace

asio::awaitable<Response> HandleBlob(Ctx& ctx, Request& req, const RouteMatch& m) {
  if (req.method != verb::get && req.method != verb::head && req.method != verb::delete_) {
    co_return MethodNotAllowed(req);
  }
  if (Status st = oci::ValidateRepositoryName(m.name); !st.ok()) co_return ErrorResponse(st);
  auto digest = oci::Digest::Parse(m.ref);
  if (!digest.ok()) co_return ErrorResponse(digest.status());

  if (req.method == verb::delete_) {
    Status st = co_await ctx.pool.Run([&] { return ctx.registry.DeleteBlob(m.name, *digest); });
    if (!st.ok()) co_return ErrorResponse(st);
    Response res;
    res.status = status::accepted;
    res.headers.set("Docker-Content-Digest", digest->str());
    co_return res;
  }

  Response res;
  res.headers.set("Docker-Content-Digest", digest->str());
  res.headers.set(field::content_type, "application/octet-stream");
  res.headers.set(field::accept_ranges, "bytes");
  res.headers.set(field::etag, "\"" + digest->str() + "\"");
  res.headers.set(field::cache_control, "max-age=31536000");
  if (req.method == verb::head) {
    auto rec = co_await ctx.pool.RunBlob([&] { return ctx.registry.StatBlob(m.name, *digest); });
    if (!rec.ok()) co_return ErrorResponse(rec.status());
    res.head_length = rec->size;
    co_return res;
  }
  auto blob = co_await ctx.pool.RunBlob([&] { return ctx.registry.OpenBlob(m.name, *digest); });
  if (!blob.ok()) co_return ErrorResponse(blob.status());
  uint64_t size = blob->record.size;
  auto range = ParseRange(req.Header(field::range), size);
  if (!range.ok()) {
    Response err = ErrorResponse(range.status());
    err.headers.set(field::content_range, "bytes */" + std::to_string(size));
    co_return err;
  }
  http::FileBody body{std::move(blob->reader), 0, size};
  if (*range) {
    const ByteRange& r = **range;
    res.status = status::partial_content;
    res.headers.set(field::content_range, "bytes " + std::to_string(r.first) + "-" +
                                              std::to_string(r.last) + "/" +
                                              std::to_string(size));
    body.offset = r.first;
    body.length = r.last - r.first + 1;
  }
  res.file = std::move(body);
  co_return res;
}

}  // namespace berth::api::distribution
