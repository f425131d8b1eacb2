// Registry authentication: credentials, WWW-Authenticate challenge parsing and the
// token exchange of the Docker token protocol. Pure functions, thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace berth::client {

struct Credentials {
  std::string username;
  std::string password;
  // OAuth2 refresh token some registries hand out at login ("identitytoken").
  std::string identity_token;
  bool empty() const { return username.empty() && password.empty() && identity_token.empty(); }
};

// One challenge of a WWW-Authenticate header.
struct Challenge {
  std::string scheme;                         // lower case: "basic", "bearer"
  std::map<std::string, std::string> params;  // keys lower case: realm, service, scope, ...
};

// Parses `Basic realm="x"` / `Bearer realm="…",service="…",scope="a,b"`; several
// challenges may share one header. Unparseable input yields an empty vector.
std::vector<Challenge> ParseChallenges(std::string_view header);

// "Basic base64(user:password)".
std::string BasicAuthorization(const Credentials& creds);

// Extracts the token from a token-endpoint JSON reply ({"token": …} or
// {"access_token": …}). kUnauthorized when neither is present.
Result<std::string> ParseTokenResponse(std::string_view body);

}  // namespace berth::client
