// Registry: repositories as the ECR control plane sees them — accounts, attributes,
// tag mutability, policies and resource tags.
#include <algorithm>
#include <boost/json.hpp>

#include "registry/registry.h"

namespace berth::registry {
namespace {

bool IsMissing(const Status& st) { return st.Is(Code::kNameUnknown) || st.Is(Code::kNotFound); }

}  // namespace

Status Registry::AdoptUnownedRepositories() {
  return RecordStorageError(meta_.AssignUnownedRepositories(options_.account_id).status());
}

Result<storage::RepositoryRecord> Registry::CreateRepository(storage::RepositoryRecord repo) {
  BERTH_RETURN_IF_ERROR(oci::ValidateRepositoryName(repo.name));
  if (repo.account_id.empty()) repo.account_id = options_.account_id;
  if (repo.tags.size() > kMaxRepositoryTags) {
    return Status(Code::kOutOfRange,
                  "a repository may carry at most " + std::to_string(kMaxRepositoryTags) + " tags");
  }
  std::sort(repo.tags.begin(), repo.tags.end(),
            [](const auto& a, const auto& b) { return a.key < b.key; });
  repo.created_at_ms = clock_.NowMillis();
  Status st = meta_.CreateRepository(repo);
  if (st.Is(Code::kAlreadyExists)) {
    return Status(Code::kAlreadyExists,
                  "The repository with name '" + repo.name +
                      "' already exists in the registry with id '" + repo.account_id + "'",
                  repo.name);
  }
  BERTH_RETURN_IF_ERROR(RecordStorageError(st));
  return repo;
}

Result<storage::RepositoryRecord> Registry::GetRepository(std::string_view account,
                                                          std::string_view name) {
  if (!oci::ValidateRepositoryName(name).ok()) return RepositoryNotFound(name, account);
  auto r = meta_.GetRepository(name);
  if (!r.ok()) {
    if (IsMissing(r.status())) return RepositoryNotFound(name, account);
    return RecordStorageError(r.status());
  }
  if (r->account_id != account) return RepositoryNotFound(name, account);
  return r;
}

Result<std::vector<storage::RepositoryRecord>> Registry::ListRepositories(std::string_view account,
                                                                          std::string_view after,
                                                                          size_t limit) {
  auto list = meta_.ListRepositoryRecords(account, after, limit);
  if (!list.ok()) return RecordStorageError(list.status());
  return list;
}

Result<storage::RepositoryRecord> Registry::DeleteRepository(std::string_view account,
                                                             std::string_view name, bool force) {
  BERTH_ASSIGN_OR_RETURN(storage::RepositoryRecord repo, GetRepository(account, name));
  Status st = meta_.DeleteRepository(name, force);
  if (st.Is(Code::kFailedPrecondition)) {
    return Status(Code::kFailedPrecondition,
                  "The repository with name '" + repo.name + "' in registry with id '" +
                      repo.account_id + "' cannot be deleted because it still contains images",
                  repo.name);
  }
  if (IsMissing(st)) return RepositoryNotFound(name, account);
  BERTH_RETURN_IF_ERROR(RecordStorageError(st));
  return repo;
}

Result<storage::RepositoryRecord> Registry::SetTagMutability(
    std::string_view account, std::string_view name, const storage::TagMutabilitySetting& setting) {
  BERTH_ASSIGN_OR_RETURN(storage::RepositoryRecord repo, GetRepository(account, name));
  Status st = meta_.SetTagMutability(name, setting);
  if (IsMissing(st)) return RepositoryNotFound(name, account);
  BERTH_RETURN_IF_ERROR(RecordStorageError(st));
  repo.tag_mutability = setting;
  return repo;
}

Status Registry::SetRepositoryPolicy(std::string_view account, std::string_view name,
                                     std::string_view policy) {
  BERTH_RETURN_IF_ERROR(GetRepository(account, name).status());
  // The document is kept verbatim; it must at least look like an IAM policy. Its
  // statements are judged by the policy evaluator when requests arrive.
  std::error_code ec;
  boost::json::value doc = boost::json::parse(policy, ec);
  const boost::json::value* statement =
      !ec && doc.is_object() ? doc.get_object().if_contains("Statement") : nullptr;
  if (statement == nullptr || !(statement->is_array() || statement->is_object())) {
    return Status(Code::kInvalidArgument,
                  "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid "
                  "repository policy provided': the policy must be a JSON object with a "
                  "Statement");
  }
  Status st = meta_.SetRepositoryPolicy(name, policy);
  if (IsMissing(st)) return RepositoryNotFound(name, account);
  return RecordStorageError(st);
}

Result<std::string> Registry::GetRepositoryPolicy(std::string_view account, std::string_view name) {
  BERTH_ASSIGN_OR_RETURN(storage::RepositoryRecord repo, GetRepository(account, name));
  if (!repo.policy.has_value()) {
    return Status(Code::kNotFound,
                  "Repository policy does not exist for the repository with name '" + repo.name +
                      "' in the registry with id '" + repo.account_id + "'",
                  repo.name);
  }
  return *repo.policy;
}

Result<std::string> Registry::DeleteRepositoryPolicy(std::string_view account,
                                                     std::string_view name) {
  BERTH_ASSIGN_OR_RETURN(storage::RepositoryRecord repo, GetRepository(account, name));
  auto old = meta_.DeleteRepositoryPolicy(name);
  if (!old.ok()) {
    if (old.status().Is(Code::kNotFound)) {
      return Status(Code::kNotFound,
                    "Repository policy does not exist for the repository with name '" + repo.name +
                        "' in the registry with id '" + repo.account_id + "'",
                    repo.name);
    }
    if (old.status().Is(Code::kNameUnknown)) return RepositoryNotFound(name, account);
    return RecordStorageError(old.status());
  }
  return old;
}

Status Registry::TagRepository(std::string_view account, std::string_view name,
                               const std::vector<storage::ResourceTag>& tags) {
  BERTH_RETURN_IF_ERROR(GetRepository(account, name).status());
  Status st = meta_.UpdateRepositoryTags(name, tags, {}, kMaxRepositoryTags);
  if (st.Is(Code::kOutOfRange)) {
    return Status(Code::kOutOfRange, "the repository '" + std::string(name) +
                                         "' would carry more than " +
                                         std::to_string(kMaxRepositoryTags) + " tags");
  }
  if (IsMissing(st)) return RepositoryNotFound(name, account);
  return RecordStorageError(st);
}

Status Registry::UntagRepository(std::string_view account, std::string_view name,
                                 const std::vector<std::string>& keys) {
  BERTH_RETURN_IF_ERROR(GetRepository(account, name).status());
  Status st = meta_.UpdateRepositoryTags(name, {}, keys, kMaxRepositoryTags);
  if (IsMissing(st)) return RepositoryNotFound(name, account);
  return RecordStorageError(st);
}

}  // namespace berth::registry
