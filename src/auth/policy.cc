#include "auth/policy.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

namespace berth::auth {
namespace {

namespace json = boost::json;

Status Invalid(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + ": " + problem);
}

std::string Quote(std::string_view s) {
  std::string out = "'";
  out += s.substr(0, 200);
  out += "'";
  return out;
}

bool IsDigits(std::string_view s, size_t n) {
  return s.size() == n &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A string or a non-empty array of strings.
Result<std::vector<std::string>> StringOrArray(const json::value& v, const std::string& field) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.emplace_back(v.get_string());
    return out;
  }
  if (!v.is_array()) return Invalid(field, "must be a string or an array of strings");
  const json::array& a = v.get_array();
  if (a.empty()) return Invalid(field, "must not be an empty array");
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string()) {
      return Invalid(field + "[" + std::to_string(i) + "]", "must be a string");
    }
    out.emplace_back(a[i].get_string());
  }
  return out;
}

// "*" or "service:ActionPattern".
Status ValidateAction(std::string_view a, const std::string& field) {
  if (a == "*") return Status::Ok();
  size_t colon = a.find(':');
  std::string_view service = a.substr(0, colon);
  std::string_view name = colon == std::string_view::npos ? "" : a.substr(colon + 1);
  bool ok =
      colon != std::string_view::npos && !service.empty() && !name.empty() &&
      std::all_of(service.begin(), service.end(),
                  [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; }) &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '*' || c == '?';
      });
  if (!ok) {
    return Invalid(field, Quote(a) +
                              " is not an action: expected 'service:Action' such as "
                              "'ecr:BatchGetImage', 'ecr:Batch*' or 'ecr:*', or '*'");
  }
  return Status::Ok();
}

// "*" or arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE (wildcards allowed in each part).
Status ValidateResource(std::string_view r, const std::string& field) {
  if (r == "*") return Status::Ok();
  size_t colons = static_cast<size_t>(std::count(r.begin(), r.end(), ':'));
  if (r.rfind("arn:", 0) != 0 || colons < 5) {
    return Invalid(field, Quote(r) +
                              " is not a resource: expected an ARN such as "
                              "'arn:aws:ecr:us-east-1:123456789012:repository/team/*', or '*'");
  }
  return Status::Ok();
}

// Normalizes one AWS principal; see PolicyStatement::principals.
Result<std::string> NormalizeAwsPrincipal(std::string_view p, const std::string& field) {
  if (p == "*") return std::string("*");
  if (IsDigits(p, 12)) return "arn:aws:iam::" + std::string(p) + ":root";
  // arn:aws:iam::123456789012:root | user/NAME | role/NAME, or arn:aws:sts::ACCOUNT:...
  constexpr std::string_view kIam = "arn:aws:iam::";
  constexpr std::string_view kSts = "arn:aws:sts::";
  bool iam = p.rfind(kIam, 0) == 0;
  bool sts = p.rfind(kSts, 0) == 0;
  if (iam || sts) {
    std::string_view rest = p.substr(kIam.size());
    if (rest.size() > 13 && IsDigits(rest.substr(0, 12), 12) && rest[12] == ':' &&
        p.find('*') == std::string_view::npos && p.find('?') == std::string_view::npos) {
      return std::string(p);
    }
  }
  return Invalid(field, Quote(p) +
                            " is not a principal: expected '*', an account id, "
                            "'arn:aws:iam::ACCOUNT:root' or 'arn:aws:iam::ACCOUNT:user/NAME'");
}

