// The ECR operations Berth serves: for each, the IAM action it needs and which
// resource it acts on, so that authorization can be decided before the handler runs
// (api/app.cc), and the handler itself. The table is the single list of operations.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/policy.h"
#include "base/status.h"

namespace berth::api::ecr {

struct Ctx;  // handlers.h

// Where the resource a call acts on comes from.
enum class ResourceKind : uint8_t {
  kAccount,          // "*": not about one repository (GetAuthorizationToken)
  kRepository,       // the repository named by the `repositoryName` member
  kRepositoryNames,  // each repository of `repositoryNames`; "*" when absent
  kResourceArn,      // the repository whose ARN is the `resourceArn` member
};

using OperationHandler = boost::asio::awaitable<Result<boost::json::object>> (*)(
    Ctx& ctx, const boost::json::object& input);

struct OperationInfo {
  std::string_view name;    // "DescribeImages"
  std::string_view action;  // the IAM action it needs: "ecr:DescribeImages"
  ResourceKind resource;
  OperationHandler handler;
};

inline constexpr std::string_view kTargetPrefix = "AmazonEC2ContainerRegistry_V20150921.";

// The operation an X-Amz-Target header names; nullptr when unknown.
const OperationInfo* FindOperation(std::string_view target);
std::span<const OperationInfo> Operations();

// arn:aws:ecr:<region>:<account>:repository/<name>, built in one place.
using auth::RepositoryArn;

struct RepositoryArnParts {
  std::string region;
  std::string account;
  std::string name;
};
// kInvalidArgument (naming resourceArn) unless `arn` is a repository ARN.
Result<RepositoryArnParts> ParseRepositoryArn(std::string_view arn);

// The account a call acts on: the ARN's for kResourceArn operations, else the
// registryId member when given, else `caller_account`. kInvalidArgument for a
// malformed registryId or ARN.
Result<std::string> AccountOf(const OperationInfo& op, const boost::json::object& input,
                              std::string_view caller_account);
// The resources (repository ARNs, or "*") a call acts on in `account`, for the policy
// check. kInvalidArgument when the member naming them is missing or malformed.
Result<std::vector<std::string>> ResourcesOf(const OperationInfo& op,
                                             const boost::json::object& input,
                                             std::string_view account, std::string_view region);

}  // namespace berth::api::ecr
