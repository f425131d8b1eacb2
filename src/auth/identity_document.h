// The identities document (the format of DATA/identities.json, see identity_store.h)
// and what every IdentityStore backend built on it shares: parsing and validation,
// serialization, the in-memory snapshot, and Lookup/List/Create/Delete.
//
// Internal to auth/: used by identity_store.cc (the file) and
// shared_identity_store.cc (a shared document).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/identity_store.h"
#include "base/clock.h"
#include "base/status.h"

namespace berth::auth {

// Larger documents are refused (they would be a mistake, or an attack).
inline constexpr size_t kMaxIdentityDocumentBytes = 16 << 20;

// Every identity, immutable once built: readers keep the snapshot they got.
struct IdentitySnapshot {
  std::vector<std::shared_ptr<const Identity>> list;  // in document order
  std::unordered_map<std::string, std::shared_ptr<const Identity>> by_key;
};
std::shared_ptr<const IdentitySnapshot> MakeIdentitySnapshot(std::vector<Identity> identities);

// Parses and validates a document; kInvalidArgument naming `source` and the bad field.
Result<std::vector<Identity>> ParseIdentityDocument(std::string_view text, std::string_view source);
// The document, indented (readable and diffable when edited by hand).
std::string SerializeIdentityDocument(const std::vector<Identity>& identities);

// The first-run administrator of `account_id`: "admin", admin = true, a new key and
// kAdministratorPolicy.
Identity NewAdministrator(std::string_view account_id, const Clock& clock);
// DATA/credentials for `id`, in the AWS shared-credentials format (profile default).
std::string CredentialsFileText(const Identity& id);

// An IdentityStore over a whole document: answers from a snapshot and edits by
// read-modify-write of the document. Subclasses say where the document lives.
class IdentityDocumentStore : public IdentityStore {
 public:
  // Edits the identities read from the document's current contents (not the snapshot):
  // returns whether it changed anything (nothing is written otherwise), or an error to
  // refuse. May run more than once (the last run is the one applied).
  using Change = std::function<Result<bool>(std::vector<Identity>&)>;

  Result<std::shared_ptr<const Identity>> Lookup(std::string_view access_key_id) final;
  Result<std::vector<std::shared_ptr<const Identity>>> List() final;
  Result<Identity> Create(const NewIdentity& spec) final;
  Status Delete(std::string_view access_key_id) final;

  // Applies `change` to the document; on success the snapshot shows the result.
  virtual Status Mutate(const Change& change) = 0;

 protected:
  explicit IdentityDocumentStore(const Clock& clock) : clock_(clock) {}

  // The snapshot to answer from, refreshed first if it is due.
  virtual std::shared_ptr<const IdentitySnapshot> Current() = 0;
  // Called when a lookup missed: a fresher snapshot if the backend may look again now
  // (a key created a moment ago elsewhere should work at once), else the current one.
  virtual std::shared_ptr<const IdentitySnapshot> AfterMiss() = 0;

  const Clock& clock_;
};

}  // namespace berth::auth