Result<std::vector<std::string>> ParsePrincipal(const json::value& v, const std::string& field) {
  std::vector<std::string> out;
  if (v.is_string()) {
    if (v.get_string() != "*") {
      return Invalid(
          field,
          "must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::123456789012:root\"}");
    }
    out.emplace_back("*");
    return out;
  }
  if (!v.is_object() || v.get_object().empty()) {
    return Invalid(
        field, "must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::123456789012:root\"}");
  }
  for (const auto& [key, value] : v.get_object()) {
    std::string sub = field + "." + std::string(key);
    BERTH_ASSIGN_OR_RETURN(auto values, StringOrArray(value, sub));
    if (key == "AWS") {
      for (size_t i = 0; i < values.size(); ++i) {
        std::string item =
            values.size() > 1 || value.is_array() ? sub + "[" + std::to_string(i) + "]" : sub;
        BERTH_ASSIGN_OR_RETURN(std::string p, NormalizeAwsPrincipal(values[i], item));
        out.push_back(std::move(p));
      }
    } else if (key == "Service") {
      for (auto& s : values) out.push_back("service:" + s);
    } else {
      return Invalid(sub, "unsupported principal type (use \"AWS\")");
    }
  }
  return out;
}

Result<PolicyStatement> ParseStatement(const json::value& v, const std::string& field,
                                       PolicyKind kind) {
  if (!v.is_object()) return Invalid(field, "must be an object");
  const json::object& o = v.get_object();
  PolicyStatement st;
  for (const auto& [key, value] : o) {
    if (key != "Sid" && key != "Effect" && key != "Action" && key != "NotAction" &&
        key != "Resource" && key != "NotResource" && key != "Principal") {
      if (key == "Condition" || key == "NotPrincipal") {
        return Invalid(field + "." + std::string(key), "is not supported by Berth");
      }
      return Invalid(field, "unknown field " + Quote(key));
    }
  }
  if (const json::value* sid = o.if_contains("Sid")) {
    if (!sid->is_string()) return Invalid(field + ".Sid", "must be a string");
    st.sid = sid->get_string();
  }
  const json::value* effect = o.if_contains("Effect");
  if (effect == nullptr) return Invalid(field + ".Effect", "is required");
  if (effect->is_string() && effect->get_string() == "Allow") {
    st.effect = Effect::kAllow;
  } else if (effect->is_string() && effect->get_string() == "Deny") {
    st.effect = Effect::kDeny;
  } else {
    return Invalid(field + ".Effect", "must be \"Allow\" or \"Deny\"");
  }

  const json::value* action = o.if_contains("Action");
  const json::value* not_action = o.if_contains("NotAction");
  if (action != nullptr && not_action != nullptr) {
    return Invalid(field, "has both Action and NotAction; use one");
  }
  if (action == nullptr && not_action == nullptr) {
    return Invalid(field + ".Action", "is required (or NotAction)");
  }
  std::string action_field = field + (action != nullptr ? ".Action" : ".NotAction");
  const json::value& av = action != nullptr ? *action : *not_action;
  BERTH_ASSIGN_OR_RETURN(st.actions, StringOrArray(av, action_field));
  st.not_action = action == nullptr;
  for (size_t i = 0; i < st.actions.size(); ++i) {
    BERTH_RETURN_IF_ERROR(
        ValidateAction(st.actions[i], av.is_array() ? action_field + "[" + std::to_string(i) + "]"
                                                    : action_field));
  }

  const json::value* resource = o.if_contains("Resource");
  const json::value* not_resource = o.if_contains("NotResource");
  if (resource != nullptr && not_resource != nullptr) {
    return Invalid(field, "has both Resource and NotResource; use one");
  }
  if (resource == nullptr && not_resource == nullptr) {
    if (kind == PolicyKind::kIdentity) {
      return Invalid(field + ".Resource", "is required (or NotResource)");
    }
  } else {
    std::string resource_field = field + (resource != nullptr ? ".Resource" : ".NotResource");
    const json::value& rv = resource != nullptr ? *resource : *not_resource;
    BERTH_ASSIGN_OR_RETURN(st.resources, StringOrArray(rv, resource_field));
    st.not_resource = resource == nullptr;
    for (size_t i = 0; i < st.resources.size(); ++i) {
      BERTH_RETURN_IF_ERROR(ValidateResource(
          st.resources[i],
          rv.is_array() ? resource_field + "[" + std::to_string(i) + "]" : resource_field));
    }
  }

  const json::value* principal = o.if_contains("Principal");
  if (kind == PolicyKind::kIdentity) {
    if (principal != nullptr) {
      return Invalid(field + ".Principal", "is not allowed in an identity policy");
    }
  } else {
    if (principal == nullptr)
      return Invalid(field + ".Principal", "is required in a repository policy");
    BERTH_ASSIGN_OR_RETURN(st.principals, ParsePrincipal(*principal, field + ".Principal"));
  }
  return st;
}

