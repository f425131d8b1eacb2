// The ECR control plane (AWS JSON 1.1): `POST /` with
// `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>` and a JSON body.
//
// A request goes through two steps, so that authorization can sit between them
// (api/app.cc):
//   Decode  — reads the body and finds the operation (operations.h: the IAM action it
//             needs), its JSON input, the account it acts on and the resources
//             (repository ARNs, or "*") it touches;
//   Execute — runs the operation's handler, a thin coroutine that calls the Registry
//             on the blocking pool and encodes the result.
// Failures are ECR exceptions (errors.h), answered as HTTP 400 (500 for
// ServerException). Also serves the presigned layer downloads that
// GetDownloadUrlForLayer hands out (GET /ecr-download/<token>, download_url.h).
//
// Thread-safe: one EcrApi serves every connection.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "api/ecr/operations.h"
#include "auth/caller.h"
#include "base/clock.h"
#include "http/blocking.h"
#include "http/message.h"
#include "registry/registry.h"

namespace berth::api::ecr {

namespace asio = boost::asio;

// Mints what GetAuthorizationToken returns for a caller: the authorizationToken
// (base64 of "AWS:<password>") and its expiry in epoch milliseconds. Called on the
// blocking pool, possibly concurrently: must be thread-safe.
using TokenMinter = std::function<Result<std::pair<std::string, int64_t>>(const auth::Caller&)>;

// base64("AWS:unauthenticated"), expiring 12 hours from now: a placeholder until
// registry tokens are wired in.
TokenMinter DefaultTokenMinter(const Clock& clock);

struct EcrOptions {
  // The account of callers without one (unauthenticated, or authentication off).
  // Default: "000000000000".
  std::string default_account_id = "000000000000";
  // The region in ARNs. Default: "us-east-1".
  std::string region = "us-east-1";
  // Where clients reach this registry, without a trailing '/': repositoryUri,
  // proxyEndpoint and download URLs derive from it. Default: "http://127.0.0.1:5000".
  std::string public_url = "http://127.0.0.1:5000";
  // Largest request body (UploadLayerPart carries up to 20 MiB, base64-encoded).
  // Default: 32 MiB.
  uint64_t max_request_bytes = 32 * 1024 * 1024;
  // Lifetime of GetDownloadUrlForLayer's URLs. Default: 3600.
  int64_t download_url_ttl_seconds = 3600;
  // HMAC key signing download URLs; must not be empty. Nodes behind one load balancer
  // need the same key.
  std::string download_url_key;
  // Empty: DefaultTokenMinter.
  TokenMinter token_minter;
};

// A decoded ECR request: what authorization needs and what the handler runs on.
struct EcrCall {
  const OperationInfo* operation = nullptr;
  boost::json::object input;
  std::string account;                 // the registry (account id) the call acts on
  std::vector<std::string> resources;  // repository ARNs, or "*"
  std::string body_sha256;             // lower-case hex SHA-256 of the body, for SigV4
};

class EcrApi {
 public:
  EcrApi(registry::Registry& registry, http::BlockingPool& pool, const Clock& clock,
         EcrOptions options);
  EcrApi(const EcrApi&) = delete;
  EcrApi& operator=(const EcrApi&) = delete;

  const EcrOptions& options() const { return options_; }

  // `POST /`: every ECR call (with or without a valid X-Amz-Target).
  static bool IsEcrRequest(const http::Request& req);
  // `GET|HEAD /ecr-download/<token>`.
  static bool IsDownloadRequest(const http::Request& req);
  // An ECR call the HTTP layer refuses before it is decoded (ambiguous framing, a
  // malformed chunked body): a SerializationException with that HTTP status.
  static http::Response ProtocolError(const http::Request& req, int http_status,
                                      const std::string& message);

  // The call, or the error response when the request is not a valid ECR call
  // (UnknownOperationException, SerializationException, InvalidParameterException).
  asio::awaitable<std::variant<EcrCall, http::Response>> Decode(http::Request& req,
                                                                const auth::Caller& caller);
  asio::awaitable<http::Response> Execute(http::Request& req, const auth::Caller& caller,
                                          const EcrCall& call);
  // Decode, then Execute.
  asio::awaitable<http::Response> Handle(http::Request& req, const auth::Caller& caller);
  asio::awaitable<http::Response> HandleDownload(http::Request& req);

  // Fills call.account and call.resources for `caller` (Decode does it for the caller
  // it is given; after authentication the App resolves again for the real caller).
  Status Resolve(EcrCall& call, const auth::Caller& caller) const;
  // An ECR error response of exception `type` (authentication and authorization
  // failures decided outside the operation handlers).
  http::Response Refuse(const http::Request& req, std::string_view type,
                        const std::string& message) const;

  // The account a caller acts in when a request names none.
  std::string CallerAccount(const auth::Caller& caller) const;

 private:
  registry::Registry& registry_;
  http::BlockingPool& pool_;
  const Clock& clock_;
  EcrOptions options_;
};

}  // namespace berth::api::ecr
