#include "api/authn.h"

#include <spdlog/spdlog.h>

#include "api/distribution/errors.h"

namespace berth::api {

namespace bhttp = http::bhttp;

Authenticator::Authenticator(auth::IdentityStore* identities, auth::TokenKeySource* keys,
                             const Clock& clock, AuthOptions options)
    : identities_(identities), keys_(keys), clock_(clock), options_(std::move(options)) {}

Result<auth::Caller> Authenticator::AuthenticateRegistry(const http::Request& req) {
  if (!options_.enabled) {
    auth::Caller c;
    c.unrestricted = true;
    return c;
  }
  std::string_view header = req.Header(bhttp::field::authorization);
  if (header.empty()) {
    return Status(Code::kUnauthorized,
                  "authentication required: log in with `aws ecr get-login-password | docker "
                  "login --username AWS --password-stdin HOST`");
  }
  auto basic = auth::ParseBasicAuthorization(header);
  if (!basic.ok()) {
    return Status(Code::kUnauthorized,
                  "unsupported Authorization header: use Basic credentials from "
                  "GetAuthorizationToken (user AWS)");
  }
  auto verified = auth::VerifyToken(basic->password, *keys_->Current(), clock_);
  if (!verified.ok()) {
    spdlog::debug("registry token refused reason={} request_id={}",
                  auth::TokenErrorName(verified.kind()), req.request_id);
    std::string why = verified.kind() == auth::TokenError::kExpired
                          ? "the registry token has expired; log in again"
                          : "invalid registry credentials; log in again with a token from "
                            "GetAuthorizationToken";
    return Status(Code::kUnauthorized, why);
  }
  auth::Caller caller = verified.value().caller;
  // A token outlives nothing: the key that minted it must still exist.
  auto identity = identities_->Lookup(caller.access_key_id);
  if (!identity.ok()) {
    return Status(Code::kUnauthorized,
                  "the access key behind this registry token no longer exists; log in again");
  }
  return (*identity)->ToCaller();
}

http::Response Authenticator::Challenge(const Status& why) const {
  http::Response res = distribution::ErrorResponse(why);
  res.status = bhttp::status::unauthorized;
  res.headers.set(bhttp::field::www_authenticate,
                  "Basic realm=\"" + options_.realm + "\",service=\"ecr.amazonaws.com\"");
  return res;
}

auth::AuthResult<auth::Caller, auth::SigV4Error> Authenticator::AuthenticateEcr(
    const http::Request& req, std::string_view body_sha256) {
  if (!options_.enabled) {
    auth::Caller c;
    c.unrestricted = true;
    return c;
  }
  auth::SigV4Request sreq;
  sreq.method = req.method_string;
  std::string_view target = req.target;
  auto q = target.find('?');
  sreq.path = target.substr(0, q);
  sreq.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  for (const auto& f : *req.headers) {
    sreq.headers.emplace_back(std::string_view(f.name_string()), std::string_view(f.value()));
  }
  sreq.payload_sha256 = std::string(body_sha256);
  auth::SigV4Options sopts;
  sopts.region = options_.region;
  // What the call does travels in x-amz-target (and how its body reads in
  // content-type): unsigned, a signature could be replayed as any other operation.
  sopts.signed_when_present = {"x-amz-target", "content-type"};
  auto verified =
      auth::VerifySigV4(sreq, auth::MakeCredentialLookup(*identities_), clock_, sopts);
  if (!verified.ok()) {
    return auth::AuthResult<auth::Caller, auth::SigV4Error>(verified.kind(), verified.status());
  }
  return verified.value().caller;
}

Status Authenticator::Authorize(const auth::Caller& caller, std::string_view action,
                                std::string_view resource_arn, std::string_view resource_account,
                                const std::optional<std::string>& repository_policy) {
  if (caller.unrestricted || !options_.enabled) return {};
  auto identity = identities_->Lookup(caller.access_key_id);
  if (!identity.ok()) {
    return Status(Code::kDenied, "the access key " + caller.access_key_id + " no longer exists");
  }
  std::optional<auth::Policy> repo;
  if (repository_policy && !repository_policy->empty()) {
    auto parsed = auth::Policy::Parse(*repository_policy, auth::PolicyKind::kRepository);
    if (parsed.ok()) repo = std::move(*parsed);
  }
  auth::AccessRequest areq;
  areq.caller = caller;
  areq.action = std::string(action);
  areq.resource = std::string(resource_arn);
  areq.resource_account = std::string(resource_account);
  auth::Decision d = auth::Evaluate(areq, (*identity)->policies, repo ? &*repo : nullptr);
  if (!d.allowed) {
    spdlog::info("access denied principal={} action={} resource={} reason=\"{}\"",
                 caller.principal_arn, action, resource_arn, d.message);
  }
  return d.ToStatus();
}

Result<std::pair<std::string, int64_t>> Authenticator::MintToken(const auth::Caller& caller) {
  if (!options_.enabled || caller.unrestricted || !caller.authenticated) {
    // With authentication off any password works; hand out a recognisable one.
    return std::pair<std::string, int64_t>(
        auth::DockerAuthorizationToken("unauthenticated"),
        clock_.NowMillis() + options_.token_ttl_seconds * 1000);
  }
  BERTH_ASSIGN_OR_RETURN(auth::IssuedToken t,
                         auth::IssueToken(*keys_->Current(), caller, clock_,
                                          options_.token_ttl_seconds));
  return std::pair<std::string, int64_t>(auth::DockerAuthorizationToken(t.password),
                                         t.expires_at_seconds * 1000);
}

}  // namespace berth::api
