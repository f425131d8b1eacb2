// CreateRepository, DescribeRepositories, DeleteRepository, PutImageTagMutability.
#include "api/ecr/handlers.h"
#include "api/ecr/pagination.h"
#include "registry/tag_rules.h"

namespace berth::api::ecr {
namespace {

constexpr std::string_view kEncryptionTypes[] = {"AES256", "KMS", "KMS_DSSE"};

// The repository a CreateRepository request describes.
Result<storage::RepositoryRecord> DecodeNewRepository(const Ctx& ctx, const Reader& in) {
  storage::RepositoryRecord repo;
  BERTH_ASSIGN_OR_RETURN(repo.name, RepositoryNameMember(in));
  repo.account_id = ctx.account();
  BERTH_ASSIGN_OR_RETURN(repo.tag_mutability, DecodeTagMutability(in, false));
  BERTH_ASSIGN_OR_RETURN(auto scanning, in.OptStruct("imageScanningConfiguration"));
  if (scanning) {
    BERTH_ASSIGN_OR_RETURN(repo.scan_on_push, scanning->Bool("scanOnPush", false));
  }
  BERTH_ASSIGN_OR_RETURN(auto encryption, in.OptStruct("encryptionConfiguration"));
  if (encryption) {
    // Recorded as given: encryption at rest is the storage's business.
    BERTH_RETURN_IF_ERROR(encryption->String("encryptionType").status());
    BERTH_ASSIGN_OR_RETURN(auto type, encryption->OptEnum("encryptionType", kEncryptionTypes));
    BERTH_ASSIGN_OR_RETURN(auto key, encryption->OptString("kmsKey", 1, 2048));
    if (key && *type == "AES256") {
      return InvalidMember(encryption->Path("kmsKey"),
                           "Member is only allowed with the KMS or KMS_DSSE encryption type");
    }
    repo.encryption_type = *type;
    repo.kms_key = key.value_or("");
  }
  BERTH_ASSIGN_OR_RETURN(repo.tags, DecodeResourceTags(in, "tags"));
  return repo;
}

}  // namespace

asio::awaitable<Output> CreateRepository(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    BERTH_ASSIGN_OR_RETURN(storage::RepositoryRecord repo, DecodeNewRepository(ctx, Reader(input)));
    BERTH_ASSIGN_OR_RETURN(repo, ctx.registry.CreateRepository(std::move(repo)));
    return json::object{{"repository", RepositoryShape(repo, ctx.options)}};
  });
}

asio::awaitable<Output> DescribeRepositories(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(const json::array* names, in.OptList("repositoryNames", 1, 100));
    json::array repositories;
    if (names != nullptr) {
      if (in.Has("maxResults") || in.Has("nextToken")) {
        return InvalidMember("maxResults", "Member cannot be used together with repositoryNames");
      }
      for (size_t i = 0; i < names->size(); ++i) {
        BERTH_ASSIGN_OR_RETURN(std::string name,
                               in.StringItem(*names, i, "repositoryNames", 2, 256));
        BERTH_ASSIGN_OR_RETURN(auto repo, ctx.registry.GetRepository(ctx.account(), name));
        repositories.push_back(RepositoryShape(repo, ctx.options));
      }
      return json::object{{"repositories", std::move(repositories)}};
    }
    std::string scope = "DescribeRepositories:" + ctx.account();
    BERTH_ASSIGN_OR_RETURN(PageRequest page, DecodePage(in, scope, 100));
    std::string after = page.after.empty() ? std::string() : page.after.front();
    // One more than the page: whether there is a next page, without an empty last one.
    BERTH_ASSIGN_OR_RETURN(auto repos,
                           ctx.registry.ListRepositories(ctx.account(), after, page.limit + 1));
    bool more = repos.size() > page.limit;
    if (more) repos.resize(page.limit);
    for (const auto& r : repos) repositories.push_back(RepositoryShape(r, ctx.options));
    json::object out{{"repositories", std::move(repositories)}};
    if (more) out["nextToken"] = EncodePageToken(scope, {repos.back().name});
    return out;
  });
}

asio::awaitable<Output> DeleteRepository(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string name, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(bool force, in.Bool("force", false));
    BERTH_ASSIGN_OR_RETURN(auto repo, ctx.registry.DeleteRepository(ctx.account(), name, force));
    return json::object{{"repository", RepositoryShape(repo, ctx.options)}};
  });
}

asio::awaitable<Output> PutImageTagMutability(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string name, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(storage::TagMutabilitySetting setting, DecodeTagMutability(in, true));
    BERTH_ASSIGN_OR_RETURN(auto repo, ctx.registry.SetTagMutability(ctx.account(), name, setting));
    json::object out{{"registryId", repo.account_id},
                     {"repositoryName", repo.name},
                     {"imageTagMutability", registry::TagMutabilityName(setting.mode)}};
    if (!setting.exclusion_filters.empty()) {
      out["imageTagMutabilityExclusionFilters"] = ImageTagMutabilityFiltersShape(setting);
    }
    return out;
  });
}

}  // namespace berth::api::ecr
