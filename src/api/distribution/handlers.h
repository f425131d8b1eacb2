// Internal to api/distribution: the route table's match result and the handlers,
// one file per resource (base.cc, blobs.cc, uploads.cc, manifests.cc, tags.cc,
// referrers.cc).
#pragma once

#include <string>

#include "api/distribution/api.h"

namespace berth::api::distribution {

enum class Route : uint8_t {
  kBase,         // /v2/
  kCatalog,      // /v2/_catalog
  kTags,         // /v2/<name>/tags/list
  kManifest,     // /v2/<name>/manifests/<reference>
  kBlob,         // /v2/<name>/blobs/<digest>
  kUploadStart,  // /v2/<name>/blobs/uploads/
  kUpload,       // /v2/<name>/blobs/uploads/<id>
  kReferrers,    // /v2/<name>/referrers/<digest>
  kHealthz,
  kReadyz,
  kMetrics,
  kNotFound,
};

struct RouteMatch {
  Route route = Route::kNotFound;
  std::string name;  // repository
  std::string ref;   // reference, digest or upload id
};

// Pure: maps a decoded path to a route. Repository names may contain '/', so the
// resource suffix is found from the right.
RouteMatch MatchRoute(std::string_view path);
std::string_view RouteName(Route r);

struct Ctx {
  registry::Registry& registry;
  http::BlockingPool& pool;
  metrics::Metrics& metrics;
  const ApiOptions& options;
};

using http::Request;
using http::Response;

asio::awaitable<Response> HandleBase(Ctx& ctx, Request& req);
asio::awaitable<Response> HandleCatalog(Ctx& ctx, Request& req);
asio::awaitable<Response> HandleHealthz(Ctx& ctx, Request& req);
asio::awaitable<Response> HandleReadyz(Ctx& ctx, Request& req);
asio::awaitable<Response> HandleMetrics(Ctx& ctx, Request& req);
asio::awaitable<Response> HandleTags(Ctx& ctx, Request& req, const RouteMatch& m);
asio::awaitable<Response> HandleManifest(Ctx& ctx, Request& req, const RouteMatch& m);
asio::awaitable<Response> HandleBlob(Ctx& ctx, Request& req, const RouteMatch& m);
asio::awaitable<Response> HandleUploadStart(Ctx& ctx, Request& req, const RouteMatch& m);
asio::awaitable<Response> HandleUpload(Ctx& ctx, Request& req, const RouteMatch& m);
asio::awaitable<Response> HandleReferrers(Ctx& ctx, Request& req, const RouteMatch& m);

// Shared helpers.
Response MethodNotAllowed(const Request& req);
Response JsonResponse(http::bhttp::status status, std::string body);
// Parses `n` and `last` for paginated listings; kInvalidArgument on a bad `n`.
struct Page {
  size_t n;
  std::string last;
};
Result<Page> ParsePage(const Request& req, const ApiOptions& options);
// `Link: <path?n=N&last=LAST>; rel="next"`.
std::string NextLink(std::string_view path, size_t n, std::string_view last);

}  // namespace berth::api::distribution
