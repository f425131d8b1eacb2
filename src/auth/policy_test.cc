#include "auth/policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace berth::auth {
namespace {

constexpr char kAccount[] = "123456789012";
constexpr char kOther[] = "210987654321";
const std::string kRepo = "arn:aws:ecr:us-east-1:123456789012:repository/team/app";

Policy MustParse(const std::string& json, PolicyKind kind = PolicyKind::kIdentity) {
  auto p = Policy::Parse(json, kind);
  EXPECT_TRUE(p.ok()) << p.status().ToString() << "\n" << json;
  return p.ok() ? *p : Policy();
}

Caller User(const std::string& account, const std::string& name) {
  Caller c;
  c.authenticated = true;
  c.account_id = account;
  c.access_key_id = "AKIA" + name;
  c.principal_arn = "arn:aws:iam::" + account + ":user/" + name;
  return c;
}

AccessRequest Req(const Caller& c, const std::string& action, const std::string& resource = kRepo,
                  const std::string& owner = kAccount) {
  return AccessRequest{c, action, resource, owner};
}

const char kAllowAllEcr[] =
    R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]})";

// ---- Wildcards

TEST(WildcardMatch, Table) {
  struct Case {
    const char* pattern;
    const char* text;
    bool ignore_case;
    bool match;
  };
  for (const Case& c : std::vector<Case>{
           {"*", "", false, true},
           {"*", "anything:at/all", false, true},
           {"", "", false, true},
           {"", "a", false, false},
           {"ecr:*", "ecr:BatchGetImage", true, true},
           {"ecr:*", "s3:GetObject", true, false},
           {"ecr:Batch*", "ecr:BatchGetImage", true, true},
           {"ecr:Batch*", "ecr:BatchCheckLayerAvailability", true, true},
           {"ecr:Batch*", "ecr:PutImage", true, false},
           {"ECR:batchgetimage", "ecr:BatchGetImage", true, true},
           {"ECR:batchgetimage", "ecr:BatchGetImage", false, false},
           {"ecr:Get?uthorizationToken", "ecr:GetAuthorizationToken", true, true},
           {"ecr:Get?", "ecr:Get", true, false},
           {"ecr:*Image", "ecr:BatchGetImage", true, true},
           {"ecr:*Image", "ecr:BatchGetImages", true, false},
           {"ecr:*Get*Image*", "ecr:BatchGetImage", true, true},
           {"a*b*c", "abc", false, true},
           {"a*b*c", "aXbYbZc", false, true},
           {"a*b*c", "aXbYbZ", false, false},
           {"***", "x", false, true},
           {"?", "", false, false},
           {"arn:aws:ecr:us-east-1:123456789012:repository/team/*",
            "arn:aws:ecr:us-east-1:123456789012:repository/team/app", false, true},
           {"arn:aws:ecr:us-east-1:123456789012:repository/team/*",
            "arn:aws:ecr:us-east-1:123456789012:repository/team/sub/app", false, true},
           {"arn:aws:ecr:us-east-1:123456789012:repository/team/*",
            "arn:aws:ecr:us-east-1:123456789012:repository/teamx/app", false, false},
           {"arn:aws:ecr:*:123456789012:repository/*",
            "arn:aws:ecr:eu-west-1:123456789012:repository/a", false, true},
           {"arn:aws:ecr:*:123456789012:repository/*",
            "arn:aws:ecr:eu-west-1:210987654321:repository/a", false, false},
           {"arn:aws:ecr:us-east-1:123456789012:repository/Team/*",
            "arn:aws:ecr:us-east-1:123456789012:repository/team/app", false, false},
           {"arn:aws:ecr:us-east-1:123456789012:repository/app-?",
            "arn:aws:ecr:us-east-1:123456789012:repository/app-1", false, true},
       }) {
    EXPECT_EQ(WildcardMatch(c.pattern, c.text, c.ignore_case), c.match)
        << c.pattern << " vs " << c.text;
  }
}

