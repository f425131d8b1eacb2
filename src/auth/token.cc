#include "auth/token.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <vector>

#include "auth/crypto.h"

namespace berth::auth {
namespace {

constexpr std::string_view kVersion = "v1";
constexpr size_t kKeyIdHexChars = 12;

Status Unauthorized(std::string msg) { return Status(Code::kUnauthorized, std::move(msg)); }

AuthResult<TokenClaims, TokenError> Fail(TokenError kind, std::string msg) {
  return AuthResult<TokenClaims, TokenError>(kind, Unauthorized(std::move(msg)));
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::optional<int64_t> ParseInt(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

std::string Mac(const TokenKeyring& keyring, std::string_view signed_part) {
  return Base64UrlEncode(HmacSha256(keyring.key(), signed_part));
}

// The key as stored, in the file or in the shared document: 64 hex characters.
std::string KeyText(const TokenKeyring& keyring) { return HexEncode(keyring.key()); }

Result<TokenKeyring> ParseKeyText(std::string_view text, std::string_view source) {
  std::string_view s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
    s.remove_suffix(1);
  auto key = HexDecode(s);
  if (!key.has_value() || key->size() != kTokenKeyBytes) {
    return Status::Corruption(std::string(source) + " does not hold a token key (" +
                              std::to_string(kTokenKeyBytes * 2) +
                              " hex characters); remove it or run `berth admin rotate-token-key`");
  }
  return TokenKeyring::FromKey(std::move(*key));
}

std::filesystem::path LockPath(const std::filesystem::path& path) {
  std::filesystem::path lock = path;
  lock += ".lock";
  return lock;
}

std::string SharedSource() { return "shared document " + std::string(kSharedTokenKeyName); }

Result<std::shared_ptr<const TokenKeyring>> ParseSharedKey(const std::optional<std::string>& text) {
  if (!text.has_value()) {
    return Status::NotFound(SharedSource() +
                            " does not exist (was it deleted?); run `berth admin "
                            "rotate-token-key` to create a new key");
  }
  BERTH_ASSIGN_OR_RETURN(TokenKeyring keyring, ParseKeyText(*text, SharedSource()));
  return std::make_shared<const TokenKeyring>(std::move(keyring));
}

class SharedTokenKey final : public TokenKeySource {
 public:
  SharedTokenKey(SharedDocuments& docs, const Clock& clock, SharedStoreOptions options)
      : docs_(docs),
        options_(options),
        cache_(docs, std::string(kSharedTokenKeyName), clock, ParseSharedKey) {}

  // Creates the key if there is none (the first node wins; the others adopt its key),
  // then loads it.
  Status Open() {
    return Replace([](const std::optional<std::string>& current) { return !current.has_value(); });
  }

  std::shared_ptr<const TokenKeyring> Current() override { return cache_.Get(options_.refresh_ms); }

  Status Rotate() override {
    return Replace([](const std::optional<std::string>&) { return true; });
  }

 private:
  // Swaps in a new random key when `wanted` says so given the current text; then makes
  // whatever is stored current here.
  Status Replace(const std::function<bool(const std::optional<std::string>&)>& wanted) {
    BERTH_ASSIGN_OR_RETURN(
        std::optional<std::string> stored,
        UpdateSharedDocument(
            docs_, kSharedTokenKeyName, options_.max_attempts,
            [&](const std::optional<std::string>& current) -> Result<std::optional<std::string>> {
              if (!wanted(current)) return std::optional<std::string>();
              return std::optional<std::string>(KeyText(TokenKeyring::Generate()));
            }));
    BERTH_ASSIGN_OR_RETURN(std::shared_ptr<const TokenKeyring> keyring, ParseSharedKey(stored));
    cache_.Install(std::move(*stored), std::move(keyring));
    return Status::Ok();
  }

  SharedDocuments& docs_;
  const SharedStoreOptions options_;
  SharedDocumentCache<TokenKeyring> cache_;
};

}  // namespace

Result<TokenKeyring> TokenKeyring::FromKey(std::string key) {
  if (key.size() != kTokenKeyBytes) {
    return Status::InvalidArgument("token key must be " + std::to_string(kTokenKeyBytes) +
                                   " bytes, got " + std::to_string(key.size()));
  }
  // The id names the key without revealing it.
  std::string id = HexEncode(Sha256("berth token key id\n" + key)).substr(0, kKeyIdHexChars);
  return TokenKeyring(std::move(key), std::move(id));
}

TokenKeyring TokenKeyring::Generate() { return *FromKey(RandomBytes(kTokenKeyBytes)); }

Result<IssuedToken> IssueToken(const TokenKeyring& keyring, const Caller& caller,
                               const Clock& clock, int64_t ttl_seconds) {
  if (ttl_seconds <= 0) return Status::InvalidArgument("token lifetime must be positive");
  for (const std::string* field :
       {&caller.account_id, &caller.access_key_id, &caller.principal_arn}) {
    if (field->empty() || field->find('\n') != std::string::npos) {
      return Status::InvalidArgument(
          "a token needs the caller's account id, access key id and principal ARN");
    }
  }
  const int64_t now = clock.NowMillis() / 1000;
  IssuedToken out;
  out.expires_at_seconds = now + ttl_seconds;
  std::string claims = caller.account_id + "\n" + caller.access_key_id + "\n" +
                       caller.principal_arn + "\n" + std::to_string(now) + "\n" +
                       std::to_string(out.expires_at_seconds);
  std::string signed_part =
      std::string(kVersion) + "." + keyring.key_id() + "." + Base64UrlEncode(claims);
  out.password = signed_part + "." + Mac(keyring, signed_part);
  return out;
}

std::string DockerAuthorizationToken(std::string_view password) {
  std::string plain = "AWS:";
  plain += password;
  return Base64Encode(plain);
}

std::string_view TokenErrorName(TokenError e) {
  switch (e) {
    case TokenError::kNone:
      return "none";
    case TokenError::kMalformed:
      return "malformed";
    case TokenError::kUnknownKey:
      return "unknown_key";
    case TokenError::kForged:
      return "forged";
    case TokenError::kExpired:
      return "expired";
  }
  return "unknown";
}

AuthResult<TokenClaims, TokenError> VerifyToken(std::string_view password,
                                                const TokenKeyring& keyring, const Clock& clock) {
  auto parts = Split(password, '.');
  auto is_hex = [](std::string_view id) {
    return id.size() == kKeyIdHexChars && std::all_of(id.begin(), id.end(), [](char c) {
             return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
  };
  if (parts.size() != 4 || parts[0] != kVersion || !is_hex(parts[1])) {
    return Fail(TokenError::kMalformed,
                "the password is not a registry token from this registry; get one with "
                "`aws ecr get-login-password`");
  }
  if (parts[1] != keyring.key_id()) {
    return Fail(TokenError::kUnknownKey,
                "the registry token was signed with a key this registry does not use (another "
                "registry's, or one rotated since); log in again");
  }
  std::string_view signed_part = password.substr(0, password.size() - parts[3].size() - 1);
  if (!ConstantTimeEquals(Mac(keyring, signed_part), parts[3])) {
    return Fail(TokenError::kForged, "the registry token's signature is invalid");
  }
  // Authentic from here on: a parse failure means a bug or a format change.
  auto claims_text = Base64UrlDecode(parts[2]);
  if (!claims_text.has_value()) {
    return Fail(TokenError::kMalformed, "the registry token's claims are not valid base64url");
  }
  auto fields = Split(*claims_text, '\n');
  std::optional<int64_t> iat, exp;
  if (fields.size() == 5) {
    iat = ParseInt(fields[3]);
    exp = ParseInt(fields[4]);
  }
  if (fields.size() != 5 || fields[0].empty() || fields[1].empty() || fields[2].empty() ||
      !iat.has_value() || !exp.has_value() || *exp < *iat) {
    return Fail(TokenError::kMalformed, "the registry token's claims are malformed");
  }
  const int64_t now = clock.NowMillis() / 1000;
  if (now >= *exp) {
    return Fail(TokenError::kExpired,
                "the registry token expired " + std::to_string(now - *exp) +
                    " seconds ago; log in again (`aws ecr get-login-password | docker login ...`)");
  }
  TokenClaims out;
  out.caller.authenticated = true;
  out.caller.account_id = fields[0];
  out.caller.access_key_id = fields[1];
  out.caller.principal_arn = fields[2];
  out.issued_at_seconds = *iat;
  out.expires_at_seconds = *exp;
  return out;
}

Result<BasicCredentials> ParseBasicAuthorization(std::string_view header_value) {
  std::string_view v = header_value;
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  size_t sp = v.find(' ');
  std::string_view scheme = v.substr(0, sp);
  auto lower_eq = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == y;
           });
  };
  if (!lower_eq(scheme, "basic")) {
    return Unauthorized("expected 'Authorization: Basic <base64(user:password)>', got scheme '" +
                        std::string(scheme.substr(0, 32)) + "'");
  }
  std::string_view encoded = sp == std::string_view::npos ? "" : v.substr(sp + 1);
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
  if (encoded.empty()) return Unauthorized("Basic authorization has no credentials");
  auto decoded = Base64Decode(encoded);
  if (!decoded.has_value())
    return Unauthorized("Basic authorization credentials are not valid base64");
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) {
    return Unauthorized("Basic authorization credentials must be 'user:password'");
  }
  if (colon == 0) return Unauthorized("Basic authorization credentials have an empty user name");
  BasicCredentials out;
  out.user = decoded->substr(0, colon);
  out.password = decoded->substr(colon + 1);
  return out;
}

Result<std::unique_ptr<TokenKeyFile>> TokenKeyFile::Open(const std::filesystem::path& path,
                                                         const Clock& clock) {
  std::unique_ptr<TokenKeyFile> file(new TokenKeyFile(path, clock));
  {
    // Two processes starting together must not each create a different key.
    BERTH_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(LockPath(path)));
    BERTH_ASSIGN_OR_RETURN(auto stamp, StatFile(path));
    if (!stamp.has_value()) {
      TokenKeyring fresh = TokenKeyring::Generate();
      BERTH_RETURN_IF_ERROR(WriteFileAtomically(path, KeyText(fresh) + "\n", 0600));
    }
  }
  std::lock_guard<std::mutex> l(file->mu_);
  BERTH_RETURN_IF_ERROR(file->Reload());
  return file;
}

