// GET /v2/<name>/referrers/<digest>[?artifactType=]
#include "api/distribution/errors.h"
#include "api/distribution/handlers.h"
#include "oci/media_types.h"
#include "oci/reference.h"

namespace berth::api::distribution {

using http::bhttp::status;
using http::bhttp::verb;

asio::awaitable<Response> HandleReferrers(Ctx& ctx, Request& req, const RouteMatch& m) {
  if (req.method != verb::get) co_return MethodNotAllowed(req);
  if (Status st = oci::ValidateRepositoryName(m.name); !st.ok()) co_return ErrorResponse(st);
  auto digest = oci::Digest::Parse(m.ref);
  if (!digest.ok()) co_return ErrorResponse(digest.status());
  std::string artifact_type(req.Query("artifactType").value_or(""));
  auto index = co_await ctx.pool.Run(
      [&] { return ctx.registry.Referrers(m.name, *digest, artifact_type); });
  if (!index.ok()) co_return ErrorResponse(index.status());
  Response res;
  res.headers.set(http::bhttp::field::content_type, oci::kOciIndex);
  if (!artifact_type.empty()) res.headers.set("OCI-Filters-Applied", "artifactType");
  res.body = std::move(*index);
  co_return res;
}

}  // namespace berth::api::distribution
