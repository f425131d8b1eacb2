#include "api/app.h"

#include <variant>

#include "api/distribution/errors.h"
#include "api/distribution/handlers.h"
#include "auth/policy.h"

namespace berth::api {

namespace bhttp = http::bhttp;
using bhttp::verb;
using distribution::Route;

namespace {

// The ECR exception a SigV4 failure is reported as.
std::string_view SigV4Exception(auth::SigV4Error e) {
  switch (e) {
    case auth::SigV4Error::kMissingAuthentication: return "MissingAuthenticationTokenException";
    case auth::SigV4Error::kMalformed:
    case auth::SigV4Error::kHeaderNotSigned: return "IncompleteSignatureException";
    case auth::SigV4Error::kUnknownAccessKey: return "UnrecognizedClientException";
    case auth::SigV4Error::kInternal: return "ServerException";
    default: return "InvalidSignatureException";
  }
}

// The ECR action a /v2 request needs (pull, push, delete, catalog), or empty when
// being authenticated is enough (the /v2/ ping).
std::string_view RegistryAction(Route route, verb method) {
  switch (route) {
    case Route::kCatalog: return "ecr:DescribeRepositories";
    case Route::kTags:
    case Route::kReferrers: return "ecr:BatchGetImage";
    case Route::kManifest:
      if (method == verb::put) return "ecr:PutImage";
      if (method == verb::delete_) return "ecr:BatchDeleteImage";
      return "ecr:BatchGetImage";
    case Route::kBlob:
      if (method == verb::head) return "ecr:BatchCheckLayerAvailability";
      if (method == verb::delete_) return "ecr:BatchDeleteImage";
      return "ecr:GetDownloadUrlForLayer";
    case Route::kUploadStart: return "ecr:InitiateLayerUpload";
    case Route::kUpload:
      if (method == verb::put) return "ecr:CompleteLayerUpload";
      return "ecr:UploadLayerPart";
    default: return "";
  }
}

}  // namespace

App::App(distribution::DistributionApi& distribution, ecr::EcrApi& ecr, Authenticator& authn,
         registry::Registry& registry, http::BlockingPool& pool)
    : distribution_(distribution), ecr_(ecr), authn_(authn), registry_(registry), pool_(pool) {}

boost::asio::awaitable<http::Response> App::Handle(http::Request& req) {
  if (ecr::EcrApi::IsEcrRequest(req)) co_return co_await HandleEcr(req);
  if (ecr::EcrApi::IsDownloadRequest(req)) {
    // The URL is presigned: its signature is the authorization.
    co_return co_await ecr_.HandleDownload(req);
  }
  co_return co_await HandleRegistry(req);
}

http::Response App::ProtocolError(const http::Request* req, int status,
                                  const std::string& message) {
  if (req != nullptr && ecr::EcrApi::IsEcrRequest(*req)) {
    return ecr::EcrApi::ProtocolError(*req, status, message);
  }
  return distribution::ProtocolErrorResponse(status, message);
}

boost::asio::awaitable<http::Response> App::HandleEcr(http::Request& req) {
  auth::Caller provisional;
  provisional.unrestricted = !authn_.enabled();
  auto decoded = co_await ecr_.Decode(req, provisional);
  if (auto* res = std::get_if<http::Response>(&decoded)) co_return std::move(*res);
  ecr::EcrCall& call = std::get<ecr::EcrCall>(decoded);
  if (!authn_.enabled()) co_return co_await ecr_.Execute(req, provisional, call);

  // On the pool: with a shared metadata store the identities may be re-read from it.
  auto caller = co_await pool_.Run([&] { return authn_.AuthenticateEcr(req, call.body_sha256); });
  if (!caller.ok()) {
    co_return ecr_.Refuse(req, SigV4Exception(caller.kind()), caller.status().message());
  }
  // The account and resources depend on who is asking (a call without registryId acts
  // in the caller's own account).
  if (Status st = ecr_.Resolve(call, caller.value()); !st.ok()) {
    co_return ecr_.Refuse(req, "InvalidParameterException", st.message());
  }
  for (const std::string& resource : call.resources) {
    std::optional<std::string> policy;
    if (resource != "*") {
      auto slash = resource.find(":repository/");
      if (slash != std::string::npos) {
        std::string name = resource.substr(slash + 12);
        auto repo = co_await pool_.Run([&] { return registry_.FindRepository(name); });
        if (repo.ok() && repo->account_id == call.account) policy = repo->policy;
      }
    }
    Status st = co_await pool_.Run([&] {
      return authn_.Authorize(caller.value(), call.operation->action, resource, call.account,
                              policy);
    });
    if (!st.ok()) co_return ecr_.Refuse(req, "AccessDeniedException", st.message());
  }
  co_return co_await ecr_.Execute(req, caller.value(), call);
}

boost::asio::awaitable<Status> App::AuthorizeRepository(const auth::Caller& caller,
                                                        std::string_view action,
                                                        const std::string& name) {
  // The lookup and the check in one trip to the pool: both may block.
  co_return co_await pool_.Run([&] {
    auto repo = registry_.FindRepository(name);
    // A repository that does not exist yet (a push with create-on-push) belongs to the
    // caller's account; a pull of it fails later with NAME_UNKNOWN.
    std::string owner = repo.ok() ? repo->account_id : caller.account_id;
    std::optional<std::string> policy = repo.ok() ? repo->policy : std::nullopt;
    std::string arn =
        auth::RepositoryArn(ecr_.options().region, owner.empty() ? caller.account_id : owner, name);
    return authn_.Authorize(caller, action, arn, owner, policy);
  });
}

boost::asio::awaitable<http::Response> App::HandleRegistry(http::Request& req) {
  // Without authentication the route matters only to the handler (which matches it).
  if (!authn_.enabled()) co_return co_await distribution_.Handle(req);
  distribution::RouteMatch m = distribution::MatchRoute(req.path);
  bool open = m.route == Route::kHealthz || m.route == Route::kReadyz ||
              m.route == Route::kMetrics || m.route == Route::kNotFound;
  if (open) co_return co_await distribution_.Handle(req);

  auto caller = co_await pool_.Run([&] { return authn_.AuthenticateRegistry(req); });
  if (!caller.ok()) {
    req.route = distribution::RouteName(m.route);
    co_return authn_.Challenge(caller.status());
  }
  std::string_view action = RegistryAction(m.route, req.method);
  if (!action.empty()) {
    Status st;
    if (m.route == Route::kCatalog) {
      st = co_await pool_.Run([&] {
        return authn_.Authorize(*caller, action, "*", caller->account_id, std::nullopt);
      });
      // The catalog lists only the caller's account's repositories.
      req.account_scope = caller->account_id;
    } else {
      st = co_await AuthorizeRepository(*caller, action, m.name);
      // A mount reads the source repository: the caller must be allowed to pull from it.
      // If not, the mount is not attempted and the client uploads the blob instead.
      if (st.ok() && m.route == Route::kUploadStart) {
        if (auto from = req.Query("from"); from && req.HasQuery("mount")) {
          Status pull = co_await AuthorizeRepository(*caller, "ecr:GetDownloadUrlForLayer",
                                                     std::string(*from));
          if (!pull.ok()) {
            std::erase_if(req.query, [](const auto& kv) {
              return kv.first == "mount" || kv.first == "from";
            });
          }
        }
      }
    }
    if (!st.ok()) {
      req.route = distribution::RouteName(m.route);
      http::Response res = distribution::ErrorResponse(Status(Code::kDenied, st.message()));
      co_return res;
    }
  }
  co_return co_await distribution_.Handle(req);
}

}  // namespace berth::api
