#include "api/ecr/operations.h"

#include "api/ecr/fields.h"
#include "api/ecr/handlers.h"

namespace berth::api::ecr {
namespace {

using enum ResourceKind;

constexpr OperationInfo kOperations[] = {
    {"GetAuthorizationToken", "ecr:GetAuthorizationToken", kAccount, GetAuthorizationToken},
    // repositories.cc
    {"CreateRepository", "ecr:CreateRepository", kRepository, CreateRepository},
    {"DescribeRepositories", "ecr:DescribeRepositories", kRepositoryNames, DescribeRepositories},
    {"DeleteRepository", "ecr:DeleteRepository", kRepository, DeleteRepository},
    {"PutImageTagMutability", "ecr:PutImageTagMutability", kRepository, PutImageTagMutability},
    // images.cc
    {"DescribeImages", "ecr:DescribeImages", kRepository, DescribeImages},
    {"ListImages", "ecr:ListImages", kRepository, ListImages},
    {"BatchGetImage", "ecr:BatchGetImage", kRepository, BatchGetImage},
    {"PutImage", "ecr:PutImage", kRepository, PutImage},
    {"BatchDeleteImage", "ecr:BatchDeleteImage", kRepository, BatchDeleteImage},
    // layers.cc
    {"BatchCheckLayerAvailability", "ecr:BatchCheckLayerAvailability", kRepository,
     BatchCheckLayerAvailability},
    {"InitiateLayerUpload", "ecr:InitiateLayerUpload", kRepository, InitiateLayerUpload},
    {"UploadLayerPart", "ecr:UploadLayerPart", kRepository, UploadLayerPart},
    {"CompleteLayerUpload", "ecr:CompleteLayerUpload", kRepository, CompleteLayerUpload},
    {"GetDownloadUrlForLayer", "ecr:GetDownloadUrlForLayer", kRepository, GetDownloadUrlForLayer},
    // policies.cc
    {"SetRepositoryPolicy", "ecr:SetRepositoryPolicy", kRepository, SetRepositoryPolicy},
    {"GetRepositoryPolicy", "ecr:GetRepositoryPolicy", kRepository, GetRepositoryPolicy},
    {"DeleteRepositoryPolicy", "ecr:DeleteRepositoryPolicy", kRepository, DeleteRepositoryPolicy},
    // tags.cc
    {"TagResource", "ecr:TagResource", kResourceArn, TagResource},
    {"UntagResource", "ecr:UntagResource", kResourceArn, UntagResource},
    {"ListTagsForResource", "ecr:ListTagsForResource", kResourceArn, ListTagsForResource},
};

bool IsAccountId(std::string_view s) {
  if (s.size() != 12) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

const OperationInfo* FindOperation(std::string_view target) {
  if (!target.starts_with(kTargetPrefix)) return nullptr;
  target.remove_prefix(kTargetPrefix.size());
  for (const OperationInfo& op : kOperations) {
    if (op.name == target) return &op;
  }
  return nullptr;
}

std::span<const OperationInfo> Operations() { return kOperations; }

Result<RepositoryArnParts> ParseRepositoryArn(std::string_view arn) {
  auto invalid = [&] {
    return InvalidMember("resourceArn",
                         "Member must be a repository ARN "
                         "(arn:aws:ecr:<region>:<account>:repository/<name>)");
  };
  constexpr std::string_view kPrefix = "arn:aws:ecr:";
  if (!arn.starts_with(kPrefix)) return invalid();
  arn.remove_prefix(kPrefix.size());
  size_t colon = arn.find(':');
  if (colon == std::string_view::npos || colon == 0) return invalid();
  RepositoryArnParts parts;
  parts.region = std::string(arn.substr(0, colon));
  arn.remove_prefix(colon + 1);
  colon = arn.find(':');
  if (colon == std::string_view::npos) return invalid();
  parts.account = std::string(arn.substr(0, colon));
  arn.remove_prefix(colon + 1);
  constexpr std::string_view kResource = "repository/";
  if (!IsAccountId(parts.account) || !arn.starts_with(kResource)) return invalid();
  parts.name = std::string(arn.substr(kResource.size()));
  if (parts.name.empty()) return invalid();
  return parts;
}

Result<std::string> AccountOf(const OperationInfo& op, const boost::json::object& input,
                              std::string_view caller_account) {
  Reader in(input);
  if (op.resource == kResourceArn) {
    BERTH_ASSIGN_OR_RETURN(std::string arn, in.String("resourceArn"));
    BERTH_ASSIGN_OR_RETURN(RepositoryArnParts parts, ParseRepositoryArn(arn));
    return parts.account;
  }
  if (op.resource == kAccount) return std::string(caller_account);
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> id, RegistryIdMember(in));
  return id ? *id : std::string(caller_account);
}

Result<std::vector<std::string>> ResourcesOf(const OperationInfo& op,
                                             const boost::json::object& input,
                                             std::string_view account, std::string_view region) {
  Reader in(input);
  switch (op.resource) {
    case kAccount: return std::vector<std::string>{"*"};
    case kRepository: {
      BERTH_ASSIGN_OR_RETURN(std::string name, RepositoryNameMember(in));
      return std::vector<std::string>{RepositoryArn(region, account, name)};
    }
    case kRepositoryNames: {
      BERTH_ASSIGN_OR_RETURN(const boost::json::array* names,
                             in.OptList("repositoryNames", 1, 100));
      if (names == nullptr) return std::vector<std::string>{"*"};
      std::vector<std::string> out;
      for (size_t i = 0; i < names->size(); ++i) {
        BERTH_ASSIGN_OR_RETURN(std::string name,
                               in.StringItem(*names, i, "repositoryNames", 2, 256));
        out.push_back(RepositoryArn(region, account, name));
      }
      return out;
    }
    case kResourceArn: {
      BERTH_ASSIGN_OR_RETURN(std::string arn, in.String("resourceArn"));
      BERTH_ASSIGN_OR_RETURN(RepositoryArnParts parts, ParseRepositoryArn(arn));
      return std::vector<std::string>{RepositoryArn(parts.region, parts.account, parts.name)};
    }
  }
  return std::vector<std::string>{"*"};
}

}  // namespace berth::api::ecr
