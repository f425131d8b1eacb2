// Identities: accounts, their access keys and the identity policies attached to them.
//
// IdentityStore is the interface the request path uses (Lookup by access key id) and
// `berth admin` edits (Create, Delete, List). Two backends keep the same document:
//  - the file backend (one node): DATA/identities.json (mode 0600, replaced
//    atomically), re-read when it changes on disk — checked at most once a second —
//    so `berth admin` commands take effect on a running server without a restart;
//  - the shared backend (several nodes): the shared document "auth/identities" in the
//    metadata store, edited by compare-and-set and re-read every refresh_ms, so a key
//    created or deleted on any node (or by `berth admin`) counts on every node within
//    that time.
// A document that stops parsing is logged and ignored (the last good contents stay in
// use).
//
// Document format (hand-editable; policies are policy documents as JSON objects):
//   {"version": 1, "identities": [{"access_key_id": "AKIA...", "secret_access_key": "...",
//     "account_id": "123456789012", "user_name": "admin", "admin": true,
//     "created_at": 1714979289, "policies": [{"Version": "2012-10-17", "Statement": [...]}]}]}
//
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/caller.h"
#include "auth/policy.h"
#include "auth/shared_documents.h"
#include "auth/sigv4.h"
#include "base/clock.h"
#include "base/status.h"

namespace berth::auth {

struct Identity {
  std::string access_key_id;      // "AKIA" + 16 base32 characters
  std::string secret_access_key;  // 40 characters
  std::string account_id;         // 12 digits
  std::string user_name;
  // The account's administrator: its principal is arn:aws:iam::ACCOUNT:root, as AWS's
  // root user. Its permissions still come from its policies.
  bool admin = false;
  int64_t created_at_seconds = 0;
  std::vector<std::string> policy_documents;  // JSON text, one per attached policy
  std::vector<Policy> policies;               // the same, parsed (kIdentity)

  // arn:aws:iam::ACCOUNT:root for an admin, else arn:aws:iam::ACCOUNT:user/NAME.
  std::string principal_arn() const;
  // authenticated, account_id, access_key_id, principal_arn.
  Caller ToCaller() const;
};

struct NewIdentity {
  std::string account_id;                     // 12 digits
  std::string user_name;                      // 1-64 of [A-Za-z0-9+=,.@_-]
  std::vector<std::string> policy_documents;  // each must parse as an identity policy
  bool admin = false;
};

class IdentityStore {
 public:
  virtual ~IdentityStore() = default;
  IdentityStore() = default;
  IdentityStore(const IdentityStore&) = delete;
  IdentityStore& operator=(const IdentityStore&) = delete;

  // NotFound when no identity has this access key id. The returned snapshot stays
  // valid (and unchanged) however the store changes afterwards.
  virtual Result<std::shared_ptr<const Identity>> Lookup(std::string_view access_key_id) = 0;
  // Every identity, in file order.
  virtual Result<std::vector<std::shared_ptr<const Identity>>> List() = 0;
  // Creates an identity with a new access key id and secret, and returns it (the only
  // time the secret is shown). kInvalidArgument names the bad field.
  virtual Result<Identity> Create(const NewIdentity& spec) = 0;
  // NotFound when no identity has this access key id.
  virtual Status Delete(std::string_view access_key_id) = 0;
};

// What MergeIdentityDocuments made.
struct MergedIdentities {
  std::string document;  // the merged identities document
  size_t added = 0;      // identities of `from` that `into` did not have
  size_t replaced = 0;   // identities of `from` that differed from `into`'s (from wins)
};
// Merges the identities document `from` into `into` (nullopt = no document yet), by
// access key id: every identity of `from` ends up in the result as it is in `from`;
// those only in `into` stay. Both documents are validated (kInvalidArgument naming
// `into_source` or `from_source`). What `berth admin migrate` does with identities.
Result<MergedIdentities> MergeIdentityDocuments(const std::optional<std::string>& into,
                                                std::string_view into_source,
                                                std::string_view from,
                                                std::string_view from_source);

inline constexpr std::string_view kIdentitiesFileName = "identities.json";
inline constexpr std::string_view kCredentialsFileName = "credentials";

// Opens DATA/identities.json (`file`); a missing file is an empty store, created on the
// first Create. A file that does not parse is an error here (fail fast at startup).
Result<std::unique_ptr<IdentityStore>> OpenFileIdentityStore(const std::filesystem::path& file,
                                                             const Clock& clock = Clock::Real());

// First run: if DATA/identities.json holds no identity, creates an administrator
// ("admin", admin = true) for `account_id` with the policy Allow ecr:* on *, and writes
// its key to DATA/credentials in the AWS shared-credentials format (mode 0600):
//   [default]\naws_access_key_id = ...\naws_secret_access_key = ...\n
// Returns true if it created one (so the server can say so once), false if identities
// already existed. Safe against concurrent first starts (file lock).
Result<bool> EnsureAdministrator(const std::filesystem::path& data_dir,
                                 std::string_view account_id);

// The identities in the shared document kSharedIdentitiesName of `docs` (which must
// outlive the store); an absent document is an empty store, created on the first
// Create. Lookup and List answer from a copy re-read when options.refresh_ms old; a
// Lookup that misses re-reads early, at most once per options.miss_refresh_ms. Create
// and Delete are compare-and-set loops over the document (options.max_attempts, then
// kAborted), visible on this node at once. A document that does not parse is an error
// here (fail fast at startup); `clock` paces the re-reads.
Result<std::unique_ptr<IdentityStore>> OpenSharedIdentityStore(SharedDocuments& docs,
                                                               const Clock& clock = Clock::Real(),
                                                               SharedStoreOptions options = {});

// First run of a registry on shared documents: if the identities document holds no
// identity, creates the administrator (as EnsureAdministrator) by compare-and-set from
// absent/empty. Of nodes starting at once exactly one wins; only it writes
// DATA/credentials (same format and mode as EnsureAdministrator) and returns true; the
// others return false and write nothing. The winner writes the credentials to a
// temporary file in `data_dir` before it swaps, and renames it after: should it die in
// between, the administrator's key is in DATA/credentials.pending-*.
Result<bool> EnsureSharedAdministrator(SharedDocuments& docs, const std::filesystem::path& data_dir,
                                       std::string_view account_id);

// Moving a registry from one node's files to shared documents: if the shared identities
// document does not exist and `file` (DATA/identities.json) does, copies the file in
// (after validating it). Returns true if it did. Run it before
// EnsureSharedAdministrator, which would otherwise create a new administrator.
Result<bool> ImportIdentityFile(SharedDocuments& docs, const std::filesystem::path& file);

// A SigV4 CredentialLookup backed by `store` (which must outlive it).
CredentialLookup MakeCredentialLookup(IdentityStore& store);

// New random credentials in AWS's shapes.
std::string GenerateAccessKeyId();      // "AKIA" + 16 of [A-Z2-7]
std::string GenerateSecretAccessKey();  // 40 of [A-Za-z0-9+/]

// Validation used by Create (exposed for the CLI's messages and tests).
Status ValidateAccountId(std::string_view account_id);
Status ValidateUserName(std::string_view user_name);

// The policy EnsureAdministrator attaches: Allow ecr:* on *.
inline constexpr std::string_view kAdministratorPolicy =
    R"({"Version":"2012-10-17","Statement":[{"Sid":"BerthAdministrator","Effect":"Allow","Action":"ecr:*","Resource":"*"}]})";

}  // namespace berth::auth
