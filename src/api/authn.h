// Authenticator: turns a request's credentials into an auth::Caller and answers
// whether that caller may perform an ECR action on a resource. The one place where
// identities, registry tokens, SigV4 and policies meet the request path.
//
//  - /v2: `Authorization: Basic base64("AWS:<password>")`, the password being a registry
//    token from GetAuthorizationToken (docker login). No credentials → 401 with the
//    Basic challenge docker needs before it sends any.
//  - ECR API: SigV4 over the request and the SHA-256 of its body.
//  - A token or signature of a key that has since been deleted is refused.
//
// Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/auth_result.h"
#include "auth/caller.h"
#include "auth/identity_store.h"
#include "auth/sigv4.h"
#include "auth/token.h"
#include "base/clock.h"
#include "http/message.h"

namespace berth::api {

struct AuthOptions {
  // False = `--no-auth`: every request is unrestricted.
  bool enabled = true;
  // Realm of the Basic challenge (the registry's public URL + "/").
  std::string realm = "http://127.0.0.1:5000/";
  // Lifetime of registry tokens. Default: 12 h.
  int64_t token_ttl_seconds = 12 * 3600;
  // Region ECR API signatures must be scoped to (ecr.region). Empty accepts any.
  // Default: empty.
  std::string region;
};

class Authenticator {
 public:
  // `identities` and `keys` (the file or the shared key) may be null only when auth is
  // disabled; both must outlive the Authenticator.
  Authenticator(auth::IdentityStore* identities, auth::TokenKeySource* keys, const Clock& clock,
                AuthOptions options);

  bool enabled() const { return options_.enabled; }

  // /v2 requests: the caller, or kUnauthorized with a message for the client.
  Result<auth::Caller> AuthenticateRegistry(const http::Request& req);
  // The 401 response for a /v2 request without valid credentials.
  http::Response Challenge(const Status& why) const;

  // ECR API requests, given the hex SHA-256 of the body.
  auth::AuthResult<auth::Caller, auth::SigV4Error> AuthenticateEcr(const http::Request& req,
                                                                 std::string_view body_sha256);

  // OK, or kDenied with an AWS-style message. `resource_account` empty = the caller's.
  Status Authorize(const auth::Caller& caller, std::string_view action,
                   std::string_view resource_arn, std::string_view resource_account,
                   const std::optional<std::string>& repository_policy);

  // GetAuthorizationToken: base64("AWS:<password>") and its expiry (epoch ms).
  Result<std::pair<std::string, int64_t>> MintToken(const auth::Caller& caller);

 private:
  auth::IdentityStore* identities_;
  auth::TokenKeySource* keys_;
  const Clock& clock_;
  AuthOptions options_;
};

}  // namespace berth::api
