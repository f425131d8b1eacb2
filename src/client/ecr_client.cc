#include "client/ecr_client.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include "auth/crypto.h"
#include "auth/sigv4.h"

namespace berth::client {
namespace {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::optional<std::string> NonEmptyEnv(const EnvLookup& env, const std::string& name) {
  auto v = env(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

// $NAME (with a leading "~/" expanded), else ~/.aws/<fallback>.
std::string AwsFile(const EnvLookup& env, const std::string& var, const std::string& fallback) {
  std::string home = env("HOME").value_or("");
  if (auto v = NonEmptyEnv(env, var)) {
    if (v->rfind("~/", 0) == 0) return home + v->substr(1);
    return *v;
  }
  return home + "/.aws/" + fallback;
}

// A missing file is an empty IniFile.
Result<IniFile> ReadIni(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT || errno == ENOTDIR) return IniFile{};
    return Status::FromErrno("read " + path, errno);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ParseIni(ss.str());
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::string ConfigSectionFor(std::string_view profile) {
  if (profile == "default") return "default";
  return "profile " + std::string(profile);
}

std::string ResolveProfile(const AwsSettings& s, const EnvLookup& env) {
  if (!s.profile.empty()) return s.profile;
  if (auto p = NonEmptyEnv(env, "AWS_PROFILE")) return *p;
  if (auto p = NonEmptyEnv(env, "AWS_DEFAULT_PROFILE")) return *p;
  return "default";
}

Result<AwsCredentials> ResolveCredentials(const AwsSettings& s, const EnvLookup& env) {
  if (s.profile.empty()) {
    auto id = NonEmptyEnv(env, "AWS_ACCESS_KEY_ID");
    auto secret = NonEmptyEnv(env, "AWS_SECRET_ACCESS_KEY");
    if (id && secret) {
      return AwsCredentials{*id, *secret, NonEmptyEnv(env, "AWS_SESSION_TOKEN").value_or(""),
                            "environment"};
    }
  }
  std::string profile = ResolveProfile(s, env);
  auto from_section = [&](const IniFile& ini, const std::string& section,
                          const std::string& path) -> std::optional<AwsCredentials> {
    auto it = ini.find(section);
    if (it == ini.end()) return std::nullopt;
    const auto& kv = it->second;
    auto id = kv.find("aws_access_key_id");
    auto secret = kv.find("aws_secret_access_key");
    if (id == kv.end() || secret == kv.end() || id->second.empty() || secret->second.empty()) {
      return std::nullopt;
    }
    AwsCredentials c{id->second, secret->second, {}, path + " [" + section + "]"};
    if (auto tok = kv.find("aws_session_token"); tok != kv.end()) c.session_token = tok->second;
    return c;
  };
  std::string cred_path = AwsFile(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
  BERTH_ASSIGN_OR_RETURN(IniFile creds, ReadIni(cred_path));
  if (auto c = from_section(creds, profile, cred_path)) return *c;
  std::string config_path = AwsFile(env, "AWS_CONFIG_FILE", "config");
  BERTH_ASSIGN_OR_RETURN(IniFile config, ReadIni(config_path));
  if (auto c = from_section(config, ConfigSectionFor(profile), config_path)) return *c;
  if (profile != "default" && creds.find(profile) == creds.end() &&
      config.find(ConfigSectionFor(profile)) == config.end()) {
    return Status(Code::kUnauthorized, "The config profile (" + profile + ") could not be found",
                  "ProfileNotFound");
  }
  return Status(Code::kUnauthorized,
                "Unable to locate credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or add profile [" + profile + "] to " + cred_path,
                "NoCredentials");
}

Result<std::string> ResolveRegion(const AwsSettings& s, const EnvLookup& env) {
  if (!s.region.empty()) return s.region;
  if (auto r = NonEmptyEnv(env, "AWS_REGION")) return *r;
  if (auto r = NonEmptyEnv(env, "AWS_DEFAULT_REGION")) return *r;
  std::string profile = ResolveProfile(s, env);
  BERTH_ASSIGN_OR_RETURN(IniFile config, ReadIni(AwsFile(env, "AWS_CONFIG_FILE", "config")));
  if (auto it = config.find(ConfigSectionFor(profile)); it != config.end()) {
    if (auto r = it->second.find("region"); r != it->second.end() && !r->second.empty()) {
      return r->second;
    }
  }
  return Status::InvalidArgument(
      "You must specify a region: --region, AWS_REGION, or `region` in the config file's "
      "profile");
}

std::string ResolveEndpoint(const AwsSettings& s, const EnvLookup& env, std::string_view region) {
  std::string url = s.endpoint_url;
  if (url.empty()) url = NonEmptyEnv(env, "AWS_ENDPOINT_URL_ECR").value_or("");
  if (url.empty()) url = NonEmptyEnv(env, "AWS_ENDPOINT_URL").value_or("");
  if (url.empty()) {
    url = "https://api.ecr." + std::string(region) + ".amazonaws.com";
    if (region.rfind("cn-", 0) == 0) url += ".cn";
  }
  if (url.find("://") == std::string::npos) url = "https://" + url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::string UrlHostPort(std::string_view url) {
  size_t start = url.find("://");
  if (start == std::string_view::npos) return "";
  start += 3;
  size_t end = url.find_first_of("/?#", start);
  std::string_view auth = url.substr(start, end == std::string_view::npos ? url.npos : end - start);
  if (size_t at = auth.rfind('@'); at != std::string_view::npos) auth.remove_prefix(at + 1);
  return std::string(auth);
}

Status EcrErrorStatus(int http_status, std::string_view body) {
  std::string type, message;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    if (auto* t = o.if_contains("__type"); t && t->is_string()) type = std::string(t->as_string());
    for (const char* k : {"message", "Message"}) {
      if (auto* m = o.if_contains(k); m && m->is_string()) {
        message = std::string(m->as_string());
        break;
      }
    }
  }
  // "com.amazonaws.ecr#RepositoryNotFoundException:http://..." → the bare name.
  if (size_t hash = type.rfind('#'); hash != std::string::npos) type = type.substr(hash + 1);
  if (size_t colon = type.find(':'); colon != std::string::npos) type = type.substr(0, colon);
  if (type.empty()) {
    type = http_status >= 500 ? "ServerException" : "HTTP " + std::to_string(http_status);
    if (message.empty()) message = Trim(body.substr(0, 300));
  }
  Code code = Code::kFailedPrecondition;
  if (type == "UnrecognizedClientException" || type == "InvalidSignatureException" ||
      type == "IncompleteSignatureException" || type == "MissingAuthenticationTokenException" ||
      type == "ExpiredTokenException" || type == "InvalidClientTokenId" ||
      type == "SignatureDoesNotMatch" || http_status == 401) {
    code = Code::kUnauthorized;
  } else if (type == "AccessDeniedException" || type == "AccessDenied" || http_status == 403) {
    code = Code::kDenied;
  } else if (type.size() > 17 && type.ends_with("NotFoundException")) {
    code = Code::kNotFound;
  } else if (type == "InvalidParameterException" || type == "ValidationException") {
    code = Code::kInvalidArgument;
  } else if (type == "ServerException" || http_status >= 500 ||
             type == "ThrottlingException") {
    code = Code::kUnavailable;
  }
  return Status(code, type + ": " + message, type);
}

EcrClient::EcrClient(std::string endpoint_url, std::string region, AwsCredentials creds,
                     TransportOptions transport)
    : endpoint_(std::move(endpoint_url)),
      region_(std::move(region)),
      creds_(std::move(creds)),
      http_(std::move(transport)) {}

Result<boost::json::value> EcrClient::Call(std::string_view operation,
                                           const boost::json::value& input) {
  std::string body = boost::json::serialize(input);
  std::string host = UrlHostPort(endpoint_);
  if (host.empty()) return Status::InvalidArgument("bad endpoint URL: " + endpoint_);
  // The path part of the endpoint, "/" when none.
  std::string path = "/";
  if (size_t p = endpoint_.find('/', endpoint_.find("://") + 3); p != std::string::npos) {
    path = endpoint_.substr(p);
    if (path.back() != '/') path += '/';
  }
  std::string target = "AmazonEC2ContainerRegistry_V20150921." + std::string(operation);
  std::string content_type = "application/x-amz-json-1.1";
  std::string payload_hash = auth::Sha256Hex(body);
  auth::SigningRequest sr;
  sr.method = "POST";
  sr.path = path;
  sr.query = "";
  sr.headers = {{"Content-Type", content_type}, {"Host", host}, {"X-Amz-Target", target}};
  if (!creds_.session_token.empty()) {
    sr.headers.emplace_back("X-Amz-Security-Token", creds_.session_token);
  }
  sr.payload_sha256 = payload_hash;
  sr.access_key_id = creds_.access_key_id;
  sr.secret_access_key = creds_.secret_access_key;
  sr.region = region_;
  sr.service = "ecr";
  sr.time_seconds = static_cast<int64_t>(std::time(nullptr));
  BERTH_ASSIGN_OR_RETURN(auth::SigningResult signed_req, auth::SignRequest(sr));

  HttpRequest req;
  req.method = "POST";
  std::string base = endpoint_.substr(0, endpoint_.find('/', endpoint_.find("://") + 3));
  req.url = base + path;
  req.headers = {{"Host", host},
                 {"Content-Type", content_type},
                 {"X-Amz-Target", target},
                 {"X-Amz-Date", signed_req.amz_date},
                 {"Authorization", signed_req.authorization}};
  if (!creds_.session_token.empty()) {
    req.headers.emplace_back("X-Amz-Security-Token", creds_.session_token);
  }
  req.body = body;
  req.follow_redirects = false;
  BERTH_ASSIGN_OR_RETURN(HttpResponse resp, http_.Do(req));
  if (resp.status != 200) return EcrErrorStatus(resp.status, resp.body);
  boost::system::error_code ec;
  boost::json::value out = boost::json::parse(resp.body, ec);
  if (ec) {
    return Status(Code::kUnavailable, std::string(operation) + ": the endpoint " + endpoint_ +
                                          " answered 200 with a body that is not JSON");
  }
  return out;
}

}  // namespace berth::client
