// Encoders and decoders of shapes several ECR operations share.
#include <algorithm>
#include <set>

#include "api/ecr/handlers.h"
#include "api/ecr/pagination.h"
#include "registry/tag_rules.h"

namespace berth::api::ecr {
namespace {

constexpr std::string_view kMutabilityValues[] = {
    "MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"};
constexpr std::string_view kFilterTypes[] = {"WILDCARD"};

Result<storage::TagMutability> ParseMutability(std::string_view s) {
  using storage::TagMutability;
  for (TagMutability m :
       {TagMutability::kMutable, TagMutability::kImmutable, TagMutability::kImmutableWithExclusion,
        TagMutability::kMutableWithExclusion}) {
    if (registry::TagMutabilityName(m) == s) return m;
  }
  return InvalidMember("imageTagMutability", "Member must satisfy enum value set");
}

bool IsFilterChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
         c == '_' || c == '*' || c == '-';
}

Status InvalidTag(std::string why) {
  return Status(Code::kTagInvalid, "Invalid tag parameter: " + std::move(why));
}

}  // namespace

json::value Timestamp(int64_t ms) {
  if (ms % 1000 == 0) return json::value(ms / 1000);
  return json::value(static_cast<double>(ms) / 1000.0);
}

std::string RepositoryUri(const EcrOptions& options, std::string_view name) {
  std::string_view host = options.public_url;
  if (auto scheme = host.find("://"); scheme != std::string_view::npos) {
    host.remove_prefix(scheme + 3);
  }
  while (!host.empty() && host.back() == '/') host.remove_suffix(1);
  return std::string(host) + "/" + std::string(name);
}

json::array ImageTagMutabilityFiltersShape(const storage::TagMutabilitySetting& setting) {
  json::array filters;
  for (const auto& f : setting.exclusion_filters) {
    filters.push_back(json::object{{"filterType", "WILDCARD"}, {"filter", f}});
  }
  return filters;
}

json::object RepositoryShape(const storage::RepositoryRecord& repo, const EcrOptions& options) {
  json::object r;
  r["repositoryArn"] = RepositoryArn(options.region, repo.account_id, repo.name);
  r["registryId"] = repo.account_id;
  r["repositoryName"] = repo.name;
  r["repositoryUri"] = RepositoryUri(options, repo.name);
  r["createdAt"] = Timestamp(repo.created_at_ms);
  r["imageTagMutability"] = registry::TagMutabilityName(repo.tag_mutability.mode);
  if (!repo.tag_mutability.exclusion_filters.empty()) {
    r["imageTagMutabilityExclusionFilters"] = ImageTagMutabilityFiltersShape(repo.tag_mutability);
  }
  r["imageScanningConfiguration"] = json::object{{"scanOnPush", repo.scan_on_push}};
  json::object enc{{"encryptionType", repo.encryption_type}};
  if (!repo.kms_key.empty()) enc["kmsKey"] = repo.kms_key;
  r["encryptionConfiguration"] = std::move(enc);
  return r;
}

json::object ImageIdShape(std::string_view digest, std::string_view tag) {
  json::object id;
  if (!digest.empty()) id["imageDigest"] = digest;
  if (!tag.empty()) id["imageTag"] = tag;
  return id;
}

json::array ResourceTagsShape(const std::vector<storage::ResourceTag>& tags) {
  json::array out;
  for (const auto& t : tags) out.push_back(json::object{{"Key", t.key}, {"Value", t.value}});
  return out;
}

Result<storage::TagMutabilitySetting> DecodeTagMutability(const Reader& in, bool required) {
  storage::TagMutabilitySetting setting;
  if (required) BERTH_RETURN_IF_ERROR(in.String("imageTagMutability").status());
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> mode,
                         in.OptEnum("imageTagMutability", kMutabilityValues));
  if (mode) {
    BERTH_ASSIGN_OR_RETURN(setting.mode, ParseMutability(*mode));
  }
  BERTH_ASSIGN_OR_RETURN(const json::array* filters,
                         in.OptList("imageTagMutabilityExclusionFilters", 1, 5));
  bool exclusion_mode = setting.mode == storage::TagMutability::kImmutableWithExclusion ||
                        setting.mode == storage::TagMutability::kMutableWithExclusion;
  if (filters == nullptr) {
    if (exclusion_mode) {
      return InvalidMember(in.Path("imageTagMutabilityExclusionFilters"),
                           "Member must not be null when imageTagMutability is " +
                               std::string(registry::TagMutabilityName(setting.mode)));
    }
    return setting;
  }
  if (!exclusion_mode) {
    return InvalidMember(in.Path("imageTagMutabilityExclusionFilters"),
                         "Member is only allowed with IMMUTABLE_WITH_EXCLUSION or "
                         "MUTABLE_WITH_EXCLUSION");
  }
  for (size_t i = 0; i < filters->size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(Reader f,
                           in.StructItem(*filters, i, "imageTagMutabilityExclusionFilters"));
    BERTH_RETURN_IF_ERROR(f.String("filterType").status());
    BERTH_RETURN_IF_ERROR(f.OptEnum("filterType", kFilterTypes).status());
    BERTH_ASSIGN_OR_RETURN(std::string filter, f.String("filter", 1, 128));
    if (!std::all_of(filter.begin(), filter.end(), IsFilterChar)) {
      return InvalidMember(
          f.Path("filter"),
          "Member must satisfy regular expression pattern: ^[0-9a-zA-Z._*-]{1,128}$");
    }
    setting.exclusion_filters.push_back(std::move(filter));
  }
  return setting;
}

Result<std::vector<storage::ResourceTag>> DecodeResourceTags(const Reader& in,
                                                             std::string_view key) {
  std::vector<storage::ResourceTag> tags;
  BERTH_ASSIGN_OR_RETURN(const json::array* list, in.OptList(key, 0, kUnbounded));
  if (list == nullptr) return tags;
  if (list->size() > registry::kMaxRepositoryTags) {
    return Status(Code::kOutOfRange, "a repository may carry at most " +
                                         std::to_string(registry::kMaxRepositoryTags) +
                                         " tags; the request has " + std::to_string(list->size()));
  }
  std::set<std::string> keys;
  for (size_t i = 0; i < list->size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(Reader t, in.StructItem(*list, i, key));
    auto k = t.String("Key");
    auto v = t.String("Value");
    if (!k.ok()) return InvalidTag(k.status().message());
    if (!v.ok()) return InvalidTag(v.status().message());
    if (k->empty() || k->size() > 128) {
      return InvalidTag("tag keys must be 1 to 128 characters long");
    }
    if (v->size() > 256) return InvalidTag("tag values must be at most 256 characters long");
    if (k->starts_with("aws:")) return InvalidTag("the prefix 'aws:' is reserved: " + *k);
    if (!keys.insert(*k).second) return InvalidTag("duplicate tag key: " + *k);
    tags.push_back({std::move(*k), std::move(*v)});
  }
  return tags;
}

Result<PageRequest> DecodePage(const Reader& in, std::string_view scope, size_t default_limit) {
  PageRequest page{default_limit, {}};
  BERTH_ASSIGN_OR_RETURN(std::optional<int64_t> max, in.OptInteger("maxResults", 1, 1000));
  if (max) page.limit = static_cast<size_t>(*max);
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> token, in.OptString("nextToken"));
  if (token) {
    BERTH_ASSIGN_OR_RETURN(page.after, DecodePageToken(*token, scope));
  }
  return page;
}

}  // namespace berth::api::ecr