TEST(WildcardMatch, PathologicalPatternIsFast) {
  std::string text(5000, 'a');
  std::string pattern;
  for (int i = 0; i < 50; ++i) pattern += "*a";
  pattern += "b";
  EXPECT_FALSE(WildcardMatch(pattern, text, false));
}

TEST(RepositoryArn, Format) { EXPECT_EQ(RepositoryArn("us-east-1", kAccount, "team/app"), kRepo); }

// ---- Parsing

TEST(PolicyParse, StatementObjectOrArrayAndStringOrArrayFields) {
  Policy a = MustParse(
      R"({"Version":"2012-10-17","Id":"x","Statement":{"Sid":"One","Effect":"Allow",
          "Action":"ecr:BatchGetImage","Resource":"*"}})");
  ASSERT_EQ(a.statements().size(), 1u);
  EXPECT_EQ(a.version(), "2012-10-17");
  EXPECT_EQ(a.statements()[0].sid, "One");
  EXPECT_EQ(a.statements()[0].effect, Effect::kAllow);
  EXPECT_EQ(a.statements()[0].actions, std::vector<std::string>{"ecr:BatchGetImage"});

  Policy b = MustParse(
      R"({"Statement":[{"Effect":"Deny","NotAction":["ecr:Get*","ecr:Describe*"],
          "NotResource":["arn:aws:ecr:*:*:repository/public/*"]},
          {"Effect":"Allow","Action":"*","Resource":"*"}]})");
  ASSERT_EQ(b.statements().size(), 2u);
  EXPECT_EQ(b.version(), "2008-10-17");
  EXPECT_TRUE(b.statements()[0].not_action);
  EXPECT_TRUE(b.statements()[0].not_resource);
  EXPECT_EQ(b.statements()[0].actions.size(), 2u);
  EXPECT_EQ(b.statements()[0].effect, Effect::kDeny);
}

TEST(PolicyParse, RepositoryPrincipalsAreNormalized) {
  Policy p = MustParse(
      R"({"Version":"2012-10-17","Statement":[
           {"Sid":"Any","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"},
           {"Effect":"Allow","Principal":{"AWS":"210987654321"},"Action":"ecr:*"},
           {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::210987654321:root",
              "arn:aws:iam::210987654321:user/bob", "*"]},"Action":"ecr:*"},
           {"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"ecr:*"}]})",
      PolicyKind::kRepository);
  ASSERT_EQ(p.statements().size(), 4u);
  EXPECT_EQ(p.statements()[0].principals, std::vector<std::string>{"*"});
  EXPECT_EQ(p.statements()[1].principals,
            std::vector<std::string>{"arn:aws:iam::210987654321:root"});
  EXPECT_EQ(p.statements()[2].principals,
            (std::vector<std::string>{"arn:aws:iam::210987654321:root",
                                      "arn:aws:iam::210987654321:user/bob", "*"}));
  EXPECT_EQ(p.statements()[3].principals,
            std::vector<std::string>{"service:codebuild.amazonaws.com"});
  EXPECT_TRUE(p.statements()[0].resources.empty());
}

