// IAM-style policies and their evaluation: identity policies (attached to an access
// key in the identity store) and repository policies (SetRepositoryPolicy).
//
// Supported grammar: Version ("2012-10-17" or "2008-10-17"), Id, Statement (an object
// or an array) with Sid, Effect (Allow|Deny), Action or NotAction, Resource or
// NotResource, and — in repository policies only — Principal ("*", or {"AWS": ...}
// with "*", an account id, arn:aws:iam::ACCOUNT:root, or a user/role ARN; "Service"
// principals are accepted but never match a Berth caller). Action and Resource take a
// string or an array and the wildcards '*' (any run, including ':' and '/') and '?'
// (one character); actions match case-insensitively, resources case-sensitively.
// Condition and NotPrincipal are refused rather than ignored, because ignoring them
// would grant more than the author meant.
//
// Evaluation, as AWS does it for a single account plus resource policies:
//   1. unrestricted callers (auth disabled) are allowed; anonymous ones are denied;
//   2. an explicit Deny in any applicable statement wins;
//   3. same account: allowed if an identity policy or the repository policy allows;
//   4. cross account: the repository policy must allow the caller's principal AND
//      the caller's own identity policy must allow the action;
//   5. otherwise denied (default deny).
//
// Policy is an immutable value; Evaluate is pure: thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/wildcard.h"
#include "auth/caller.h"
#include "base/status.h"

namespace berth::auth {

enum class PolicyKind : uint8_t {
  kIdentity,    // Resource required, Principal refused
  kRepository,  // Principal required, Resource optional (defaults to the repository)
};

enum class Effect : uint8_t { kAllow, kDeny };

struct PolicyStatement {
  std::string sid;  // may be empty
  Effect effect = Effect::kDeny;
  std::vector<std::string> actions;  // patterns; NotAction when not_action
  bool not_action = false;
  std::vector<std::string> resources;  // patterns; empty = unspecified (repository policy)
  bool not_resource = false;
  // Normalized: "*", "arn:aws:iam::ACCOUNT:root" (also for a bare account id), a
  // user/role ARN, or "service:NAME" (never matches).
  std::vector<std::string> principals;
};

class Policy {
 public:
  // Parses and validates a policy document. Errors are kInvalidArgument with a message
  // naming the field, e.g. "Statement[1].Effect: must be \"Allow\" or \"Deny\"".
  static Result<Policy> Parse(std::string_view json, PolicyKind kind);

  PolicyKind kind() const { return kind_; }
  const std::string& version() const { return version_; }
  const std::vector<PolicyStatement>& statements() const { return statements_; }

 private:
  PolicyKind kind_ = PolicyKind::kIdentity;
  std::string version_;
  std::vector<PolicyStatement> statements_;
};

// "arn:aws:ecr:REGION:ACCOUNT:repository/NAME".
std::string RepositoryArn(std::string_view region, std::string_view account_id,
                          std::string_view repository_name);

struct AccessRequest {
  Caller caller;
  std::string action;    // "ecr:BatchGetImage"
  std::string resource;  // a repository ARN, or "*" for account-level actions
  // The account that owns the resource; empty means the caller's own account.
  std::string resource_account;
};

enum class DecisionReason : uint8_t {
  kUnrestricted,            // allowed: authentication is disabled
  kIdentityPolicy,          // allowed by an identity policy (same account)
  kRepositoryPolicy,        // allowed by the repository policy (same account)
  kCrossAccount,            // allowed by both (cross account)
  kAnonymous,               // denied: the request carries no identity
  kExplicitDenyIdentity,    // denied by a Deny statement in an identity policy
  kExplicitDenyRepository,  // denied by a Deny statement in the repository policy
  kNoIdentityAllow,         // denied: nothing allows it (default deny)
  kNoRepositoryAllow,       // denied: cross-account without a repository policy grant
};

struct Decision {
  bool allowed = false;
  DecisionReason reason = DecisionReason::kNoIdentityAllow;
  // Which statement decided, for logs: "identity policy 0 statement 1 (Sid \"X\")".
  std::string matched;
  // An AWS-style sentence: "User: arn:... is not authorized to perform: ecr:X on
  // resource: arn:... because no identity-based policy allows the ecr:X action".
  std::string message;

  // OK when allowed, else kDenied carrying `message`.
  Status ToStatus() const;
};

Decision Evaluate(const AccessRequest& request, std::span<const Policy> identity_policies,
                  const Policy* repository_policy);

}  // namespace berth::auth