bool AnyMatch(const std::vector<std::string>& patterns, std::string_view text, bool ignore_case) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return WildcardMatch(p, text, ignore_case); });
}

bool PrincipalMatches(const PolicyStatement& st, const Caller& caller) {
  const std::string root = "arn:aws:iam::" + caller.account_id + ":root";
  return std::any_of(st.principals.begin(), st.principals.end(), [&](const std::string& p) {
    return p == "*" || p == root || (!caller.principal_arn.empty() && p == caller.principal_arn);
  });
}

bool StatementApplies(const PolicyStatement& st, const AccessRequest& req) {
  bool action = AnyMatch(st.actions, req.action, /*ignore_case=*/true);
  if (st.not_action) action = !action;
  if (!action) return false;
  if (st.resources.empty()) return true;  // repository policy: the repository itself
  bool resource = AnyMatch(st.resources, req.resource, /*ignore_case=*/false);
  return st.not_resource ? !resource : resource;
}

std::string Describe(std::string_view what, size_t policy_index, size_t statement_index,
                     const PolicyStatement& st) {
  std::string s(what);
  if (what == "identity policy") s += " " + std::to_string(policy_index);
  s += " statement " + std::to_string(statement_index);
  if (!st.sid.empty()) s += " (Sid \"" + st.sid + "\")";
  return s;
}

// Finds the first applicable statement with `effect`; returns its description or "".
std::string FindIdentity(std::span<const Policy> policies, const AccessRequest& req,
                         Effect effect) {
  for (size_t p = 0; p < policies.size(); ++p) {
    const auto& sts = policies[p].statements();
    for (size_t s = 0; s < sts.size(); ++s) {
      if (sts[s].effect == effect && StatementApplies(sts[s], req)) {
        return Describe("identity policy", p, s, sts[s]);
      }
    }
  }
  return "";
}

std::string FindRepository(const Policy* policy, const AccessRequest& req, Effect effect) {
  if (policy == nullptr) return "";
  const auto& sts = policy->statements();
  for (size_t s = 0; s < sts.size(); ++s) {
    if (sts[s].effect == effect && PrincipalMatches(sts[s], req.caller) &&
        StatementApplies(sts[s], req)) {
      return Describe("repository policy", 0, s, sts[s]);
    }
  }
  return "";
}

}  // namespace

std::string RepositoryArn(std::string_view region, std::string_view account_id,
                          std::string_view repository_name) {
  std::string arn = "arn:aws:ecr:";
  arn += region;
  arn += ':';
  arn += account_id;
  arn += ":repository/";
  arn += repository_name;
  return arn;
}

