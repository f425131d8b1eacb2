// Caller: who made a request, as resolved by authentication before routing.
// Plain value type. Authorization (auth/policy.h) decides what a Caller may do.
#pragma once

#include <string>

namespace berth::auth {

struct Caller {
  // False for anonymous requests (and for every request when auth is disabled).
  bool authenticated = false;
  // The 12-digit account the identity belongs to.
  std::string account_id;
  // The access key id that signed the request or minted the registry token.
  std::string access_key_id;
  // arn:aws:iam::<account>:user/<name> (or :root for an account's administrator).
  std::string principal_arn;
  // True when authentication is disabled (`berth serve --no-auth`): everything allowed.
  bool unrestricted = false;
};

}  // namespace berth::auth
