// GET /v2/<name>/tags/list[?n=&last=]
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
  auto tags = co_await ctx.pool.Run(
      [&] { return ctx.registry.ListTags(m.name, page->last, page->n + 1); });
  if (!tags.ok()) co_return ErrorResponse(tags.status());
  bool more = tags->size() > page->n;
  if (more) tags->resize(page->n);
  boost::json::array arr;
  for (auto& t : *tags) arr.emplace_back(t);
  boost::json::object body;
  body["name"] = m.name;
  body["tags"] = std::move(arr);
  Response res = JsonResponse(status::ok, boost::json::serialize(body));
  if (more && !tags->empty()) {
    res.headers.set(http::bhttp::field::link,
                    NextLink("/v2/" + m.name + "/tags/list", page->n, tags->back()));
  }
  co_return res;
}

}  // namespace berth::api::distribution
