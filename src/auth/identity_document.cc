#include "auth/identity_document.h"

#include <algorithm>
#include <boost/json.hpp>

#include "auth/policy.h"

namespace berth::auth {
namespace {

namespace json = boost::json;

// Indented JSON, so that the file stays readable and diffable when edited by hand.
void Pretty(const json::value& v, std::string& out, int indent) {
  auto newline = [&](int level) {
    out += '\n';
    out.append(static_cast<size_t>(level) * 2, ' ');
  };
  if (v.is_object()) {
    const json::object& o = v.get_object();
    if (o.empty()) {
      out += "{}";
      return;
    }
    out += '{';
    bool first = true;
    for (const auto& [key, value] : o) {
      if (!first) out += ',';
      first = false;
      newline(indent + 1);
      out += json::serialize(json::string(key));
      out += ": ";
      Pretty(value, out, indent + 1);
    }
    newline(indent);
    out += '}';
  } else if (v.is_array()) {
    const json::array& a = v.get_array();
    if (a.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < a.size(); ++i) {
      if (i > 0) out += ',';
      newline(indent + 1);
      Pretty(a[i], out, indent + 1);
    }
    newline(indent);
    out += ']';
  } else {
    out += json::serialize(v);
  }
}

Status FieldError(size_t index, std::string_view field, std::string_view problem) {
  return Status::InvalidArgument("identities[" + std::to_string(index) + "]." + std::string(field) +
                                 ": " + std::string(problem));
}

Result<std::string> StringField(const json::object& o, size_t index, std::string_view field) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || !v->is_string() || v->get_string().empty()) {
    return FieldError(index, field, "must be a non-empty string");
  }
  return std::string(v->get_string());
}

Status ValidateAccessKeyId(std::string_view id) {
  // AWS: 16-128 word characters. Generated ones are "AKIA" + 16 base32.
  bool ok = id.size() >= 16 && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
              return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
            });
  if (!ok) return Status::InvalidArgument("access key id must be 16-128 of [A-Z0-9]");
  return Status::Ok();
}

Result<Identity> ParseIdentity(const json::value& v, size_t index) {
  if (!v.is_object()) return FieldError(index, "", "must be an object");
  const json::object& o = v.get_object();
  Identity id;
  BERTH_ASSIGN_OR_RETURN(id.access_key_id, StringField(o, index, "access_key_id"));
  if (Status st = ValidateAccessKeyId(id.access_key_id); !st.ok()) {
    return FieldError(index, "access_key_id", st.message());
  }
  BERTH_ASSIGN_OR_RETURN(id.secret_access_key, StringField(o, index, "secret_access_key"));
  BERTH_ASSIGN_OR_RETURN(id.account_id, StringField(o, index, "account_id"));
  if (Status st = ValidateAccountId(id.account_id); !st.ok()) {
    return FieldError(index, "account_id", st.message());
  }
  BERTH_ASSIGN_OR_RETURN(id.user_name, StringField(o, index, "user_name"));
  if (Status st = ValidateUserName(id.user_name); !st.ok()) {
    return FieldError(index, "user_name", st.message());
  }
  if (const json::value* admin = o.if_contains("admin")) {
    if (!admin->is_bool()) return FieldError(index, "admin", "must be true or false");
    id.admin = admin->get_bool();
  }
  if (const json::value* created = o.if_contains("created_at")) {
    if (!created->is_int64() && !created->is_uint64()) {
      return FieldError(index, "created_at", "must be epoch seconds");
    }
    id.created_at_seconds = created->to_number<int64_t>();
  }
  if (const json::value* policies = o.if_contains("policies")) {
    if (!policies->is_array()) return FieldError(index, "policies", "must be an array");
    const json::array& a = policies->get_array();
    for (size_t i = 0; i < a.size(); ++i) {
      std::string text = a[i].is_string() ? std::string(a[i].get_string()) : json::serialize(a[i]);
      auto policy = Policy::Parse(text, PolicyKind::kIdentity);
      if (!policy.ok()) {
        return FieldError(index, "policies[" + std::to_string(i) + "]", policy.status().message());
      }
      id.policy_documents.push_back(std::move(text));
      id.policies.push_back(std::move(*policy));
    }
  }
  for (const auto& [key, value] : o) {
    static constexpr std::string_view kKnown[] = {
        "access_key_id", "secret_access_key", "account_id", "user_name",
        "admin",         "created_at",        "policies"};
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      return FieldError(index, key, "unknown field");
    }
  }
  return id;
}