Result<std::string> TokenKeyFile::RotateFile(const std::filesystem::path& path) {
  BERTH_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(LockPath(path)));
  TokenKeyring fresh = TokenKeyring::Generate();
  BERTH_RETURN_IF_ERROR(WriteFileAtomically(path, KeyText(fresh) + "\n", 0600));
  return fresh.key_id();
}

Status TokenKeyFile::Reload() {
  last_check_ms_ = clock_.NowMillis();
  BERTH_ASSIGN_OR_RETURN(auto stamp, StatFile(path_));
  if (!stamp.has_value()) return Status::NotFound(path_.string() + " does not exist");
  if (current_ != nullptr && stamp_ == stamp) return Status::Ok();
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path_, 4096));
  BERTH_ASSIGN_OR_RETURN(TokenKeyring keyring, ParseKeyText(text, path_.string()));
  current_ = std::make_shared<const TokenKeyring>(std::move(keyring));
  stamp_ = stamp;
  return Status::Ok();
}

std::shared_ptr<const TokenKeyring> TokenKeyFile::Current() {
  std::lock_guard<std::mutex> l(mu_);
  if (clock_.NowMillis() - last_check_ms_ >= 1000) {
    Status st = Reload();
    // Logged once per distinct failure, not once a second.
    if (!st.ok() && st.ToString() != last_error_) {
      spdlog::warn("token key reload failed, keeping the current key path={} error=\"{}\"",
                   path_.string(), st.ToString());
    }
    last_error_ = st.ok() ? std::string() : st.ToString();
  }
  return current_;
}

Status TokenKeyFile::Rotate() {
  BERTH_ASSIGN_OR_RETURN(std::string id, RotateFile(path_));
  std::lock_guard<std::mutex> l(mu_);
  BERTH_RETURN_IF_ERROR(Reload());
  return Status::Ok();
}

Result<std::unique_ptr<TokenKeySource>> OpenSharedTokenKey(SharedDocuments& docs,
                                                           const Clock& clock,
                                                           SharedStoreOptions options) {
  auto source = std::make_unique<SharedTokenKey>(docs, clock, options);
  BERTH_RETURN_IF_ERROR(source->Open());
  return std::unique_ptr<TokenKeySource>(std::move(source));
}

}  // namespace berth::auth
