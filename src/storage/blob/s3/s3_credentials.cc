#include "storage/blob/s3/s3_credentials.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "base/aws_ini.h"

namespace berth::storage::s3 {
namespace {

// Unset and empty are the same to AWS tools: `export AWS_PROFILE=` means the default.
std::optional<std::string> NonEmpty(const EnvLookup& env, std::string_view name) {
  auto v = env(name);
  if (!v.has_value() || v->empty()) return std::nullopt;
  return v;
}

using Sections = AwsIni;

std::string ProfileList(const Sections& sections) {
  std::string out;
  for (const auto& [name, unused] : sections) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "none" : out;
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<S3Credentials> ParseSharedCredentials(std::string_view text, std::string_view profile,
                                             std::string_view path) {
  Sections sections = ParseAwsIni(text);
  auto it = sections.find(profile);
  if (it == sections.end()) {
    return Status::NotFound("there is no profile [" + std::string(profile) + "] in " +
                            std::string(path) + " (profiles there: " + ProfileList(sections) + ")");
  }
  const auto& kv = it->second;
  auto get = [&kv](std::string_view key) -> std::string {
    auto f = kv.find(std::string(key));
    return f == kv.end() ? std::string() : f->second;
  };
  S3Credentials c;
  c.access_key_id = get("aws_access_key_id");
  c.secret_access_key = get("aws_secret_access_key");
  c.session_token = get("aws_session_token");
  c.source = std::string(path) + " [" + std::string(profile) + "]";
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return Status::FailedPrecondition("profile [" + std::string(profile) + "] in " +
                                      std::string(path) +
                                      " needs both aws_access_key_id and aws_secret_access_key");
  }
  return c;
}

Result<S3Credentials> LoadS3Credentials(const EnvLookup& env) {
  auto id = NonEmpty(env, "AWS_ACCESS_KEY_ID");
  auto secret = NonEmpty(env, "AWS_SECRET_ACCESS_KEY");
  if (id.has_value() != secret.has_value()) {
    // Half a key is a mistake to report, not a reason to fall through to a file that may
    // hold someone else's key.
    return Status::FailedPrecondition(
        std::string(id ? "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
                       : "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not") +
        ": set both for the object store, or neither to use the shared credentials file");
  }
  if (id) {
    return S3Credentials{*id, *secret, NonEmpty(env, "AWS_SESSION_TOKEN").value_or(""),
                         "environment"};
  }

  const std::string profile = NonEmpty(env, "AWS_PROFILE").value_or("default");
  const auto explicit_path = NonEmpty(env, "AWS_SHARED_CREDENTIALS_FILE");
  std::string path;
  if (explicit_path) {
    path = *explicit_path;
  } else if (auto home = NonEmpty(env, "HOME")) {
    path = *home + "/.aws/credentials";
  }
  const std::string tried =
      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and " +
      (path.empty() ? std::string("HOME is not set, so there is no ~/.aws/credentials")
                    : "the shared credentials file " + path);
  if (path.empty()) {
    return Status::FailedPrecondition("no credentials for the object store: " + tried);
  }
  std::error_code dir_ec;
  if (std::filesystem::is_directory(path, dir_ec)) {
    return Status::IoError("the shared credentials file " + path + " is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::FailedPrecondition(
          "no credentials for the object store: " + tried + " does not exist" +
          (explicit_path ? " (named by AWS_SHARED_CREDENTIALS_FILE)" : "") +
          "; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write profile [" + profile +
          "] to that file");
    }
    return Status::FromErrno("cannot read the shared credentials file " + path, err);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read the shared credentials file " + path);
  auto c = ParseSharedCredentials(text.str(), profile, path);
  if (!c.ok() && c.status().Is(Code::kNotFound)) {
    return Status::FailedPrecondition(
        "no credentials for the object store: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not "
        "set and " +
        c.status().message() +
        (NonEmpty(env, "AWS_PROFILE") ? "; the profile is named by AWS_PROFILE"
                                      : "; AWS_PROFILE is not set, so the profile is [default]"));
  }
  return c;
}

}  // namespace berth::storage::s3
