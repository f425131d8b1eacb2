// App: the one entry point of every HTTP request. It decides which API a request
// belongs to — the ECR control plane (`POST /` with X-Amz-Target), the presigned
// layer downloads ECR hands out (`/ecr-download/<token>`), or the OCI distribution
// API with the health and metrics endpoints (everything else) — resolves who makes
// it (auth::Caller) and checks the caller may perform the ECR actions the request
// maps to, before any handler runs. Handlers never check permissions themselves.
//
// Thread-safe: one App serves every connection.
#pragma once

#include "api/authn.h"
#include "api/distribution/api.h"
#include "api/ecr/api.h"
#include "auth/caller.h"
#include "http/blocking.h"
#include "http/message.h"
#include "registry/registry.h"

namespace berth::api {

class App {
 public:
  App(distribution::DistributionApi& distribution, ecr::EcrApi& ecr, Authenticator& authn,
      registry::Registry& registry, http::BlockingPool& pool);
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  boost::asio::awaitable<http::Response> Handle(http::Request& req);
  // An error the HTTP layer answers by itself, in the format of the API `req` is for
  // (OCI errors when the request line could not be read): http::ServerOptions::error_response.
  static http::Response ProtocolError(const http::Request* req, int status,
                                      const std::string& message);

 private:
  boost::asio::awaitable<http::Response> HandleEcr(http::Request& req);
  boost::asio::awaitable<http::Response> HandleRegistry(http::Request& req);
  // Checks `action` on repository `name` (its owner and policy looked up on the pool,
  // in the same trip as the check).
  boost::asio::awaitable<Status> AuthorizeRepository(const auth::Caller& caller,
                                                     std::string_view action,
                                                     const std::string& name);

  distribution::DistributionApi& distribution_;
  ecr::EcrApi& ecr_;
  Authenticator& authn_;
  registry::Registry& registry_;
  http::BlockingPool& pool_;
};

}  // namespace berth::api
