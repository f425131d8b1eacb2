// Shared plumbing of the client commands: transport flags, the client context, and
// the mapping from Status to the documented exit codes (docs/client.md):
//   0 ok · 1 other failure · 2 usage (bad flags or names) · 3 authentication or
//   authorization · 4 not found · 5 network (unreachable, TLS, timeouts, 5xx).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "client/auth.h"
#include "client/transport.h"

namespace berth::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitAuth = 3;
inline constexpr int kExitNotFound = 4;
inline constexpr int kExitNetwork = 5;

struct ClientFlags {
  bool insecure = false;
  bool tls_verify = true;
  std::string ca_file;
  bool quiet = false;
  bool debug = false;
};

// --insecure, --tls-verify, --ca-file, --quiet.
void AddClientFlags(CLI::App* cmd, ClientFlags& flags);

int ExitCodeFor(const Status& st);
// Prints "berth <command>: <message>" (plus a hint for auth and network errors) to
// stderr and returns the exit code.
int Fail(std::string_view command, const Status& st);

// Registry options from the flags (chunk size etc. at their defaults).
client::RegistryOptions MakeRegistryOptions(const ClientFlags& flags);
// A context with the docker config (credentials) loaded. Errors: a malformed config.json.
Result<std::unique_ptr<client::ClientContext>> MakeContext(const ClientFlags& flags,
                                                           client::RegistryOptions options);

// The end of `berth login` (login.cc), shared with `berth ecr login`: verifies `creds`
// against HOST (GET /v2/ and its challenge), stores them in docker's config.json (or
// its credential helper) under HOST's key, and prints "Login Succeeded". Returns the
// exit code; errors are printed as "berth <command>: ...".
int SaveLogin(std::string_view command, const std::string& host,
              const client::Credentials& creds, const ClientFlags& flags);

// Ends a CLI11 callback with `code` (0 returns normally).
void Exit(int code);

}  // namespace berth::cli
