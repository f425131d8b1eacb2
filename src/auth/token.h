// Registry tokens: the password `docker login` sends after GetAuthorizationToken.
//
// GetAuthorizationToken answers base64("AWS:" + password); clients then send
// "Authorization: Basic base64("AWS:" + password)" on /v2. The password is
// self-contained, so any node that holds the signing key can check it without a
// session table:
//
//   v1.<key id>.<base64url(claims)>.<base64url(HMAC-SHA256(key, "v1.<key id>.<claims>"))>
//
// where claims = account id, access key id, principal ARN, issued-at and expiry
// (epoch seconds), separated by '\n'. Only [A-Za-z0-9_.-] appear, never ':' (the aws
// CLI splits the decoded token on ':'). Tokens carry the id of the key that signed
// them and only the keyring's current key verifies, so rotating the key revokes every
// token issued before. A token does not outlive its access key only if the caller
// also checks that the key still exists (VerifyToken cannot see the identity store).
//
// TokenKeyring is an immutable value: thread-safe. TokenKeySource implementations (the
// file DATA/token.key for one node, a shared document for several) are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "auth/auth_result.h"
#include "auth/caller.h"
#include "auth/secret_file.h"
#include "auth/shared_documents.h"
#include "base/clock.h"
#include "base/status.h"

namespace berth::auth {

// Default token lifetime: 12 hours, as ECR.
inline constexpr int64_t kDefaultTokenTtlSeconds = 12 * 3600;
inline constexpr size_t kTokenKeyBytes = 32;

// The current token signing key and its id (derived from the key, so two registries
// with different keys never share an id).
class TokenKeyring {
 public:
  // kInvalidArgument unless `key` is kTokenKeyBytes long.
  static Result<TokenKeyring> FromKey(std::string key);
  // A new random key (RAND_bytes).
  static TokenKeyring Generate();

  // 12 lower-case hex characters.
  const std::string& key_id() const { return key_id_; }
  // Raw key bytes.
  const std::string& key() const { return key_; }

 private:
  TokenKeyring(std::string key, std::string key_id)
      : key_(std::move(key)), key_id_(std::move(key_id)) {}
  std::string key_;
  std::string key_id_;
};

struct IssuedToken {
  std::string password;        // the part after "AWS:"
  int64_t expires_at_seconds;  // epoch seconds
};

// Mints a password for `caller` (its account_id, access_key_id and principal_arn)
// valid for `ttl_seconds` from now. kInvalidArgument if ttl_seconds <= 0 or a caller
// field is empty or contains a newline.
Result<IssuedToken> IssueToken(const TokenKeyring& keyring, const Caller& caller,
                               const Clock& clock, int64_t ttl_seconds = kDefaultTokenTtlSeconds);

// base64("AWS:" + password): GetAuthorizationToken's authorizationToken.
std::string DockerAuthorizationToken(std::string_view password);

enum class TokenError : uint8_t {
  kNone = 0,
  kMalformed,   // not a Berth token, or claims that do not parse
  kUnknownKey,  // signed by another registry's key, or by a key since rotated
  kForged,      // the MAC does not match
  kExpired,     // now >= expiry
};
std::string_view TokenErrorName(TokenError e);  // "malformed", "unknown_key", ...

struct TokenClaims {
  Caller caller;  // authenticated, with account_id, access_key_id, principal_arn
  int64_t issued_at_seconds = 0;
  int64_t expires_at_seconds = 0;
};

// Checks a password; every failure is kUnauthorized with a message for people.
AuthResult<TokenClaims, TokenError> VerifyToken(std::string_view password,
                                                const TokenKeyring& keyring, const Clock& clock);

// "Authorization: Basic base64(user:password)".
struct BasicCredentials {
  std::string user;
  std::string password;
};
// kUnauthorized naming the problem: not Basic, bad base64, no ':', empty user.
Result<BasicCredentials> ParseBasicAuthorization(std::string_view header_value);

// Where the token signing key lives: what mints and verifies tokens asks it for the
// current keyring each time. Implementations are thread-safe.
class TokenKeySource {
 public:
  virtual ~TokenKeySource() = default;
  TokenKeySource() = default;
  TokenKeySource(const TokenKeySource&) = delete;
  TokenKeySource& operator=(const TokenKeySource&) = delete;

  // The current keyring; never null. If the key's storage becomes unreadable or
  // corrupt, the last good key stays in use (logged once).
  virtual std::shared_ptr<const TokenKeyring> Current() = 0;
  // Replaces the key with a new random one and makes it current here at once: every
  // token issued so far stops verifying (on other nodes sharing the key, once they
  // re-read it).
  virtual Status Rotate() = 0;
};

// DATA/token.key: the keyring persisted as 64 hex characters, mode 0600.
//
// Current() re-reads the file when it changed (checked at most once a second), so
// `berth admin rotate-token-key` takes effect on a running server without a restart
// and on every node sharing the file. If the file later becomes unreadable or
// corrupt, the last good key stays in use.
class TokenKeyFile final : public TokenKeySource {
 public:
  // Reads `path`, creating it with a new random key if it does not exist.
  static Result<std::unique_ptr<TokenKeyFile>> Open(const std::filesystem::path& path,
                                                    const Clock& clock = Clock::Real());
  // Writes a new random key to `path` (atomically, mode 0600), without an open
  // TokenKeyFile: what `berth admin rotate-token-key` runs. Returns the new key id.
  static Result<std::string> RotateFile(const std::filesystem::path& path);

  std::shared_ptr<const TokenKeyring> Current() override;
  // Writes a new key and makes it current: every token issued so far stops verifying.
  Status Rotate() override;

 private:
  TokenKeyFile(std::filesystem::path path, const Clock& clock)
      : path_(std::move(path)), clock_(clock) {}
  Status Reload();  // requires mu_

  const std::filesystem::path path_;
  const Clock& clock_;
  std::mutex mu_;
  std::shared_ptr<const TokenKeyring> current_;  // guarded by mu_
  std::optional<FileStamp> stamp_;               // guarded by mu_
  int64_t last_check_ms_ = 0;                    // guarded by mu_
  std::string last_error_;                       // guarded by mu_
};

// The keyring in the shared document kSharedTokenKeyName of `docs` (64 hex characters;
// `docs` must outlive the source), so that a token minted by one node verifies on
// every other. The first node to open it when the document is absent creates the key
// (by compare-and-set: every node ends up with the same one). Current() re-reads the
// document when options.refresh_ms old, so a rotation on any node (or by `berth admin
// rotate-token-key`: open, then Rotate()) ends every earlier token on every node
// within that time. A document that does not hold a key is an error here (fail fast).
Result<std::unique_ptr<TokenKeySource>> OpenSharedTokenKey(SharedDocuments& docs,
                                                           const Clock& clock = Clock::Real(),
                                                           SharedStoreOptions options = {});

}  // namespace berth::auth