Result<Policy> Policy::Parse(std::string_view text, PolicyKind kind) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) return Status::InvalidArgument("policy is not valid JSON: " + ec.message());
  if (!doc.is_object()) return Status::InvalidArgument("policy must be a JSON object");
  const json::object& o = doc.get_object();
  for (const auto& [key, value] : o) {
    if (key != "Version" && key != "Id" && key != "Statement") {
      return Status::InvalidArgument("policy has an unknown field " + Quote(key) +
                                     " (expected Version, Id, Statement)");
    }
  }
  Policy policy;
  policy.kind_ = kind;
  policy.version_ = "2008-10-17";  // IAM's default when Version is absent
  if (const json::value* version = o.if_contains("Version")) {
    if (!version->is_string() ||
        (version->get_string() != "2012-10-17" && version->get_string() != "2008-10-17")) {
      return Invalid("Version", "must be \"2012-10-17\" (or \"2008-10-17\")");
    }
    policy.version_ = version->get_string();
  }
  if (const json::value* id = o.if_contains("Id"); id != nullptr && !id->is_string()) {
    return Invalid("Id", "must be a string");
  }
  const json::value* statement = o.if_contains("Statement");
  if (statement == nullptr) return Invalid("Statement", "is required");
  if (statement->is_object()) {
    BERTH_ASSIGN_OR_RETURN(auto st, ParseStatement(*statement, "Statement", kind));
    policy.statements_.push_back(std::move(st));
  } else if (statement->is_array()) {
    const json::array& a = statement->get_array();
    if (a.empty()) return Invalid("Statement", "must not be empty");
    for (size_t i = 0; i < a.size(); ++i) {
      BERTH_ASSIGN_OR_RETURN(auto st,
                             ParseStatement(a[i], "Statement[" + std::to_string(i) + "]", kind));
      policy.statements_.push_back(std::move(st));
    }
  } else {
    return Invalid("Statement", "must be an object or an array of objects");
  }
  return policy;
}

Status Decision::ToStatus() const {
  if (allowed) return Status::Ok();
  return Status(Code::kDenied, message);
}

Decision Evaluate(const AccessRequest& req, std::span<const Policy> identity_policies,
                  const Policy* repository_policy) {
  Decision d;
  if (req.caller.unrestricted) {
    d.allowed = true;
    d.reason = DecisionReason::kUnrestricted;
    d.message = "authentication is disabled";
    return d;
  }
  if (!req.caller.authenticated) {
    d.reason = DecisionReason::kAnonymous;
    d.message = "Not authorized to perform: " + req.action + " on resource: " + req.resource +
                " because the request is not authenticated";
    return d;
  }
  const std::string who = "User: " + req.caller.principal_arn +
                          " is not authorized to perform: " + req.action +
                          " on resource: " + req.resource;

  if (std::string m = FindIdentity(identity_policies, req, Effect::kDeny); !m.empty()) {
    d.reason = DecisionReason::kExplicitDenyIdentity;
    d.matched = std::move(m);
    d.message = who + " with an explicit deny in an identity-based policy";
    return d;
  }
  if (std::string m = FindRepository(repository_policy, req, Effect::kDeny); !m.empty()) {
    d.reason = DecisionReason::kExplicitDenyRepository;
    d.matched = std::move(m);
    d.message = who + " with an explicit deny in a resource-based policy";
    return d;
  }
  std::string identity_allow = FindIdentity(identity_policies, req, Effect::kAllow);
  std::string repository_allow = FindRepository(repository_policy, req, Effect::kAllow);
  const bool same_account =
      req.resource_account.empty() || req.resource_account == req.caller.account_id;

  if (same_account) {
    if (!identity_allow.empty()) {
      d.allowed = true;
      d.reason = DecisionReason::kIdentityPolicy;
      d.matched = std::move(identity_allow);
    } else if (!repository_allow.empty()) {
      d.allowed = true;
      d.reason = DecisionReason::kRepositoryPolicy;
      d.matched = std::move(repository_allow);
    } else {
      d.reason = DecisionReason::kNoIdentityAllow;
      d.message = who + " because no identity-based policy allows the " + req.action + " action";
    }
    return d;
  }
  if (repository_allow.empty()) {
    d.reason = DecisionReason::kNoRepositoryAllow;
    d.message = who + " because no resource-based policy allows the " + req.action + " action";
    return d;
  }
  if (identity_allow.empty()) {
    d.reason = DecisionReason::kNoIdentityAllow;
    d.message = who + " because no identity-based policy allows the " + req.action + " action";
    return d;
  }
  d.allowed = true;
  d.reason = DecisionReason::kCrossAccount;
  d.matched = identity_allow + " and " + repository_allow;
  return d;
}

}  // namespace berth::auth
