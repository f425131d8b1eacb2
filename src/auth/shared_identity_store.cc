// The identities document kept in SharedDocuments (see identity_store.h).

#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "auth/crypto.h"
#include "auth/identity_document.h"
#include "auth/identity_store.h"
#include "auth/secret_file.h"

namespace berth::auth {
namespace {

namespace fs = std::filesystem;

std::string Source() { return "shared document " + std::string(kSharedIdentitiesName); }

Result<std::shared_ptr<const IdentitySnapshot>> ParseSnapshot(
    const std::optional<std::string>& text) {
  // Absent: no identities yet (nor ever, if someone removed the document).
  if (!text.has_value()) return MakeIdentitySnapshot({});
  BERTH_ASSIGN_OR_RETURN(std::vector<Identity> identities, ParseIdentityDocument(*text, Source()));
  return MakeIdentitySnapshot(std::move(identities));
}

class SharedIdentityStore final : public IdentityDocumentStore {
 public:
  SharedIdentityStore(SharedDocuments& docs, const Clock& clock, SharedStoreOptions options)
      : IdentityDocumentStore(clock),
        docs_(docs),
        options_(options),
        cache_(docs, std::string(kSharedIdentitiesName), clock, ParseSnapshot) {}

  Status Load() { return cache_.Load(); }

  Status Mutate(const Change& change) override {
    std::vector<Identity> result;
    bool wrote = false;
    auto stored = UpdateSharedDocument(
        docs_, kSharedIdentitiesName, options_.max_attempts,
        [&](const std::optional<std::string>& current) -> Result<std::optional<std::string>> {
          wrote = false;
          std::vector<Identity> all;
          if (current.has_value()) {
            // A document that does not parse is refused, not overwritten: someone may
            // be fixing it by hand.
            BERTH_ASSIGN_OR_RETURN(all, ParseIdentityDocument(*current, Source()));
          }
          BERTH_ASSIGN_OR_RETURN(bool changed, change(all));
          if (!changed) return std::optional<std::string>();
          wrote = true;
          std::string text = SerializeIdentityDocument(all);
          result = std::move(all);
          return std::optional<std::string>(std::move(text));
        });
    if (!stored.ok()) return stored.status();
    if (wrote) cache_.Install(std::move(**stored), MakeIdentitySnapshot(std::move(result)));
    return Status::Ok();
  }

 private:
  std::shared_ptr<const IdentitySnapshot> Current() override {
    return cache_.Get(options_.refresh_ms);
  }
  std::shared_ptr<const IdentitySnapshot> AfterMiss() override {
    return cache_.Get(options_.miss_refresh_ms);
  }

  SharedDocuments& docs_;
  const SharedStoreOptions options_;
  SharedDocumentCache<IdentitySnapshot> cache_;
};

}  // namespace

Result<std::unique_ptr<IdentityStore>> OpenSharedIdentityStore(SharedDocuments& docs,
                                                               const Clock& clock,
                                                               SharedStoreOptions options) {
  auto store = std::make_unique<SharedIdentityStore>(docs, clock, options);
  BERTH_RETURN_IF_ERROR(store->Load());
  return std::unique_ptr<IdentityStore>(std::move(store));
}

Result<bool> EnsureSharedAdministrator(SharedDocuments& docs, const fs::path& data_dir,
                                       std::string_view account_id) {
  BERTH_RETURN_IF_ERROR(ValidateAccountId(account_id));
  SharedIdentityStore store(docs, Clock::Real(), SharedStoreOptions{});
  std::optional<Identity> admin;  // made once, kept across compare-and-set attempts
  fs::path pending = data_dir / kCredentialsFileName;
  pending += ".pending-" + HexEncode(RandomBytes(6));
  bool created = false;
  Status st = store.Mutate([&](std::vector<Identity>& all) -> Result<bool> {
    created = false;
    if (!all.empty()) return false;
    if (!admin.has_value()) {
      Identity fresh = NewAdministrator(account_id, Clock::Real());
      // The secret is on disk before the administrator exists anywhere: never an
      // administrator whose secret nobody has.
      BERTH_RETURN_IF_ERROR(WriteFileAtomically(pending, CredentialsFileText(fresh), 0600));
      admin = std::move(fresh);
    }
    all.push_back(*admin);
    created = true;
    return true;
  });
  if (st.ok() && created) {
    if (Status renamed = RenameDurably(pending, data_dir / kCredentialsFileName); !renamed.ok()) {
      return Status(renamed.code(), "created the administrator, but its credentials stay in " +
                                        pending.string() + ": " + renamed.message());
    }
    return true;
  }
  if (admin.has_value() && !st.ok() && !st.Is(Code::kAborted)) {
    // The store failed, perhaps after it applied the swap: keep the only copy of what
    // may now be the administrator's secret.
    return Status(st.code(), st.message() + " (if the administrator was created anyway, its " +
                                 "credentials are in " + pending.string() + ")");
  }
  // Lost the race (or every attempt): the key in the pending file never became valid.
  if (admin.has_value()) {
    std::error_code ec;
    fs::remove(pending, ec);
  }
  if (!st.ok()) return st;
  return false;
}

Result<bool> ImportIdentityFile(SharedDocuments& docs, const fs::path& file) {
  auto text = ReadSmallFile(file, kMaxIdentityDocumentBytes);
  if (!text.ok()) {
    if (text.status().Is(Code::kNotFound)) return false;
    return text.status();
  }
  BERTH_RETURN_IF_ERROR(ParseIdentityDocument(*text, file.string()).status());
  bool imported = false;
  auto stored = UpdateSharedDocument(
      docs, kSharedIdentitiesName, SharedStoreOptions{}.max_attempts,
      [&](const std::optional<std::string>& current) -> Result<std::optional<std::string>> {
        imported = !current.has_value();
        if (!imported) return std::optional<std::string>();
        return std::optional<std::string>(*text);
      });
  if (!stored.ok()) return stored.status();
  return imported;
}

}  // namespace berth::auth