TEST(PolicyParse, MalformedPoliciesNameTheField) {
  struct Case {
    PolicyKind kind;
    std::string json;
    std::string message_part;
  };
  const auto I = PolicyKind::kIdentity;
  const auto R = PolicyKind::kRepository;
  std::vector<Case> cases = {
      {I, "", "not valid JSON"},
      {I, "{", "not valid JSON"},
      {I, "[]", "must be a JSON object"},
      {I, R"({"Statement":[],"Extra":1})", "unknown field 'Extra'"},
      {I, R"({"Version":"2020-01-01","Statement":[]})", "Version: must be"},
      {I, R"({"Version":2012,"Statement":[]})", "Version: must be"},
      {I, R"({"Id":1,"Statement":[]})", "Id: must be a string"},
      {I, R"({"Version":"2012-10-17"})", "Statement: is required"},
      {I, R"({"Statement":[]})", "Statement: must not be empty"},
      {I, R"({"Statement":"x"})", "Statement: must be an object or an array"},
      {I, R"({"Statement":[1]})", "Statement[0]: must be an object"},
      {I, R"({"Statement":[{"Action":"ecr:*","Resource":"*"}]})",
       "Statement[0].Effect: is required"},
      {I, R"({"Statement":[{"Effect":"allow","Action":"ecr:*","Resource":"*"}]})",
       "Statement[0].Effect: must be \"Allow\" or \"Deny\""},
      {I, R"({"Statement":[{"Effect":"Allow","Resource":"*"}]})",
       "Statement[0].Action: is required"},
      {I,
       R"({"Statement":[{"Effect":"Allow","Action":"ecr:*","NotAction":"ecr:X","Resource":"*"}]})",
       "both Action and NotAction"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]})",
       "Statement[0].Action: must not be an empty array"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":5,"Resource":"*"}]})",
       "Statement[0].Action: must be a string or an array"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":["ecr:*",7],"Resource":"*"}]})",
       "Statement[0].Action[1]: must be a string"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":"BatchGetImage","Resource":"*"}]})",
       "Statement[0].Action: 'BatchGetImage' is not an action"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":["ecr:*","ecr:"],"Resource":"*"}]})",
       "Statement[0].Action[1]: 'ecr:' is not an action"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":"ecr:*"}]})",
       "Statement[0].Resource: is required"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","NotResource":"*"}]})",
       "both Resource and NotResource"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"team/app"}]})",
       "Statement[0].Resource: 'team/app' is not a resource"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":["*","arn:aws:ecr"]}]})",
       "Statement[0].Resource[1]"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Principal":"*"}]})",
       "Statement[0].Principal: is not allowed in an identity policy"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{}}]})",
       "Statement[0].Condition: is not supported"},
      {I, R"({"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Foo":1}]})",
       "Statement[0]: unknown field 'Foo'"},
      {I, R"({"Statement":[{"Sid":1,"Effect":"Allow","Action":"ecr:*","Resource":"*"}]})",
       "Statement[0].Sid: must be a string"},
      {R, R"({"Statement":[{"Effect":"Allow","Action":"ecr:*"}]})",
       "Statement[0].Principal: is required in a repository policy"},
      {R, R"({"Statement":[{"Effect":"Allow","Principal":"bob","Action":"ecr:*"}]})",
       "Statement[0].Principal: must be \"*\" or an object"},
      {R, R"({"Statement":[{"Effect":"Allow","Principal":{},"Action":"ecr:*"}]})",
       "Statement[0].Principal: must be \"*\" or an object"},
      {R, R"({"Statement":[{"Effect":"Allow","Principal":{"AWS":"12345"},"Action":"ecr:*"}]})",
       "Statement[0].Principal.AWS: '12345' is not a principal"},
      {R,
       R"({"Statement":[{"Effect":"Allow","Principal":{"AWS":["*","arn:aws:iam::1:root"]},"Action":"ecr:*"}]})",
       "Statement[0].Principal.AWS[1]"},
      {R,
       R"({"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/*"},"Action":"ecr:*"}]})",
       "is not a principal"},
      {R, R"({"Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"ecr:*"}]})",
       "Statement[0].Principal.Federated: unsupported principal type"},
      {R, R"({"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"*"},"Action":"ecr:*"}]})",
       "Statement[0].NotPrincipal: is not supported"},
  };
  for (const Case& c : cases) {
    auto p = Policy::Parse(c.json, c.kind);
    EXPECT_TRUE(p.status().Is(Code::kInvalidArgument)) << c.json;
    EXPECT_NE(p.status().message().find(c.message_part), std::string::npos)
        << c.json << "\n→ " << p.status().message();
  }
}

// ---- Evaluation

TEST(PolicyEvaluate, UnrestrictedCallersAreAlwaysAllowed) {
  Caller c;
  c.unrestricted = true;
  Policy deny = MustParse(R"({"Statement":{"Effect":"Deny","Action":"*","Resource":"*"}})");
  Decision d = Evaluate(Req(c, "ecr:DeleteRepository"), std::span(&deny, 1), nullptr);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.reason, DecisionReason::kUnrestricted);
  EXPECT_TRUE(d.ToStatus().ok());
}

TEST(PolicyEvaluate, AnonymousCallersAreDenied) {
  Caller anonymous;
  Policy open = MustParse(R"({"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*"}})",
                          PolicyKind::kRepository);
  Decision d = Evaluate(Req(anonymous, "ecr:BatchGetImage"), {}, &open);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, DecisionReason::kAnonymous);
  EXPECT_TRUE(d.ToStatus().Is(Code::kDenied));
}

TEST(PolicyEvaluate, DefaultDeny) {
  Caller alice = User(kAccount, "alice");
  Decision d = Evaluate(Req(alice, "ecr:BatchGetImage"), {}, nullptr);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, DecisionReason::kNoIdentityAllow);
  EXPECT_EQ(d.message,
            "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: "
            "ecr:BatchGetImage on resource: " +
                kRepo + " because no identity-based policy allows the ecr:BatchGetImage action");
  EXPECT_TRUE(d.ToStatus().Is(Code::kDenied));
  EXPECT_EQ(d.ToStatus().message(), d.message);

  Policy other =
      MustParse(R"({"Statement":{"Effect":"Allow","Action":"ecr:Describe*","Resource":"*"}})");
  EXPECT_FALSE(Evaluate(Req(alice, "ecr:PutImage"), std::span(&other, 1), nullptr).allowed);
}

TEST(PolicyEvaluate, IdentityPolicyAllows) {
  Caller alice = User(kAccount, "alice");
  Policy p = MustParse(kAllowAllEcr);
  Decision d = Evaluate(Req(alice, "ecr:PutImage"), std::span(&p, 1), nullptr);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.reason, DecisionReason::kIdentityPolicy);
  EXPECT_EQ(d.matched, "identity policy 0 statement 0");
  EXPECT_TRUE(d.ToStatus().ok());
  // Actions are case-insensitive.
  EXPECT_TRUE(Evaluate(Req(alice, "ECR:putimage"), std::span(&p, 1), nullptr).allowed);
  // An empty owner means the caller's own account.
  EXPECT_TRUE(Evaluate(Req(alice, "ecr:GetAuthorizationToken", "*", ""), std::span(&p, 1), nullptr)
                  .allowed);
}

TEST(PolicyEvaluate, ResourcePatternsScopeTheGrant) {
  Caller alice = User(kAccount, "alice");
  Policy p = MustParse(R"({"Statement":{"Effect":"Allow","Action":"ecr:*",
      "Resource":"arn:aws:ecr:us-east-1:123456789012:repository/team/*"}})");
  EXPECT_TRUE(Evaluate(Req(alice, "ecr:PutImage"), std::span(&p, 1), nullptr).allowed);
  EXPECT_FALSE(
      Evaluate(Req(alice, "ecr:PutImage", "arn:aws:ecr:us-east-1:123456789012:repository/other"),
               std::span(&p, 1), nullptr)
          .allowed);
  // Account-level actions have resource "*", which a repository pattern does not cover.
  EXPECT_FALSE(
      Evaluate(Req(alice, "ecr:GetAuthorizationToken", "*"), std::span(&p, 1), nullptr).allowed);
}

TEST(PolicyEvaluate, ExplicitDenyBeatsAllow) {
  Caller alice = User(kAccount, "alice");
  std::vector<Policy> policies = {
      MustParse(kAllowAllEcr),
      MustParse(R"({"Statement":{"Sid":"NoDeletes","Effect":"Deny",
          "Action":["ecr:DeleteRepository","ecr:BatchDeleteImage"],"Resource":"*"}})"),
  };
  Decision d = Evaluate(Req(alice, "ecr:BatchDeleteImage"), policies, nullptr);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, DecisionReason::kExplicitDenyIdentity);
  EXPECT_EQ(d.matched, "identity policy 1 statement 0 (Sid \"NoDeletes\")");
  EXPECT_NE(d.message.find("with an explicit deny in an identity-based policy"), std::string::npos);
  EXPECT_TRUE(Evaluate(Req(alice, "ecr:PutImage"), policies, nullptr).allowed);

  // A Deny in the repository policy beats an identity Allow, too.
  Policy repo = MustParse(R"({"Statement":[
      {"Effect":"Allow","Principal":"*","Action":"ecr:*"},
      {"Sid":"FreezeAlice","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},
       "Action":"ecr:PutImage"}]})",
                          PolicyKind::kRepository);
  Decision r = Evaluate(Req(alice, "ecr:PutImage"), std::span(policies.data(), 1), &repo);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.reason, DecisionReason::kExplicitDenyRepository);
  EXPECT_EQ(r.matched, "repository policy statement 1 (Sid \"FreezeAlice\")");
  EXPECT_NE(r.message.find("with an explicit deny in a resource-based policy"), std::string::npos);
  // The Deny names alice only: bob is unaffected.
  Caller bob = User(kAccount, "bob");
  EXPECT_TRUE(Evaluate(Req(bob, "ecr:PutImage"), {}, &repo).allowed);
}

TEST(PolicyEvaluate, SameAccountRepositoryPolicyAloneSuffices) {
  Caller bob = User(kAccount, "bob");
  Policy repo = MustParse(R"({"Statement":{"Effect":"Allow",
      "Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},
      "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}})",
                          PolicyKind::kRepository);
  Decision d = Evaluate(Req(bob, "ecr:BatchGetImage"), {}, &repo);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.reason, DecisionReason::kRepositoryPolicy);
  EXPECT_FALSE(Evaluate(Req(bob, "ecr:PutImage"), {}, &repo).allowed);
  Caller carol = User(kAccount, "carol");
  EXPECT_FALSE(Evaluate(Req(carol, "ecr:BatchGetImage"), {}, &repo).allowed);
}

TEST(PolicyEvaluate, CrossAccountNeedsRepositoryGrantAndIdentityAllow) {
  Caller stranger = User(kOther, "dave");
  Policy identity = MustParse(kAllowAllEcr);

  // No repository policy: the owner never granted anything.
  Decision none = Evaluate(Req(stranger, "ecr:BatchGetImage"), std::span(&identity, 1), nullptr);
  EXPECT_FALSE(none.allowed);
  EXPECT_EQ(none.reason, DecisionReason::kNoRepositoryAllow);
  EXPECT_NE(none.message.find("because no resource-based policy allows the ecr:BatchGetImage"),
            std::string::npos);

  // A repository policy granting the other account (by id, root ARN, or user ARN).
  for (const std::string principal : {"\"210987654321\"", "\"arn:aws:iam::210987654321:root\"",
                                      "\"arn:aws:iam::210987654321:user/dave\"",
                                      "[\"arn:aws:iam::111111111111:root\", "
                                      "\"210987654321\"]"}) {
    SCOPED_TRACE(principal);
    Policy repo = MustParse(R"({"Statement":{"Effect":"Allow","Principal":{"AWS":)" + principal +
                                R"(},"Action":"ecr:BatchGetImage"}})",
                            PolicyKind::kRepository);
    Decision ok = Evaluate(Req(stranger, "ecr:BatchGetImage"), std::span(&identity, 1), &repo);
    EXPECT_TRUE(ok.allowed) << ok.message;
    EXPECT_EQ(ok.reason, DecisionReason::kCrossAccount);
    // Not the actions it did not grant.
    EXPECT_FALSE(Evaluate(Req(stranger, "ecr:PutImage"), std::span(&identity, 1), &repo).allowed);
    // And not without the caller's own identity policy allowing it, as in AWS.
    Decision no_identity = Evaluate(Req(stranger, "ecr:BatchGetImage"), {}, &repo);
    EXPECT_FALSE(no_identity.allowed);
    EXPECT_EQ(no_identity.reason, DecisionReason::kNoIdentityAllow);
  }

  // A grant to another user of that account does not cover dave.
  Policy erin = MustParse(R"({"Statement":{"Effect":"Allow",
      "Principal":{"AWS":"arn:aws:iam::210987654321:user/erin"},"Action":"ecr:*"}})",
                          PolicyKind::kRepository);
  EXPECT_FALSE(
      Evaluate(Req(stranger, "ecr:BatchGetImage"), std::span(&identity, 1), &erin).allowed);
  // "Principal": "*" grants every account.
  Policy everyone =
      MustParse(R"({"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}})",
                PolicyKind::kRepository);
  EXPECT_TRUE(
      Evaluate(Req(stranger, "ecr:BatchGetImage"), std::span(&identity, 1), &everyone).allowed);
  // A same-account identity policy naming the other account's ARN does not help.
  Policy wrong_account = MustParse(R"({"Statement":{"Effect":"Allow","Action":"ecr:*",
      "Resource":"arn:aws:ecr:us-east-1:210987654321:repository/*"}})");
  EXPECT_FALSE(Evaluate(Req(stranger, "ecr:BatchGetImage"), std::span(&wrong_account, 1), &everyone)
                   .allowed);
}

TEST(PolicyEvaluate, NotActionAndNotResource) {
  Caller alice = User(kAccount, "alice");
  // Everything except deleting.
  Policy not_action = MustParse(R"({"Statement":{"Effect":"Allow",
      "NotAction":["ecr:Delete*","ecr:BatchDeleteImage"],"Resource":"*"}})");
  EXPECT_TRUE(Evaluate(Req(alice, "ecr:PutImage"), std::span(&not_action, 1), nullptr).allowed);
  EXPECT_FALSE(
      Evaluate(Req(alice, "ecr:DeleteRepository"), std::span(&not_action, 1), nullptr).allowed);
  EXPECT_FALSE(
      Evaluate(Req(alice, "ecr:BatchDeleteImage"), std::span(&not_action, 1), nullptr).allowed);

  // Everywhere except the production repositories; a Deny with NotResource protects
  // everything but the sandbox.
  std::vector<Policy> policies = {
      MustParse(R"({"Statement":{"Effect":"Allow","Action":"ecr:*",
          "NotResource":"arn:aws:ecr:*:*:repository/prod/*"}})"),
      MustParse(R"({"Statement":{"Effect":"Deny","Action":"ecr:DeleteRepository",
          "NotResource":"arn:aws:ecr:*:*:repository/sandbox/*"}})"),
  };
  const std::string prod = "arn:aws:ecr:us-east-1:123456789012:repository/prod/api";
  const std::string sandbox = "arn:aws:ecr:us-east-1:123456789012:repository/sandbox/x";
  EXPECT_TRUE(Evaluate(Req(alice, "ecr:PutImage"), policies, nullptr).allowed);
  EXPECT_FALSE(Evaluate(Req(alice, "ecr:PutImage", prod), policies, nullptr).allowed);
  EXPECT_TRUE(Evaluate(Req(alice, "ecr:DeleteRepository", sandbox), policies, nullptr).allowed);
  Decision d = Evaluate(Req(alice, "ecr:DeleteRepository"), policies, nullptr);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, DecisionReason::kExplicitDenyIdentity);
}

TEST(PolicyEvaluate, ServicePrincipalsNeverMatchACaller) {
  Caller alice = User(kAccount, "alice");
  Policy repo = MustParse(R"({"Statement":{"Effect":"Allow",
      "Principal":{"Service":"codebuild.amazonaws.com"},"Action":"ecr:*"}})",
                          PolicyKind::kRepository);
  EXPECT_FALSE(Evaluate(Req(alice, "ecr:BatchGetImage"), {}, &repo).allowed);
}

TEST(PolicyEvaluate, AccountRootPrincipalCoversEveryUserOfTheAccount) {
  Caller alice = User(kAccount, "alice");
  Policy repo = MustParse(R"({"Statement":{"Effect":"Allow",
      "Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"ecr:*"}})",
                          PolicyKind::kRepository);
  EXPECT_TRUE(Evaluate(Req(alice, "ecr:PutImage"), {}, &repo).allowed);
  Caller root;
  root.authenticated = true;
  root.account_id = kAccount;
  root.principal_arn = "arn:aws:iam::123456789012:root";
  EXPECT_TRUE(Evaluate(Req(root, "ecr:PutImage"), {}, &repo).allowed);
}

}  // namespace
}  // namespace berth::auth
