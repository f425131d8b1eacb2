// The /v2 OCI distribution API (plus /healthz, /readyz, /metrics): routes requests
// to one handler per resource. Handlers are thin: they decode the request, call the
// Registry on the blocking pool, and encode the result; errors go through errors.h.
#pragma once

#include <memory>

#include "http/blocking.h"
#include "http/message.h"
#include "metrics/metrics.h"
#include "registry/registry.h"

namespace berth::api::distribution {

namespace asio = boost::asio;

struct ApiOptions {
  uint64_t max_manifest_bytes = 4 * 1024 * 1024;
  // Page size when a listing request gives no `n`, and the largest `n` honoured.
  size_t default_page_size = 1000;
  size_t max_page_size = 10000;
};

class DistributionApi {
 public:
  DistributionApi(registry::Registry& registry, http::BlockingPool& pool,
                  metrics::Metrics& metrics, ApiOptions options);
  asio::awaitable<http::Response> Handle(http::Request& req);

 private:
  registry::Registry& registry_;
  http::BlockingPool& pool_;
  metrics::Metrics& metrics_;
  ApiOptions options_;
};

}  // namespace berth::api::distribution
