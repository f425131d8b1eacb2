// GET|HEAD /ecr-download/<token>: the presigned layer downloads GetDownloadUrlForLayer
// hands out. The token's signature is the authorization.
#include "api/ecr/api.h"
#include "api/ecr/download_url.h"
#include "api/ecr/errors.h"

namespace berth::api::ecr {

using http::bhttp::field;
using http::bhttp::status;
using http::bhttp::verb;

asio::awaitable<http::Response> EcrApi::HandleDownload(http::Request& req) {
  req.route = "ecr_download";
  std::string_view token = std::string_view(req.path).substr(kDownloadPathPrefix.size());
  auto grant = VerifyDownloadToken(token, options_.download_url_key, clock_.NowMillis() / 1000);
  if (!grant.ok()) {
    http::Response res = ErrorResponse("AccessDeniedException", grant.status().message());
    res.status = status::forbidden;
    co_return res;
  }
  auto blob =
      co_await pool_.RunBlob(
          [&] { return registry_.OpenBlob(grant->repository, grant->digest); });
  if (!blob.ok()) {
    http::Response res = ErrorResponse(blob.status(), "GetDownloadUrlForLayer");
    if (res.status != status::internal_server_error) res.status = status::not_found;
    co_return res;
  }
  http::Response res;
  res.headers.set(field::content_type, "application/octet-stream");
  res.headers.set("Docker-Content-Digest", grant->digest.str());
  res.headers.set(field::etag, "\"" + grant->digest.str() + "\"");
  if (req.method == verb::head) {
    res.head_length = blob->record.size;
  } else {
    res.file = http::FileBody{std::move(blob->reader), 0, blob->record.size};
  }
  co_return res;
}

}  // namespace berth::api::ecr
