// TagResource, UntagResource, ListTagsForResource: resource tags of repositories,
// addressed by ARN.
#include "api/ecr/handlers.h"

namespace berth::api::ecr {
namespace {

// The repository a resourceArn names. Its account is the call's (operations.cc);
// another region's ARN names nothing here.
Result<std::string> RepositoryOfArn(const Ctx& ctx, const Reader& in) {
  BERTH_ASSIGN_OR_RETURN(std::string arn, in.String("resourceArn"));
  BERTH_ASSIGN_OR_RETURN(RepositoryArnParts parts, ParseRepositoryArn(arn));
  if (parts.region != ctx.options.region) {
    return InvalidMember("resourceArn",
                         "Member must name a repository of region " + ctx.options.region);
  }
  return parts.name;
}

}  // namespace

asio::awaitable<Output> TagResource(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryOfArn(ctx, in));
    BERTH_RETURN_IF_ERROR(in.List("tags", 0, kUnbounded).status());
    BERTH_ASSIGN_OR_RETURN(auto tags, DecodeResourceTags(in, "tags"));
    BERTH_RETURN_IF_ERROR(ctx.registry.TagRepository(ctx.account(), repo, tags));
    return json::object{};
  });
}

asio::awaitable<Output> UntagResource(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryOfArn(ctx, in));
    BERTH_ASSIGN_OR_RETURN(const json::array* list, in.List("tagKeys", 0, kUnbounded));
    std::vector<std::string> keys;
    for (size_t i = 0; i < list->size(); ++i) {
      auto key = in.StringItem(*list, i, "tagKeys");
      if (!key.ok()) return Status(Code::kTagInvalid, key.status().message());
      if (key->empty() || key->size() > 128) {
        return Status(Code::kTagInvalid,
                      "Invalid tag parameter: tag keys must be 1 to 128 "
                      "characters long");
      }
      keys.push_back(std::move(*key));
    }
    BERTH_RETURN_IF_ERROR(ctx.registry.UntagRepository(ctx.account(), repo, keys));
    return json::object{};
  });
}

asio::awaitable<Output> ListTagsForResource(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryOfArn(ctx, Reader(input)));
    BERTH_ASSIGN_OR_RETURN(auto record, ctx.registry.GetRepository(ctx.account(), repo));
    return json::object{{"tags", ResourceTagsShape(record.tags)}};
  });
}

}  // namespace berth::api::ecr
