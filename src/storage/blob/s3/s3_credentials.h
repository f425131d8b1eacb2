// S3Credentials: the access key the S3 client signs with, found the way AWS tools find
// it, never in Berth's YAML (a secret in a config file ends up in backups and tickets):
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN, sent as
//      x-amz-security-token);
//   2. the shared credentials file — AWS_SHARED_CREDENTIALS_FILE, else
//      $HOME/.aws/credentials — section [AWS_PROFILE], default [default]
//      (aws_access_key_id, aws_secret_access_key, optional aws_session_token).
// When neither has a key the error names every place that was looked at.
//
// (client/ecr_client.h resolves the same chain for the CLI; it lives in the client
// layer, which the server binary does not link, hence this small copy for storage.)
//
// Pure apart from the injected environment and the file read: thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace berth::storage::s3 {

struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" when none
  // Where they came from, for logs: "environment" or "/root/.aws/credentials [default]".
  // Never the secret.
  std::string source;
};

// Looks up an environment variable; nullopt when unset. Injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
// The process environment (std::getenv).
EnvLookup ProcessEnvironment();

// Resolves the chain above. kFailedPrecondition when no source has a complete key
// (the message lists what was tried and how to fix it); kIoError when the credentials
// file exists but cannot be read.
Result<S3Credentials> LoadS3Credentials(const EnvLookup& env);

// Parses the text of a shared credentials file (INI: "[profile]" sections, "key = value",
// '#'/';' comments) and returns the keys of `profile`. `path` is only for messages.
// kNotFound when the profile is absent ("there is no profile [p] in PATH (profiles there:
// a, b)"); kFailedPrecondition when it lacks a key.
Result<S3Credentials> ParseSharedCredentials(std::string_view text, std::string_view profile,
                                             std::string_view path);

}  // namespace berth::storage::s3
