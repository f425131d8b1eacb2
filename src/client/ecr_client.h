// The client side of the ECR JSON API (AWS JSON 1.1 over `POST /`, SigV4-signed):
// AWS credentials and region resolved the way the AWS CLI resolves them, and one
// call = one signed request.
//
// Credentials, in order (botocore's chain, minus the instance/SSO providers):
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) — skipped when
//      a profile is named explicitly (--profile), as the AWS CLI does;
//   2. the shared credentials file ($AWS_SHARED_CREDENTIALS_FILE, else
//      ~/.aws/credentials), section [PROFILE];
//   3. the config file ($AWS_CONFIG_FILE, else ~/.aws/config), section [default] or
//      [profile PROFILE].
// PROFILE is --profile, else $AWS_PROFILE, else "default".
// Region: --region, else $AWS_REGION, else $AWS_DEFAULT_REGION, else `region` in the
// config file's profile section.
// Endpoint: --endpoint-url, else $AWS_ENDPOINT_URL_ECR, else $AWS_ENDPOINT_URL, else
// https://api.ecr.REGION.amazonaws.com.
//
// Pure functions apart from the environment and file reads; EcrClient is
// thread-compatible.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/aws_ini.h"
#include "base/status.h"
#include "client/http.h"

namespace berth::client {

// An INI file as the AWS CLI reads it (base/aws_ini.h).
using IniFile = AwsIni;
inline IniFile ParseIni(std::string_view text) { return ParseAwsIni(text); }

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" when none
  std::string source;         // "environment", "/root/.aws/credentials [default]", ...
};

// Reads environment variables; injectable for tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnv();

struct AwsSettings {
  std::string profile;       // --profile ("" = not given)
  std::string region;        // --region ("" = not given)
  std::string endpoint_url;  // --endpoint-url ("" = not given)
};

// The profile in use: --profile, $AWS_PROFILE, "default".
std::string ResolveProfile(const AwsSettings& s, const EnvLookup& env);
// kUnauthorized "Unable to locate credentials ..." when no source has them; an
// unreadable file is kIoError.
Result<AwsCredentials> ResolveCredentials(const AwsSettings& s, const EnvLookup& env);
// kInvalidArgument "You must specify a region ..." when none is configured.
Result<std::string> ResolveRegion(const AwsSettings& s, const EnvLookup& env);
// The endpoint URL for `region`, without a trailing '/'.
std::string ResolveEndpoint(const AwsSettings& s, const EnvLookup& env, std::string_view region);

// The section of the config file for a profile: "default" or "profile NAME".
std::string ConfigSectionFor(std::string_view profile);

// A failed call: the ECR exception name ("RepositoryNotFoundException") is the
// Status detail(), the message is "<Exception>: <message>". The code: kUnauthorized
// for signature/credential exceptions, kDenied for AccessDenied, kNotFound for
// *NotFoundException, kInvalidArgument for InvalidParameter, kUnavailable for
// ServerException, 5xx and transport failures, kFailedPrecondition otherwise.
Status EcrErrorStatus(int http_status, std::string_view body);

class EcrClient {
 public:
  EcrClient(std::string endpoint_url, std::string region, AwsCredentials creds,
            TransportOptions transport = {});

  // POSTs `input` to AmazonEC2ContainerRegistry_V20150921.<operation>; the parsed
  // JSON reply on 200.
  Result<boost::json::value> Call(std::string_view operation, const boost::json::value& input);

  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_;
  std::string region_;
  AwsCredentials creds_;
  HttpClient http_;
};

// "https://h:5000/x" → "h:5000"; "" when the URL has no authority.
std::string UrlHostPort(std::string_view url);

}  // namespace berth::client
