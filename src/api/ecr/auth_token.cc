// GetAuthorizationToken.
#include "api/ecr/handlers.h"
#include "base/base64.h"
#include "auth/crypto.h"

namespace berth::api::ecr {

TokenMinter DefaultTokenMinter(const Clock& clock) {
  return [&clock](const auth::Caller&) -> Result<std::pair<std::string, int64_t>> {
    constexpr int64_t kTwelveHoursMs = 12LL * 3600 * 1000;
    return std::make_pair(Base64Encode("AWS:unauthenticated"),
                          clock.NowMillis() + kTwelveHoursMs);
  };
}

asio::awaitable<Output> GetAuthorizationToken(Ctx& ctx, const json::object& input) {
  // Minting may sign with a key: all of it runs on the pool.
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(const json::array* ids, in.OptList("registryIds", 1, 10));
    std::vector<std::string> registries;
    if (ids == nullptr) registries.push_back(ctx.account());
    for (size_t i = 0; ids != nullptr && i < ids->size(); ++i) {
      BERTH_ASSIGN_OR_RETURN(std::string id, in.StringItem(*ids, i, "registryIds", 12, 12));
      if (id.find_first_not_of("0123456789") != std::string::npos) {
        return InvalidMember("registryIds[" + std::to_string(i) + "]",
                             "Member must satisfy regular expression pattern: [0-9]{12}");
      }
      registries.push_back(std::move(id));
    }
    const TokenMinter& mint = ctx.options.token_minter;
    BERTH_ASSIGN_OR_RETURN(auto token,
                           mint ? mint(ctx.caller) : DefaultTokenMinter(ctx.clock)(ctx.caller));
    json::array data;
    for (size_t i = 0; i < registries.size(); ++i) {
      data.push_back(json::object{{"authorizationToken", token.first},
                                  {"expiresAt", Timestamp(token.second)},
                                  {"proxyEndpoint", ctx.options.public_url}});
    }
    return json::object{{"authorizationData", std::move(data)}};
  });
}

}  // namespace berth::api::ecr