Status NotFoundKey(std::string_view access_key_id) {
  return Status::NotFound("no identity has access key id '" +
                          std::string(access_key_id.substr(0, 128)) + "'");
}

}  // namespace

Result<std::vector<Identity>> ParseIdentityDocument(std::string_view text,
                                                    std::string_view source) {
  auto wrap = [&](const Status& st) {
    return Status::InvalidArgument(std::string(source) + ": " + st.message());
  };
  if (text.size() > kMaxIdentityDocumentBytes) {
    return wrap(Status::InvalidArgument("larger than " + std::to_string(kMaxIdentityDocumentBytes) +
                                        " bytes"));
  }
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) return wrap(Status::InvalidArgument("not valid JSON: " + ec.message()));
  if (!doc.is_object()) return wrap(Status::InvalidArgument("must be a JSON object"));
  const json::object& o = doc.get_object();
  if (const json::value* version = o.if_contains("version");
      version != nullptr && !(version->is_int64() && version->get_int64() == 1)) {
    return wrap(Status::InvalidArgument("unsupported version (expected 1)"));
  }
  std::vector<Identity> out;
  const json::value* identities = o.if_contains("identities");
  if (identities == nullptr) return out;
  if (!identities->is_array()) return wrap(Status::InvalidArgument("identities must be an array"));
  const json::array& a = identities->get_array();
  for (size_t i = 0; i < a.size(); ++i) {
    auto id = ParseIdentity(a[i], i);
    if (!id.ok()) return wrap(id.status());
    for (const Identity& seen : out) {
      if (seen.access_key_id == id->access_key_id) {
        return wrap(FieldError(i, "access_key_id", "duplicates " + seen.access_key_id));
      }
    }
    out.push_back(std::move(*id));
  }
  return out;
}

Result<MergedIdentities> MergeIdentityDocuments(const std::optional<std::string>& into,
                                                std::string_view into_source,
                                                std::string_view from,
                                                std::string_view from_source) {
  std::vector<Identity> merged;
  if (into.has_value()) {
    BERTH_ASSIGN_OR_RETURN(merged, ParseIdentityDocument(*into, into_source));
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<Identity> incoming, ParseIdentityDocument(from, from_source));
  MergedIdentities out;
  for (Identity& id : incoming) {
    auto same_key = std::find_if(merged.begin(), merged.end(), [&](const Identity& have) {
      return have.access_key_id == id.access_key_id;
    });
    if (same_key == merged.end()) {
      ++out.added;
      merged.push_back(std::move(id));
      continue;
    }
    const bool same = same_key->secret_access_key == id.secret_access_key &&
                      same_key->account_id == id.account_id &&
                      same_key->user_name == id.user_name && same_key->admin == id.admin &&
                      same_key->created_at_seconds == id.created_at_seconds &&
                      same_key->policy_documents == id.policy_documents;
    if (!same) {
      ++out.replaced;
      *same_key = std::move(id);
    }
  }
  out.document = SerializeIdentityDocument(merged);
  return out;
}

std::string SerializeIdentityDocument(const std::vector<Identity>& identities) {
  json::array list;
  for (const Identity& id : identities) {
    json::object o;
    o["access_key_id"] = id.access_key_id;
    o["secret_access_key"] = id.secret_access_key;
    o["account_id"] = id.account_id;
    o["user_name"] = id.user_name;
    o["admin"] = id.admin;
    o["created_at"] = id.created_at_seconds;
    json::array policies;
    for (const std::string& doc : id.policy_documents) policies.push_back(json::parse(doc));
    o["policies"] = std::move(policies);
    list.push_back(std::move(o));
  }
  json::object root;
  root["version"] = 1;
  root["identities"] = std::move(list);
  std::string out;
  Pretty(root, out, 0);
  out += '\n';
  return out;
}

