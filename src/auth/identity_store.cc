#include "auth/identity_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "auth/crypto.h"
#include "auth/secret_file.h"

namespace berth::auth {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr int64_t kReloadIntervalMs = 1000;
constexpr size_t kMaxFileBytes = 16 << 20;

struct Snapshot {
  std::vector<std::shared_ptr<const Identity>> list;
  std::unordered_map<std::string, std::shared_ptr<const Identity>> by_key;
};

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

Result<std::vector<Identity>> ParseFile(std::string_view text, const fs::path& path) {
  auto wrap = [&](const Status& st) {
    return Status::InvalidArgument(path.string() + ": " + st.message());
  };
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

std::string SerializeFile(const std::vector<Identity>& identities) {
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

std::shared_ptr<const Snapshot> MakeSnapshot(std::vector<Identity> identities) {
  auto snap = std::make_shared<Snapshot>();
  for (Identity& id : identities) {
    auto shared = std::make_shared<const Identity>(std::move(id));
    snap->by_key.emplace(shared->access_key_id, shared);
    snap->list.push_back(std::move(shared));
  }
  return snap;
}

std::string RandomFrom(std::string_view alphabet, size_t n) {
  // Alphabets of 32 and 64 characters divide 256: masking a byte is unbiased.
  std::string bytes = RandomBytes(n);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[i] = alphabet[static_cast<unsigned char>(bytes[i]) % alphabet.size()];
  }
  return out;
}

class FileIdentityStore final : public IdentityStore {
 public:
  FileIdentityStore(fs::path path, const Clock& clock) : path_(std::move(path)), clock_(clock) {}

  // Loads the file; errors when it exists and does not parse.
  Status Load() {
    std::lock_guard<std::mutex> l(mu_);
    return ReloadLocked(/*force=*/true);
  }

  Result<std::shared_ptr<const Identity>> Lookup(std::string_view access_key_id) override {
    auto snap = Current();
    auto it = snap->by_key.find(std::string(access_key_id));
    if (it == snap->by_key.end()) {
      // A key created a moment ago (by `berth admin` on this node) must work at once:
      // on a miss, look at the file again whatever the reload interval (a stat; the
      // file is re-read only if it changed).
      std::lock_guard<std::mutex> l(mu_);
      (void)ReloadLocked(/*force=*/false);
      snap = snapshot_;
      it = snap->by_key.find(std::string(access_key_id));
    }
    if (it == snap->by_key.end()) {
      return Status::NotFound("no identity has access key id '" +
                              std::string(access_key_id.substr(0, 128)) + "'");
    }
    return it->second;
  }

  Result<std::vector<std::shared_ptr<const Identity>>> List() override { return Current()->list; }

  Result<Identity> Create(const NewIdentity& spec) override {
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

  Status Delete(std::string_view access_key_id) override {
    return Mutate([&](std::vector<Identity>& all) -> Result<bool> {
      auto it = std::find_if(all.begin(), all.end(),
                             [&](const Identity& id) { return id.access_key_id == access_key_id; });
      if (it == all.end()) {
        return Status::NotFound("no identity has access key id '" +
                                std::string(access_key_id.substr(0, 128)) + "'");
      }
      all.erase(it);
      return true;
    });
  }

  // Read-modify-write under the cross-process lock, from the file's current contents
  // (not the possibly second-old snapshot). `change` returns whether it changed
  // anything (nothing is written otherwise), or an error to refuse.
  Status Mutate(const std::function<Result<bool>(std::vector<Identity>&)>& change) {
    BERTH_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(LockPath()));
    std::vector<Identity> all;
    auto text = ReadSmallFile(path_, kMaxFileBytes);
    if (text.ok()) {
      BERTH_ASSIGN_OR_RETURN(all, ParseFile(*text, path_));
    } else if (!text.status().Is(Code::kNotFound)) {
      return text.status();
    }
    BERTH_ASSIGN_OR_RETURN(bool changed, change(all));
    if (!changed) return Status::Ok();
    BERTH_RETURN_IF_ERROR(WriteFileAtomically(path_, SerializeFile(all), 0600));
    std::lock_guard<std::mutex> l(mu_);
    return ReloadLocked(/*force=*/true);
  }

 private:
  fs::path LockPath() const {
    fs::path lock = path_;
    lock += ".lock";
    return lock;
  }

  std::shared_ptr<const Snapshot> Current() {
    std::lock_guard<std::mutex> l(mu_);
    if (clock_.NowMillis() - last_check_ms_ >= kReloadIntervalMs) {
      Status st = ReloadLocked(/*force=*/false);
      // Logged once per distinct failure, not once a second.
      if (!st.ok() && st.ToString() != last_error_) {
        spdlog::warn(
            "identity file reload failed, keeping the previous identities path={} "
            "error=\"{}\"",
            path_.string(), st.ToString());
      }
      last_error_ = st.ok() ? std::string() : st.ToString();
    }
    return snapshot_;
  }

  // Requires mu_. Re-reads the file if its stamp changed (or `force`).
  Status ReloadLocked(bool force) {
    last_check_ms_ = clock_.NowMillis();
    BERTH_ASSIGN_OR_RETURN(std::optional<FileStamp> stamp, StatFile(path_));
    if (!force && loaded_ && stamp == stamp_) return Status::Ok();
    if (!stamp.has_value()) {
      // No file: no identities (a deleted file revokes every key).
      snapshot_ = MakeSnapshot({});
    } else {
      BERTH_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path_, kMaxFileBytes));
      BERTH_ASSIGN_OR_RETURN(std::vector<Identity> identities, ParseFile(text, path_));
      snapshot_ = MakeSnapshot(std::move(identities));
    }
    stamp_ = stamp;
    loaded_ = true;
    return Status::Ok();
  }

