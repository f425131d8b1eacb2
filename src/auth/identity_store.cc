#include "auth/identity_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <optional>

#include "auth/crypto.h"
#include "auth/identity_document.h"
#include "auth/secret_file.h"

namespace berth::auth {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kReloadIntervalMs = 1000;

std::string RandomFrom(std::string_view alphabet, size_t n) {
  // Alphabets of 32 and 64 characters divide 256: masking a byte is unbiased.
  std::string bytes = RandomBytes(n);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[i] = alphabet[static_cast<unsigned char>(bytes[i]) % alphabet.size()];
  }
  return out;
}

class FileIdentityStore final : public IdentityDocumentStore {
 public:
  FileIdentityStore(fs::path path, const Clock& clock)
      : IdentityDocumentStore(clock), path_(std::move(path)) {}

  // Loads the file; errors when it exists and does not parse.
  Status Load() {
    std::lock_guard<std::mutex> l(mu_);
    return ReloadLocked(/*force=*/true);
  }

  // Read-modify-write under the cross-process lock, from the file's current contents
  // (not the possibly second-old snapshot).
  Status Mutate(const Change& change) override {
    BERTH_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(LockPath()));
    std::vector<Identity> all;
    auto text = ReadSmallFile(path_, kMaxIdentityDocumentBytes);
    if (text.ok()) {
      BERTH_ASSIGN_OR_RETURN(all, ParseIdentityDocument(*text, path_.string()));
    } else if (!text.status().Is(Code::kNotFound)) {
      return text.status();
    }
    BERTH_ASSIGN_OR_RETURN(bool changed, change(all));
    if (!changed) return Status::Ok();
    BERTH_RETURN_IF_ERROR(WriteFileAtomically(path_, SerializeIdentityDocument(all), 0600));
    std::lock_guard<std::mutex> l(mu_);
    return ReloadLocked(/*force=*/true);
  }

 private:
  fs::path LockPath() const {
    fs::path lock = path_;
    lock += ".lock";
    return lock;
  }

  std::shared_ptr<const IdentitySnapshot> Current() override {
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

  // A key created a moment ago (by `berth admin` on this node) must work at once: on a
  // miss, look at the file again whatever the reload interval (a stat; the file is
  // re-read only if it changed).
  std::shared_ptr<const IdentitySnapshot> AfterMiss() override {
    std::lock_guard<std::mutex> l(mu_);
    (void)ReloadLocked(/*force=*/false);
    return snapshot_;
  }

  // Requires mu_. Re-reads the file if its stamp changed (or `force`).
  Status ReloadLocked(bool force) {
    last_check_ms_ = clock_.NowMillis();
    BERTH_ASSIGN_OR_RETURN(std::optional<FileStamp> stamp, StatFile(path_));
    if (!force && loaded_ && stamp == stamp_) return Status::Ok();
    if (!stamp.has_value()) {
      // No file: no identities (a deleted file revokes every key).
      snapshot_ = MakeIdentitySnapshot({});
    } else {
      BERTH_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path_, kMaxIdentityDocumentBytes));
      BERTH_ASSIGN_OR_RETURN(std::vector<Identity> identities,
                             ParseIdentityDocument(text, path_.string()));
      snapshot_ = MakeIdentitySnapshot(std::move(identities));
    }
    stamp_ = stamp;
    loaded_ = true;
    return Status::Ok();
  }

  const fs::path path_;
  std::mutex mu_;
  // Guarded by mu_:
  std::shared_ptr<const IdentitySnapshot> snapshot_ = MakeIdentitySnapshot({});
  std::optional<FileStamp> stamp_;
  bool loaded_ = false;
  int64_t last_check_ms_ = 0;
  std::string last_error_;
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
    Identity admin = NewAdministrator(account_id, Clock::Real());
    // Credentials first: if writing identities.json then fails, the next start
    // creates a new administrator and overwrites this file; never the reverse (an
    // administrator whose secret nobody has).
    BERTH_RETURN_IF_ERROR(
        WriteFileAtomically(data_dir / kCredentialsFileName, CredentialsFileText(admin), 0600));
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
