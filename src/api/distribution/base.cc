// GET /v2/, GET /v2/_catalog, /healthz, /readyz, /metrics.
#include <boost/json.hpp>

#include "api/distribution/errors.h"
#include "api/distribution/handlers.h"

namespace berth::api::distribution {

using http::bhttp::status;
using http::bhttp::verb;

asio::awaitable<Response> HandleBase(Ctx& ctx, Request& req) {
  if (req.method != verb::get && req.method != verb::head) co_return MethodNotAllowed(req);
  co_return JsonResponse(status::ok, "{}");
}

asio::awaitable<Response> HandleCatalog(Ctx& ctx, Request& req) {
  if (req.method != verb::get) co_return MethodNotAllowed(req);
  auto page = ParsePage(req, ctx.options);
  if (!page.ok()) co_return ErrorResponse(page.status());
  // One extra row tells whether there is a next page.
  auto repos = co_await ctx.pool.Run(
      [&] { return ctx.registry.Catalog(page->last, page->n + 1, req.account_scope); });
  if (!repos.ok()) co_return ErrorResponse(repos.status());
  bool more = repos->size() > page->n;
  if (more) repos->resize(page->n);
  boost::json::array arr;
  for (auto& r : *repos) arr.emplace_back(r);
  boost::json::object body;
  body["repositories"] = std::move(arr);
  Response res = JsonResponse(status::ok, boost::json::serialize(body));
  if (more && !repos->empty()) {
    res.headers.set(http::bhttp::field::link, NextLink("/v2/_catalog", page->n, repos->back()));
  }
  co_return res;
}

asio::awaitable<Response> HandleHealthz(Ctx& ctx, Request& req) {
  Response res;
  res.headers.set(http::bhttp::field::content_type, "text/plain");
  res.body = "ok\n";
  co_return res;
}

asio::awaitable<Response> HandleReadyz(Ctx& ctx, Request& req) {
  Status st = co_await ctx.pool.Run([&] { return ctx.registry.CheckReady(); });
  Response res;
  res.headers.set(http::bhttp::field::content_type, "text/plain");
  if (st.ok()) {
    res.body = "ready\n";
  } else {
    res.status = status::service_unavailable;
    res.body = "not ready: " + st.message() + "\n";
  }
  co_return res;
}

asio::awaitable<Response> HandleMetrics(Ctx& ctx, Request& req) {
  auto& stats = ctx.registry.stats();
  Response res;
  res.headers.set(http::bhttp::field::content_type, "text/plain; version=0.0.4");
  res.body = ctx.metrics.Render([&](std::string& out) {
    out += "# HELP berth_uploads_in_progress Blob upload sessions open.\n"
           "# TYPE berth_uploads_in_progress gauge\n"
           "berth_uploads_in_progress " +
           std::to_string(stats.uploads_in_progress.load()) +
           "\n# HELP berth_uploads_expired_total Upload sessions removed after expiry.\n"
           "# TYPE berth_uploads_expired_total counter\n"
           "berth_uploads_expired_total " +
           std::to_string(stats.uploads_expired.load()) +
           "\n# HELP berth_storage_errors_total Storage operations that failed.\n"
           "# TYPE berth_storage_errors_total counter\n"
           "berth_storage_errors_total " +
           std::to_string(stats.storage_errors.load()) + "\n";
  });
  co_return res;
}

}  // namespace berth::api::distribution