std::shared_ptr<const IdentitySnapshot> MakeIdentitySnapshot(std::vector<Identity> identities) {
  auto snap = std::make_shared<IdentitySnapshot>();
  for (Identity& id : identities) {
    auto shared = std::make_shared<const Identity>(std::move(id));
    snap->by_key.emplace(shared->access_key_id, shared);
    snap->list.push_back(std::move(shared));
  }
  return snap;
}

Identity NewAdministrator(std::string_view account_id, const Clock& clock) {
  Identity admin;
  admin.access_key_id = GenerateAccessKeyId();
  admin.secret_access_key = GenerateSecretAccessKey();
  admin.account_id = account_id;
  admin.user_name = "admin";
  admin.admin = true;
  admin.created_at_seconds = clock.NowMillis() / 1000;
  admin.policy_documents.emplace_back(kAdministratorPolicy);
  admin.policies.push_back(*Policy::Parse(kAdministratorPolicy, PolicyKind::kIdentity));
  return admin;
}

std::string CredentialsFileText(const Identity& id) {
  return "[default]\naws_access_key_id = " + id.access_key_id +
         "\naws_secret_access_key = " + id.secret_access_key + "\n";
}

Result<std::shared_ptr<const Identity>> IdentityDocumentStore::Lookup(
    std::string_view access_key_id) {
  std::shared_ptr<const IdentitySnapshot> snap = Current();
  auto it = snap->by_key.find(std::string(access_key_id));
  if (it == snap->by_key.end()) {
    snap = AfterMiss();
    it = snap->by_key.find(std::string(access_key_id));
  }
  if (it == snap->by_key.end()) return NotFoundKey(access_key_id);
  return it->second;
}

Result<std::vector<std::shared_ptr<const Identity>>> IdentityDocumentStore::List() {
  return Current()->list;
}

Result<Identity> IdentityDocumentStore::Create(const NewIdentity& spec) {
  BERTH_RETURN_IF_ERROR(ValidateAccountId(spec.account_id));
  BERTH_RETURN_IF_ERROR(ValidateUserName(spec.user_name));
  Identity id;
  id.account_id = spec.account_id;
  id.user_name = spec.user_name;
  id.admin = spec.admin;
  id.created_at_seconds = clock_.NowMillis() / 1000;
  for (size_t i = 0; i < spec.policy_documents.size(); ++i) {
    auto policy = Policy::Parse(spec.policy_documents[i], PolicyKind::kIdentity);
    if (!policy.ok()) {
      return Status::InvalidArgument("policy " + std::to_string(i) + ": " +
                                     policy.status().message());
    }
    // Stored compactly, whatever the input's layout.
    id.policy_documents.push_back(json::serialize(json::parse(spec.policy_documents[i])));
    id.policies.push_back(std::move(*policy));
  }
  id.secret_access_key = GenerateSecretAccessKey();
  Status st = Mutate([&](std::vector<Identity>& all) -> Result<bool> {
    do {
      id.access_key_id = GenerateAccessKeyId();
    } while (std::any_of(all.begin(), all.end(), [&](const Identity& other) {
      return other.access_key_id == id.access_key_id;
    }));
    all.push_back(id);
    return true;
  });
  if (!st.ok()) return st;
  return id;
}

Status IdentityDocumentStore::Delete(std::string_view access_key_id) {
  return Mutate([&](std::vector<Identity>& all) -> Result<bool> {
    auto it = std::find_if(all.begin(), all.end(),
                           [&](const Identity& id) { return id.access_key_id == access_key_id; });
    if (it == all.end()) return NotFoundKey(access_key_id);
    all.erase(it);
    return true;
  });
}

}  // namespace berth::auth
