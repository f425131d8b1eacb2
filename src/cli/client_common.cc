#include "cli/client_common.h"

#include <cstdio>

namespace berth::cli {

void AddClientFlags(CLI::App* cmd, ClientFlags& f) {
  cmd->add_flag("--insecure", f.insecure,
                "Allow plain HTTP and skip TLS certificate verification");
  cmd->add_option("--tls-verify", f.tls_verify,
                  "Verify TLS certificates (--tls-verify=false acts like --insecure)")
      ->default_str("true");
  cmd->add_option("--ca-file", f.ca_file, "PEM file of extra trusted certificate authorities")
      ->check(CLI::ExistingFile);
  cmd->add_flag("-q,--quiet", f.quiet, "Print no progress, only results and errors");
}

int ExitCodeFor(const Status& st) {
  switch (st.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kInvalidArgument:
    case Code::kNameInvalid:
    case Code::kTagInvalid:
      return kExitUsage;
    case Code::kUnauthorized:
    case Code::kDenied:
      return kExitAuth;
    case Code::kNotFound:
    case Code::kManifestUnknown:
    case Code::kNameUnknown:
    case Code::kBlobUnknown:
      return kExitNotFound;
    case Code::kUnavailable:
      return kExitNetwork;
    default:
      return kExitFailure;
  }
}

int Fail(std::string_view command, const Status& st) {
  std::string msg = st.message().empty() ? st.ToString() : st.message();
  std::fprintf(stderr, "berth %.*s: %s\n", static_cast<int>(command.size()), command.data(),
               msg.c_str());
  int code = ExitCodeFor(st);
  if (code == kExitAuth && msg.find("berth login") == std::string::npos) {
    std::fprintf(stderr,
                 "hint: check the credentials with `berth login HOST`; berth reads them from "
                 "$DOCKER_CONFIG/config.json like docker and skopeo\n");
  } else if (code == kExitNetwork && msg.find("--insecure") == std::string::npos) {
    std::fprintf(stderr,
                 "hint: check that the registry is running and reachable; a plain-HTTP registry "
                 "needs --insecure\n");
  }
  return code;
}

client::RegistryOptions MakeRegistryOptions(const ClientFlags& f) {
  client::RegistryOptions o;
  o.insecure = f.insecure || !f.tls_verify;
  o.transport.insecure_skip_verify = o.insecure;
  o.transport.ca_file = f.ca_file;
  return o;
}

Result<std::unique_ptr<client::ClientContext>> MakeContext(const ClientFlags& flags,
                                                           client::RegistryOptions options) {
  BERTH_ASSIGN_OR_RETURN(client::DockerConfig cfg,
                         client::DockerConfig::Load(client::DockerConfig::DefaultDir()));
  return std::make_unique<client::ClientContext>(std::move(options), std::move(cfg),
                                                 client::DefaultCacheDir());
}

void Exit(int code) {
  if (code != 0) throw CLI::RuntimeError(code);
}

}  // namespace berth::cli
