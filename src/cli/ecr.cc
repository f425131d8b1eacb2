// The ECR API commands, SigV4-signed with the AWS CLI's credentials (ecr_client.h):
// `berth ecr get-login-password` / `berth ecr login` (a registry password from
// GetAuthorizationToken, printed or stored in docker's config.json like `berth login`
// stores it), `berth repo create|ls|rm` and `berth images REPO`.
#include <boost/json.hpp>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>
#include <memory>
#include <string>

#include "auth/crypto.h"
#include "base/base64.h"
#include "cli/client.h"
#include "cli/client_common.h"
#include "client/ecr_client.h"

namespace berth::cli {
namespace {

namespace json = boost::json;

struct EcrFlags {
  ClientFlags client;
  client::AwsSettings aws;
  std::string host;  // ecr login: registry host (default: proxyEndpoint's host)
  std::string name;  // repo create|rm, images: the repository
  bool force = false;
  bool json = false;
};

// Like Fail(), with a hint about AWS credentials instead of `berth login`.
int EcrFail(std::string_view command, const Status& st) {
  std::string msg = st.message().empty() ? st.ToString() : st.message();
  std::fprintf(stderr, "berth %.*s: %s\n", static_cast<int>(command.size()), command.data(),
               msg.c_str());
  int code = ExitCodeFor(st);
  if (code == kExitAuth) {
    std::fprintf(stderr,
                 "hint: berth signs ECR requests with AWS credentials: AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY, or a profile (--profile, AWS_PROFILE) in "
                 "AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials)\n");
  } else if (code == kExitNetwork) {
    std::fprintf(stderr, "hint: check --endpoint-url and that the endpoint is reachable\n");
  }
  return code;
}

struct Token {
  std::string username;
  std::string password;
  std::string proxy_endpoint;
};

Result<std::unique_ptr<client::EcrClient>> MakeEcr(const EcrFlags& f) {
  client::EnvLookup env = client::ProcessEnv();
  BERTH_ASSIGN_OR_RETURN(std::string region, client::ResolveRegion(f.aws, env));
  BERTH_ASSIGN_OR_RETURN(client::AwsCredentials creds, client::ResolveCredentials(f.aws, env));
  std::string endpoint = client::ResolveEndpoint(f.aws, env, region);
  return std::make_unique<client::EcrClient>(endpoint, region, std::move(creds),
                                             MakeRegistryOptions(f.client).transport);
}

Result<Token> GetToken(const EcrFlags& f) {
  BERTH_ASSIGN_OR_RETURN(auto ecr, MakeEcr(f));
  const std::string& endpoint = ecr->endpoint();
  BERTH_ASSIGN_OR_RETURN(json::value reply, ecr->Call("GetAuthorizationToken", json::object{}));
  const json::array* data = nullptr;
  if (const auto* o = reply.if_object()) {
    if (const auto* d = o->if_contains("authorizationData")) data = d->if_array();
  }
  if (data == nullptr || data->empty() || !(*data)[0].is_object()) {
    return Status(Code::kUnavailable,
                  "GetAuthorizationToken: the reply from " + endpoint + " has no authorizationData");
  }
  const json::object& entry = (*data)[0].as_object();
  const auto* tok = entry.if_contains("authorizationToken");
  if (tok == nullptr || !tok->is_string()) {
    return Status(Code::kUnavailable, "GetAuthorizationToken: no authorizationToken in the reply");
  }
  auto decoded = Base64Decode(std::string_view(tok->as_string()));
  size_t colon = decoded ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos) {
    return Status(Code::kUnavailable,
                  "GetAuthorizationToken: the authorizationToken is not base64(\"user:password\")");
  }
  Token t{decoded->substr(0, colon), decoded->substr(colon + 1), ""};
  if (const auto* pe = entry.if_contains("proxyEndpoint"); pe && pe->is_string()) {
    t.proxy_endpoint = std::string(pe->as_string());
  }
  return t;
}

int RunGetLoginPassword(const EcrFlags& f) {
  auto t = GetToken(f);
  if (!t.ok()) return EcrFail("ecr get-login-password", t.status());
  std::printf("%s\n", t->password.c_str());
  return kExitOk;
}

int RunEcrLogin(const EcrFlags& f) {
  auto t = GetToken(f);
  if (!t.ok()) return EcrFail("ecr login", t.status());
  std::string host = f.host.empty() ? t->proxy_endpoint : f.host;
  if (host.empty()) {
    return Fail("ecr login", Status::InvalidArgument(
                                 "the reply names no proxyEndpoint: give the registry HOST"));
  }
  return SaveLogin("ecr login", host, client::Credentials{t->username, t->password, {}},
                   f.client);
}

// Calls a paginated operation until nextToken runs out; the `key` arrays joined.
Result<json::array> CallAll(client::EcrClient& ecr, std::string_view op, json::object input,
                            std::string_view key) {
  json::array all;
  for (int page = 0; page < 10000; ++page) {
    BERTH_ASSIGN_OR_RETURN(json::value reply, ecr.Call(op, input));
    const json::object* o = reply.if_object();
    if (o == nullptr) break;
    if (const auto* items = o->if_contains(key); items && items->is_array()) {
      for (const auto& v : items->as_array()) all.push_back(v);
    }
    const auto* next = o->if_contains("nextToken");
    if (next == nullptr || !next->is_string() || next->as_string().empty()) break;
    input["nextToken"] = next->as_string();
  }
  return all;
}

std::string Str(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// An AWS JSON timestamp (epoch seconds, maybe fractional) as "2026-01-02T03:04:05Z".
std::string FormatTime(const json::value* v) {
  if (v == nullptr || !v->is_number()) return "-";
  auto secs = static_cast<std::time_t>(v->to_number<double>());
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string HumanSize(double n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (n >= 1024 && u < 4) {
    n /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%.0f B", n);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", n, units[u]);
  }
  return buf;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

int RunRepoCreate(const EcrFlags& f) {
  auto ecr = MakeEcr(f);
  if (!ecr.ok()) return EcrFail("repo create", ecr.status());
  auto reply = (*ecr)->Call("CreateRepository", json::object{{"repositoryName", f.name}});
  if (!reply.ok()) return EcrFail("repo create", reply.status());
  const json::object* repo = nullptr;
  if (const auto* o = reply->if_object()) {
    if (const auto* r = o->if_contains("repository")) repo = r->if_object();
  }
  if (f.json) {
    std::printf("%s\n", json::serialize(repo ? json::value(*repo) : *reply).c_str());
  } else {
    std::printf("%s\n", repo ? Str(*repo, "repositoryUri").c_str() : f.name.c_str());
  }
  return kExitOk;
}

int RunRepoLs(const EcrFlags& f) {
  auto ecr = MakeEcr(f);
  if (!ecr.ok()) return EcrFail("repo ls", ecr.status());
  auto repos = CallAll(**ecr, "DescribeRepositories", json::object{}, "repositories");
  if (!repos.ok()) return EcrFail("repo ls", repos.status());
  if (f.json) {
    std::printf("%s\n", json::serialize(*repos).c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "URI", "CREATED"}};
  for (const auto& v : *repos) {
    if (!v.is_object()) continue;
    const auto& r = v.as_object();
    rows.push_back({Str(r, "repositoryName"), Str(r, "repositoryUri"),
                    FormatTime(r.if_contains("createdAt"))});
  }
  PrintTable(rows);
  return kExitOk;
}

int RunRepoRm(const EcrFlags& f) {
  auto ecr = MakeEcr(f);
  if (!ecr.ok()) return EcrFail("repo rm", ecr.status());
  json::object in{{"repositoryName", f.name}};
  if (f.force) in["force"] = true;
  auto reply = (*ecr)->Call("DeleteRepository", in);
  if (!reply.ok()) return EcrFail("repo rm", reply.status());
  std::printf("Deleted %s\n", f.name.c_str());
  return kExitOk;
}

int RunImages(const EcrFlags& f) {
  auto ecr = MakeEcr(f);
  if (!ecr.ok()) return EcrFail("images", ecr.status());
  auto images = CallAll(**ecr, "DescribeImages", json::object{{"repositoryName", f.name}},
                        "imageDetails");
  if (!images.ok()) return EcrFail("images", images.status());
  if (f.json) {
    std::printf("%s\n", json::serialize(*images).c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"DIGEST", "TAGS", "SIZE", "PUSHED", "MEDIA TYPE"}};
  for (const auto& v : *images) {
    if (!v.is_object()) continue;
    const auto& d = v.as_object();
    std::string tags;
    if (const auto* t = d.if_contains("imageTags"); t && t->is_array()) {
      for (const auto& tag : t->as_array()) {
        if (!tag.is_string()) continue;
        if (!tags.empty()) tags += ",";
        tags += std::string(tag.as_string());
      }
    }
    std::string size = "-";
    if (const auto* s = d.if_contains("imageSizeInBytes"); s && s->is_number()) {
      size = HumanSize(s->to_number<double>());
    }
    std::string media = Str(d, "imageManifestMediaType");
    rows.push_back({Str(d, "imageDigest"), tags.empty() ? "<none>" : tags, size,
                    FormatTime(d.if_contains("imagePushedAt")), media.empty() ? "-" : media});
  }
  PrintTable(rows);
  return kExitOk;
}

void AddAwsFlags(CLI::App* cmd, EcrFlags& f) {
  cmd->add_option("--endpoint-url", f.aws.endpoint_url,
                  "ECR API endpoint (default: $AWS_ENDPOINT_URL_ECR, $AWS_ENDPOINT_URL, else "
                  "https://api.ecr.REGION.amazonaws.com)");
  cmd->add_option("--region", f.aws.region,
                  "AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's region)");
  cmd->add_option("--profile", f.aws.profile,
                  "Profile of the shared credentials and config files (default: $AWS_PROFILE, "
                  "else default)");
  AddClientFlags(cmd, f.client);
}

}  // namespace

void AddEcrCommand(CLI::App& app) {
  CLI::App* ecr = app.add_subcommand("ecr", "Amazon ECR API client commands (SigV4, AWS credentials)");
  ecr->require_subcommand(1);

  auto pf = std::make_shared<EcrFlags>();
  CLI::App* pw = ecr->add_subcommand(
      "get-login-password",
      "Print a registry password from GetAuthorizationToken (user name: AWS)");
  AddAwsFlags(pw, *pf);
  pw->footer("Use: berth ecr get-login-password | docker login --username AWS --password-stdin HOST");
  pw->callback([pf] { Exit(RunGetLoginPassword(*pf)); });

  auto lf = std::make_shared<EcrFlags>();
  CLI::App* login = ecr->add_subcommand(
      "login", "Get a registry password from GetAuthorizationToken and store it like berth login");
  login->add_option("host", lf->host, "Registry host[:port] (default: the reply's proxyEndpoint)");
  AddAwsFlags(login, *lf);
  login->callback([lf] { Exit(RunEcrLogin(*lf)); });

  CLI::App* repo = app.add_subcommand("repo", "Create, list and delete repositories (ECR API)");
  repo->require_subcommand(1);
  auto cf = std::make_shared<EcrFlags>();
  CLI::App* create = repo->add_subcommand("create", "Create a repository; prints its URI");
  create->add_option("name", cf->name, "Repository name")->required();
  create->add_flag("--json", cf->json, "Print the repository as JSON");
  AddAwsFlags(create, *cf);
  create->callback([cf] { Exit(RunRepoCreate(*cf)); });
  auto sf = std::make_shared<EcrFlags>();
  CLI::App* ls = repo->add_subcommand("ls", "List repositories (name, URI, creation time)");
  ls->add_flag("--json", sf->json, "Print the repositories as a JSON array");
  AddAwsFlags(ls, *sf);
  ls->callback([sf] { Exit(RunRepoLs(*sf)); });
  auto rf = std::make_shared<EcrFlags>();
  CLI::App* rm = repo->add_subcommand("rm", "Delete a repository");
  rm->add_option("name", rf->name, "Repository name")->required();
  rm->add_flag("-f,--force", rf->force, "Delete it even if it holds images");
  AddAwsFlags(rm, *rf);
  rm->callback([rf] { Exit(RunRepoRm(*rf)); });

  auto imf = std::make_shared<EcrFlags>();
  CLI::App* images = app.add_subcommand(
      "images", "List a repository's images: digest, tags, size, pushed at, media type (ECR API)");
  images->add_option("repo", imf->name, "Repository name")->required();
  images->add_flag("--json", imf->json, "Print the imageDetails as a JSON array");
  AddAwsFlags(images, *imf);
  images->callback([imf] { Exit(RunImages(*imf)); });
}

}  // namespace berth::cli