  const fs::path path_;
  const Clock& clock_;
  std::mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ = MakeSnapshot({});  // guarded by mu_
  std::optional<FileStamp> stamp_;                               // guarded by mu_
  bool loaded_ = false;                                          // guarded by mu_
  int64_t last_check_ms_ = 0;                                    // guarded by mu_
  std::string last_error_;                                       // guarded by mu_
};

}  // namespace

std::string Identity::principal_arn() const {
  return "arn:aws:iam::" + account_id + (admin ? ":root" : ":user/" + user_name);
}

Caller Identity::ToCaller() const {
  Caller c;
  c.authenticated = true;
  c.account_id = account_id;
  c.access_key_id = access_key_id;
  c.principal_arn = principal_arn();
  return c;
}

Status ValidateAccountId(std::string_view account_id) {
  if (account_id.size() != 12 || !std::all_of(account_id.begin(), account_id.end(),
                                              [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::InvalidArgument("account id must be 12 digits, got '" +
                                   std::string(account_id.substr(0, 64)) + "'");
  }
  return Status::Ok();
}

Status ValidateUserName(std::string_view user_name) {
  bool ok = !user_name.empty() && user_name.size() <= 64 &&
            std::all_of(user_name.begin(), user_name.end(), [](char c) {
              return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     std::string_view("+=,.@_-").find(c) != std::string_view::npos;
            });
  if (!ok) {
    return Status::InvalidArgument("user name must be 1-64 of A-Z a-z 0-9 + = , . @ _ -, got '" +
                                   std::string(user_name.substr(0, 64)) + "'");
  }
  return Status::Ok();
}

std::string GenerateAccessKeyId() {
  return "AKIA" + RandomFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16);
}

std::string GenerateSecretAccessKey() {
  return RandomFrom("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40);
}

Result<std::unique_ptr<IdentityStore>> OpenFileIdentityStore(const fs::path& file,
                                                             const Clock& clock) {
  auto store = std::make_unique<FileIdentityStore>(file, clock);
  BERTH_RETURN_IF_ERROR(store->Load());
  return std::unique_ptr<IdentityStore>(std::move(store));
}

Result<bool> EnsureAdministrator(const fs::path& data_dir, std::string_view account_id) {
  BERTH_RETURN_IF_ERROR(ValidateAccountId(account_id));
  FileIdentityStore store(data_dir / kIdentitiesFileName, Clock::Real());
  BERTH_RETURN_IF_ERROR(store.Load());
  bool created = false;
  Status st = store.Mutate([&](std::vector<Identity>& all) -> Result<bool> {
    if (!all.empty()) return false;
    Identity admin;
    admin.access_key_id = GenerateAccessKeyId();
    admin.secret_access_key = GenerateSecretAccessKey();
    admin.account_id = account_id;
    admin.user_name = "admin";
    admin.admin = true;
    admin.created_at_seconds = Clock::Real().NowMillis() / 1000;
    admin.policy_documents.emplace_back(kAdministratorPolicy);
    admin.policies.push_back(*Policy::Parse(kAdministratorPolicy, PolicyKind::kIdentity));
    // Credentials first: if writing identities.json then fails, the next start
    // creates a new administrator and overwrites this file; never the reverse (an
    // administrator whose secret nobody has).
    BERTH_RETURN_IF_ERROR(
        WriteFileAtomically(data_dir / kCredentialsFileName,
                            "[default]\naws_access_key_id = " + admin.access_key_id +
                                "\naws_secret_access_key = " + admin.secret_access_key + "\n",
                            0600));
    all.push_back(std::move(admin));
    created = true;
    return true;
  });
  if (!st.ok()) return st;
  return created;
}

CredentialLookup MakeCredentialLookup(IdentityStore& store) {
  return [&store](std::string_view access_key_id) -> Result<SigningCredential> {
    BERTH_ASSIGN_OR_RETURN(std::shared_ptr<const Identity> id, store.Lookup(access_key_id));
    SigningCredential c;
    c.secret_access_key = id->secret_access_key;
    c.caller = id->ToCaller();
    return c;
  };
}

}  // namespace berth::auth
