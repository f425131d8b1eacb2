#include <spdlog/spdlog.h>

#include "api/distribution/errors.h"
#include "api/distribution/handlers.h"

namespace berth::api::distribution {
namespace {

// The resource word before the reference: "<name>/<word>/<ref>".
Route ResourceRoute(std::string_view word) {
  if (word == "manifests") return Route::kManifest;
  if (word == "blobs") return Route::kBlob;
  if (word == "referrers") return Route::kReferrers;
  return Route::kNotFound;
}

}  // namespace

RouteMatch MatchRoute(std::string_view path) {
  RouteMatch m;
  if (path == "/v2/" || path == "/v2") {
    m.route = Route::kBase;
    return m;
  }
  if (path == "/healthz") return {Route::kHealthz, {}, {}};
  if (path == "/readyz") return {Route::kReadyz, {}, {}};
  if (path == "/metrics") return {Route::kMetrics, {}, {}};
  if (!path.starts_with("/v2/")) return m;
  std::string_view tail = path.substr(4);
  if (tail == "_catalog") return {Route::kCatalog, {}, {}};
  if (tail.ends_with("/tags/list")) {
    m.route = Route::kTags;
    m.name = std::string(tail.substr(0, tail.size() - 10));
    return m;
  }
  if (tail.ends_with("/blobs/uploads/") || tail.ends_with("/blobs/uploads")) {
    m.route = Route::kUploadStart;
    m.name = std::string(tail.substr(0, tail.rfind("/blobs/uploads")));
    return m;
  }
  // "<name>/<word>/<ref>" (or "<name>/blobs/uploads/<id>"), the reference being the
  // last segment: only the last two segments are looked at, so names containing
  // "blobs" etc. still work, and the cost does not grow with the name.
  size_t ref_slash = tail.rfind('/');
  if (ref_slash == std::string_view::npos || ref_slash == 0 || ref_slash + 1 == tail.size()) {
    return m;
  }
  size_t word_slash = tail.rfind('/', ref_slash - 1);
  if (word_slash == std::string_view::npos) return m;
  std::string_view word = tail.substr(word_slash + 1, ref_slash - word_slash - 1);
  size_t name_end = word_slash;
  Route route = ResourceRoute(word);
  constexpr std::string_view kBlobs = "/blobs";
  if (word == "uploads" && tail.substr(0, word_slash).ends_with(kBlobs)) {
    route = Route::kUpload;
    name_end = word_slash - kBlobs.size();
  }
  if (route == Route::kNotFound) return m;
  m.route = route;
  m.name = std::string(tail.substr(0, name_end));
  m.ref = std::string(tail.substr(ref_slash + 1));
  return m;
}

std::string_view RouteName(Route r) {
  switch (r) {
    case Route::kBase: return "base";
    case Route::kCatalog: return "catalog";
    case Route::kTags: return "tags";
    case Route::kManifest: return "manifest";
    case Route::kBlob: return "blob";
    case Route::kUploadStart: return "upload_start";
    case Route::kUpload: return "upload";
    case Route::kReferrers: return "referrers";
    case Route::kHealthz: return "healthz";
    case Route::kReadyz: return "readyz";
    case Route::kMetrics: return "metrics";
    case Route::kNotFound: break;
  }
  return "unmatched";
}

DistributionApi::DistributionApi(registry::Registry& registry, http::BlockingPool& pool,
                                 metrics::Metrics& metrics, ApiOptions options)
    : registry_(registry), pool_(pool), metrics_(metrics), options_(options) {}

asio::awaitable<http::Response> DistributionApi::Handle(http::Request& req) {
  RouteMatch m = MatchRoute(req.path);
  req.route = RouteName(m.route);
  Ctx ctx{registry_, pool_, metrics_, options_};
  Response res;
  switch (m.route) {
    case Route::kBase: res = co_await HandleBase(ctx, req); break;
    case Route::kCatalog: res = co_await HandleCatalog(ctx, req); break;
    case Route::kHealthz: res = co_await HandleHealthz(ctx, req); break;
    case Route::kReadyz: res = co_await HandleReadyz(ctx, req); break;
    case Route::kMetrics: res = co_await HandleMetrics(ctx, req); break;
    case Route::kTags: res = co_await HandleTags(ctx, req, m); break;
    case Route::kManifest: res = co_await HandleManifest(ctx, req, m); break;
    case Route::kBlob: res = co_await HandleBlob(ctx, req, m); break;
    case Route::kUploadStart: res = co_await HandleUploadStart(ctx, req, m); break;
    case Route::kUpload: res = co_await HandleUpload(ctx, req, m); break;
    case Route::kReferrers: res = co_await HandleReferrers(ctx, req, m); break;
    case Route::kNotFound:
      res = ErrorResponse(http::bhttp::status::not_found, "NOT_FOUND",
                          "no such endpoint: " + std::string(req.method_string) + " " +
                              req.path.substr(0, 256) +
                              "; the OCI distribution API lives under /v2/");
      break;
  }
  res.headers.set("Docker-Distribution-Api-Version", "registry/2.0");
  if (res.status == http::bhttp::status::internal_server_error) {
    spdlog::error("request failed request_id={} route={} body={}", req.request_id, req.route,
                  res.body.substr(0, 256));
  }
  co_return res;
}

// ---- shared helpers

Response MethodNotAllowed(const Request& req) {
  return ErrorResponse(http::bhttp::status::method_not_allowed, "UNSUPPORTED",
                       "method " + std::string(req.method_string) + " is not supported on " +
                           req.path.substr(0, 256));
}

Response JsonResponse(http::bhttp::status status, std::string body) {
  Response r;
  r.status = status;
  r.headers.set(http::bhttp::field::content_type, "application/json");
  r.body = std::move(body);
  return r;
}

Result<Page> ParsePage(const Request& req, const ApiOptions& options) {
  Page p{options.default_page_size, ""};
  if (auto n = req.Query("n")) {
    size_t v = 0;
    if (n->empty() || n->size() > 9) {
      return Status(Code::kInvalidArgument, "query parameter n must be a non-negative integer");
    }
    for (char c : *n) {
      if (c < '0' || c > '9') {
        return Status(Code::kInvalidArgument, "query parameter n must be a non-negative integer");
      }
      v = v * 10 + static_cast<size_t>(c - '0');
    }
    p.n = std::min(v, options.max_page_size);
  }
  if (auto last = req.Query("last")) p.last = std::string(*last);
  return p;
}

std::string NextLink(std::string_view path, size_t n, std::string_view last) {
  std::string link = "<";
  link += path;
  link += "?n=" + std::to_string(n) + "&last=";
  for (char c : last) {
    bool plain = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                 c == '.' || c == '~';
    if (plain) {
      link += c;
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      link += '%';
      link += kHex[static_cast<unsigned char>(c) >> 4];
      link += kHex[c & 15];
    }
  }
  link += ">; rel=\"next\"";
  return link;
}

}  // namespace berth::api::distribution
