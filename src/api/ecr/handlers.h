// Internal to api/ecr: the context handlers run in, the handlers themselves (one
// file per group of operations: auth_token.cc, repositories.cc, images.cc,
// layers.cc, policies.cc, tags.cc), and encoders of shapes several of them share
// (shapes.cc). Handlers are thin: decode and validate the input (fields.h), call the
// Registry on the blocking pool, encode the output. They return a Status on failure;
// the dispatcher maps it to an ECR exception (errors.h).
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/ecr/api.h"
#include "api/ecr/fields.h"

namespace berth::api::ecr {

namespace json = boost::json;

struct Ctx {
  registry::Registry& registry;
  http::BlockingPool& pool;
  const Clock& clock;
  const EcrOptions& options;
  const auth::Caller& caller;
  const EcrCall& call;

  const std::string& account() const { return call.account; }
};

using Output = Result<json::object>;

// auth_token.cc
asio::awaitable<Output> GetAuthorizationToken(Ctx& ctx, const json::object& input);
// repositories.cc
asio::awaitable<Output> CreateRepository(Ctx& ctx, const json::object& input);
asio::awaitable<Output> DescribeRepositories(Ctx& ctx, const json::object& input);
asio::awaitable<Output> DeleteRepository(Ctx& ctx, const json::object& input);
asio::awaitable<Output> PutImageTagMutability(Ctx& ctx, const json::object& input);
// images.cc
asio::awaitable<Output> DescribeImages(Ctx& ctx, const json::object& input);
asio::awaitable<Output> ListImages(Ctx& ctx, const json::object& input);
asio::awaitable<Output> BatchGetImage(Ctx& ctx, const json::object& input);
asio::awaitable<Output> PutImage(Ctx& ctx, const json::object& input);
asio::awaitable<Output> BatchDeleteImage(Ctx& ctx, const json::object& input);
// layers.cc
asio::awaitable<Output> BatchCheckLayerAvailability(Ctx& ctx, const json::object& input);
asio::awaitable<Output> InitiateLayerUpload(Ctx& ctx, const json::object& input);
asio::awaitable<Output> UploadLayerPart(Ctx& ctx, const json::object& input);
asio::awaitable<Output> CompleteLayerUpload(Ctx& ctx, const json::object& input);
asio::awaitable<Output> GetDownloadUrlForLayer(Ctx& ctx, const json::object& input);
// policies.cc
asio::awaitable<Output> SetRepositoryPolicy(Ctx& ctx, const json::object& input);
asio::awaitable<Output> GetRepositoryPolicy(Ctx& ctx, const json::object& input);
asio::awaitable<Output> DeleteRepositoryPolicy(Ctx& ctx, const json::object& input);
// tags.cc
asio::awaitable<Output> TagResource(Ctx& ctx, const json::object& input);
asio::awaitable<Output> UntagResource(Ctx& ctx, const json::object& input);
asio::awaitable<Output> ListTagsForResource(Ctx& ctx, const json::object& input);

// ---- shapes.cc

// ECR timestamps: epoch seconds, fractional.
json::value Timestamp(int64_t ms);
// "<public host>/<name>".
std::string RepositoryUri(const EcrOptions& options, std::string_view name);
// The Repository shape.
json::object RepositoryShape(const storage::RepositoryRecord& repo, const EcrOptions& options);
// An ImageIdentifier; empty members are left out.
json::object ImageIdShape(std::string_view digest, std::string_view tag);
json::array ImageTagMutabilityFiltersShape(const storage::TagMutabilitySetting& setting);
json::array ResourceTagsShape(const std::vector<storage::ResourceTag>& tags);
// imageTagMutability + imageTagMutabilityExclusionFilters; `required` for
// PutImageTagMutability, else MUTABLE when absent.
Result<storage::TagMutabilitySetting> DecodeTagMutability(const Reader& in, bool required);
// A TagList member: keys 1-128 characters (not "aws:"), values 0-256, unique keys;
// kTagInvalid (InvalidTagParameterException) otherwise, kOutOfRange beyond 50 tags.
Result<std::vector<storage::ResourceTag>> DecodeResourceTags(const Reader& in,
                                                             std::string_view key);
// maxResults and nextToken of a listing; nextToken's keys (empty when absent).
struct PageRequest {
  size_t limit;
  std::vector<std::string> after;
};
Result<PageRequest> DecodePage(const Reader& in, std::string_view scope, size_t default_limit);

}  // namespace berth::api::ecr
