// Shared documents: the registry-wide values every node must agree on (identities,
// the token signing key, the download-URL secret), each a named text replaced by
// compare-and-set.
//
// auth/ does not depend on storage/: the metadata store's settings reach it through
// SharedDocuments (SettingsDocuments adapts any type with GetSetting/SwapSetting).
// On top of it:
//  - UpdateSharedDocument: a bounded read-modify-CAS loop;
//  - SharedDocumentCache<T>: a parsed copy kept in memory, re-read when older than a
//    given age, so the request path costs one read per interval, not one per request;
//  - SharedSecret: a random secret created once, by whichever node comes first.
//
// SharedDocuments implementations are thread-safe; so are the helpers here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/clock.h"
#include "base/status.h"

namespace berth::auth {

// Names of the shared documents auth/ keeps.
inline constexpr std::string_view kSharedIdentitiesName = "auth/identities";
inline constexpr std::string_view kSharedTokenKeyName = "auth/token-key";
// Suggested name of the download-URL secret (see SharedSecret).
inline constexpr std::string_view kDownloadUrlSecretName = "auth/download-url-secret";

// A named document shared by every node, replaced by compare-and-set.
class SharedDocuments {
 public:
  virtual ~SharedDocuments() = default;
  SharedDocuments() = default;
  SharedDocuments(const SharedDocuments&) = delete;
  SharedDocuments& operator=(const SharedDocuments&) = delete;

  // The document's current text, or nullopt when it does not exist.
  virtual Result<std::optional<std::string>> Get(std::string_view name) = 0;
  // Sets `name` to `value` only if its current text is `expected` (nullopt = only if it
  // does not exist). kAborted when it is not: someone else changed it first. Values
  // are binary-safe.
  virtual Status Swap(std::string_view name, const std::optional<std::string>& expected,
                      std::string_view value) = 0;
};

// Adapts a store with
//   Result<std::string> GetSetting(std::string_view name);        // kNotFound when unset
//   Status SwapSetting(std::string_view name, const std::optional<std::string>& expected,
//                      std::string_view value);                   // kAborted on conflict
// (storage::MetadataStore) without auth/ including it. `store` must outlive this.
template <typename SettingsStore>
class SettingsDocuments final : public SharedDocuments {
 public:
  explicit SettingsDocuments(SettingsStore& store) : store_(store) {}

  Result<std::optional<std::string>> Get(std::string_view name) override {
    auto value = store_.GetSetting(name);
    if (value.ok()) return std::optional<std::string>(std::move(*value));
    if (value.status().Is(Code::kNotFound)) return std::optional<std::string>();
    return value.status();
  }
  Status Swap(std::string_view name, const std::optional<std::string>& expected,
              std::string_view value) override {
    return store_.SwapSetting(name, expected, value);
  }

 private:
  SettingsStore& store_;
};

// In memory: for tests, and for one process that needs no persistence.
class MemorySharedDocuments final : public SharedDocuments {
 public:
  Result<std::optional<std::string>> Get(std::string_view name) override;
  Status Swap(std::string_view name, const std::optional<std::string>& expected,
              std::string_view value) override;

 private:
  std::mutex mu_;
  std::map<std::string, std::string, std::less<>> docs_;  // guarded by mu_
};

struct SharedStoreOptions {
  // A node re-reads a shared document when its copy is this old, so a change made on
  // another node (or by `berth admin`) is seen within this time. Default: 2 s.
  int64_t refresh_ms = 2000;
  // A lookup that misses (an access key this node has not seen) re-reads early, but
  // never sooner than this after the previous read, so that a flood of unknown keys
  // costs at most one read per interval. Default: 250 ms.
  int64_t miss_refresh_ms = 250;
  // Compare-and-set attempts before an edit gives up with kAborted. Default: 50.
  int max_attempts = 50;
};

// Given the current text (nullopt = absent), the text to store, nullopt to leave the
// document as it is, or an error to stop.
using DocumentChange =
    std::function<Result<std::optional<std::string>>(const std::optional<std::string>& current)>;

// Read-modify-write: reads `name`, asks `change` for the new text and swaps it in; on a
// conflict starts over from the new current text (after a short random pause), up to
// `max_attempts` times, then kAborted. Returns the text stored when it returns (the one
// written, or the current one if `change` left it). `change` may run several times; the
// last call is the one whose result was applied.
Result<std::optional<std::string>> UpdateSharedDocument(SharedDocuments& docs,
                                                        std::string_view name, int max_attempts,
                                                        const DocumentChange& change);

// A random secret of `bytes` bytes stored under `name` (hex), created by the first
// caller on any node: every caller gets the same bytes. kCorruption if the stored
// value is not hex.
Result<std::string> SharedSecret(SharedDocuments& docs, std::string_view name, size_t bytes,
                                 int max_attempts = SharedStoreOptions{}.max_attempts);

// The untyped core of SharedDocumentCache<T>.
class SharedDocumentCacheBase {
 public:
  // Turns the stored text (nullopt = absent) into the value kept in memory. An error
  // keeps the previous value (and is logged once).
  using Parser =
      std::function<Result<std::shared_ptr<const void>>(const std::optional<std::string>& text)>;

  SharedDocumentCacheBase(SharedDocuments& docs, std::string name, const Clock& clock,
                          Parser parse);
  SharedDocumentCacheBase(const SharedDocumentCacheBase&) = delete;
  SharedDocumentCacheBase& operator=(const SharedDocumentCacheBase&) = delete;

  // Reads the document now; an error if it cannot be read or parsed.
  Status Load();
  // The value, read again first if the last read is at least `max_age_ms` old. One
  // thread reads at a time; the others meanwhile get the value they would have had.
  std::shared_ptr<const void> Get(int64_t max_age_ms);
  // Installs what this node just wrote: newer than any read still in flight.
  void Install(std::string text, std::shared_ptr<const void> value);

 private:
  SharedDocuments& docs_;
  const std::string name_;
  const Clock& clock_;
  const Parser parse_;
  std::mutex mu_;
  std::optional<std::string> text_;    // guarded by mu_: what `value_` was parsed from
  std::shared_ptr<const void> value_;  // guarded by mu_
  int64_t last_read_ms_ = 0;           // guarded by mu_: when the last read started
  uint64_t generation_ = 0;            // guarded by mu_: bumped by Install
  bool reading_ = false;               // guarded by mu_
  std::string last_error_;             // guarded by mu_
};

// A parsed copy of one shared document. Thread-safe.
template <typename T>
class SharedDocumentCache {
 public:
  using Parser =
      std::function<Result<std::shared_ptr<const T>>(const std::optional<std::string>& text)>;

  SharedDocumentCache(SharedDocuments& docs, std::string name, const Clock& clock, Parser parse)
      : base_(docs, std::move(name), clock,
              [parse = std::move(parse)](
                  const std::optional<std::string>& text) -> Result<std::shared_ptr<const void>> {
                BERTH_ASSIGN_OR_RETURN(std::shared_ptr<const T> value, parse(text));
                return std::shared_ptr<const void>(std::move(value));
              }) {}

  Status Load() { return base_.Load(); }
  std::shared_ptr<const T> Get(int64_t max_age_ms) {
    return std::static_pointer_cast<const T>(base_.Get(max_age_ms));
  }
  void Install(std::string text, std::shared_ptr<const T> value) {
    base_.Install(std::move(text), std::move(value));
  }

 private:
  SharedDocumentCacheBase base_;
};

}  // namespace berth::auth
