// SetRepositoryPolicy, GetRepositoryPolicy, DeleteRepositoryPolicy.
#include "api/ecr/handlers.h"

namespace berth::api::ecr {
namespace {

json::object PolicyShape(const Ctx& ctx, const std::string& repo, std::string policy) {
  return json::object{
      {"registryId", ctx.account()}, {"repositoryName", repo}, {"policyText", std::move(policy)}};
}

}  // namespace

asio::awaitable<Output> SetRepositoryPolicy(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(std::string policy, in.String("policyText", 0, 10240));
    // `force` skips ECR's check that the policy does not lock the caller out; Berth
    // has no such check, so it is accepted and changes nothing.
    BERTH_RETURN_IF_ERROR(in.Bool("force", false).status());
    BERTH_RETURN_IF_ERROR(ctx.registry.SetRepositoryPolicy(ctx.account(), repo, policy));
    return PolicyShape(ctx, repo, std::move(policy));
  });
}

asio::awaitable<Output> GetRepositoryPolicy(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(Reader(input)));
    BERTH_ASSIGN_OR_RETURN(std::string policy,
                           ctx.registry.GetRepositoryPolicy(ctx.account(), repo));
    return PolicyShape(ctx, repo, std::move(policy));
  });
}

asio::awaitable<Output> DeleteRepositoryPolicy(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(Reader(input)));
    BERTH_ASSIGN_OR_RETURN(std::string policy,
                           ctx.registry.DeleteRepositoryPolicy(ctx.account(), repo));
    return PolicyShape(ctx, repo, std::move(policy));
  });
}

}  // namespace berth::api::ecr
