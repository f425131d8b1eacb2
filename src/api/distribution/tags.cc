// GET /v2/<name>/tags/list[?n=&last=]
#include <algorithm>
#include <boost/json.hpp>

#include "api/distribution/errors.h"
#include "api/distribution/handlers.h"
#include "oci/reference.h"

namespace berth::api::distribution {

using http::bhttp::status;
using http::bhttp::verb;

asio::awaitable<Response> HandleTags(Ctx& ctx, Request& req, const RouteMatch& m) {
  if (req.method != verb::get) co_return MethodNotAllowed(req);
  if (Status st = oci::ValidateRepositoryName(m.name); !st.ok()) co_return ErrorResponse(st);
  auto page = ParsePage(req, ctx.options);
  if (!page.ok()) co_return ErrorResponse(page.status());
  // A page asked for recently is answered from memory on the I/O thread (see
  // Registry::CachedTags); otherwise the blocking pool reads it and caches it.
  auto tags = ctx.registry.CachedTags(m.name, page->last, page->n + 1);
  if (tags == nullptr) {
    auto read = co_await ctx.pool.Run(
        [&] { return ctx.registry.ListTags(m.name, page->last, page->n + 1); });
    if (!read.ok()) co_return ErrorResponse(read.status());
    tags = std::move(read).value();
  }
  bool more = tags->size() > page->n;
  size_t shown = std::min<size_t>(tags->size(), page->n);
  boost::json::array arr;
  arr.reserve(shown);
  for (size_t i = 0; i < shown; ++i) arr.emplace_back((*tags)[i]);
  boost::json::object body;
  body["name"] = m.name;
  body["tags"] = std::move(arr);
  Response res = JsonResponse(status::ok, boost::json::serialize(body));
  if (more && shown > 0) {
    res.headers.set(http::bhttp::field::link,
                    NextLink("/v2/" + m.name + "/tags/list", page->n, (*tags)[shown - 1]));
  }
  co_return res;
}

}  // namespace berth::api::distribution
