// `berth login` / `berth logout`: credentials in docker's config.json (or the
// credential helper it names), shared with docker, skopeo and podman.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/client.h"
#include "cli/client_common.h"
#include "client/docker_config.h"
#include "client/image_ref.h"
#include "client/registry_client.h"

namespace berth::cli {
namespace {

struct LoginFlags {
  ClientFlags client;
  std::string host = "docker.io";
  std::string username;
  std::string password;
  bool password_stdin = false;
};

// "http://h:5000/" → ("h:5000", "http://h:5000").
std::pair<std::string, std::string> SplitHost(std::string s) {
  std::string connect = s;
  while (!connect.empty() && connect.back() == '/') connect.pop_back();
  std::string key = client::HostFromAuthKey(s);
  if (key == client::kDockerHub) connect = "registry-1.docker.io";
  return {key, connect};
}

std::string ReadPassword(bool echo_off) {
  termios old {};
  bool restore = false;
  if (echo_off && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0) {
    termios t = old;
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    restore = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
  }
  std::string line;
  std::getline(std::cin, line);
  if (restore) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  return line;
}

int RunLogin(LoginFlags& f) {
  if (!f.password.empty() && f.password_stdin) {
    return Fail("login", Status::InvalidArgument("--password and --password-stdin are mutually exclusive"));
  }
  if (f.password_stdin) {
    if (f.username.empty()) {
      return Fail("login", Status::InvalidArgument("must provide --username with --password-stdin"));
    }
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) all.pop_back();
    f.password = all;
  } else if (!f.password.empty()) {
    std::fprintf(stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
  }
  if (f.username.empty()) {
    if (!isatty(STDIN_FILENO)) {
      return Fail("login", Status::InvalidArgument(
                               "no username given: pass -u USER --password-stdin (stdin is not "
                               "a terminal)"));
    }
    std::fprintf(stderr, "Username: ");
    f.username = ReadPassword(false);
  }
  if (f.password.empty()) {
    if (!isatty(STDIN_FILENO)) {
      return Fail("login", Status::InvalidArgument("no password given: use --password-stdin"));
    }
    std::fprintf(stderr, "Password: ");
    f.password = ReadPassword(true);
  }
  if (f.username.empty() || f.password.empty()) {
    return Fail("login", Status::InvalidArgument("username and password must not be empty"));
  }
  return SaveLogin("login", f.host, client::Credentials{f.username, f.password, {}},
                   f.client);
}

}  // namespace

int SaveLogin(std::string_view command, const std::string& host,
              const client::Credentials& creds, const ClientFlags& flags) {
  auto [key, connect] = SplitHost(host);
  client::RegistryClient rc(connect, MakeRegistryOptions(flags), creds);
  auto verified = rc.VerifyLogin();
  if (!verified.ok()) return Fail(command, verified.status());
  if (!*verified && !flags.quiet) {
    std::fprintf(stderr,
                 "warning: %s did not ask for credentials (GET /v2/ answered 200); saving them "
                 "anyway\n",
                 key.c_str());
  }
  auto cfg = client::DockerConfig::Load(client::DockerConfig::DefaultDir());
  if (!cfg.ok()) return Fail(command, cfg.status());
  if (Status st = cfg->Store(key, creds); !st.ok()) return Fail(command, st);
  std::string helper = cfg->HelperFor(key);
  if (!flags.quiet) {
    if (helper.empty()) {
      std::fprintf(stderr, "Credentials saved in %s\n",
                   (cfg->dir() / "config.json").c_str());
    } else {
      std::fprintf(stderr, "Credentials saved with docker-credential-%s\n", helper.c_str());
    }
  }
  std::printf("Login Succeeded\n");
  return kExitOk;
}

namespace {

struct LogoutFlags {
  std::string host = "docker.io";
  bool quiet = false;
};

int RunLogout(const LogoutFlags& f) {
  std::string key = client::HostFromAuthKey(f.host);
  auto cfg = client::DockerConfig::Load(client::DockerConfig::DefaultDir());
  if (!cfg.ok()) return Fail("logout", cfg.status());
  auto removed = cfg->Erase(key);
  if (!removed.ok()) return Fail("logout", removed.status());
  if (!*removed) {
    std::printf("Not logged in to %s\n", key.c_str());
    return kExitOk;
  }
  std::printf("Removing login credentials for %s\n", key.c_str());
  return kExitOk;
}

}  // namespace

void AddLoginCommand(CLI::App& app) {
  auto f = std::make_shared<LoginFlags>();
  CLI::App* cmd = app.add_subcommand(
      "login", "Log in to a registry (credentials shared with docker and skopeo)");
  cmd->footer(
      "Verifies the credentials (GET /v2/ and its challenge), then stores "
      "them in $DOCKER_CONFIG/config.json (or its credential helper), shared with docker and "
      "skopeo");
  cmd->add_option("host", f->host, "Registry host[:port] (default docker.io)");
  cmd->add_option("-u,--username", f->username, "User name");
  cmd->add_option("-p,--password", f->password, "Password (prefer --password-stdin)");
  cmd->add_flag("--password-stdin", f->password_stdin, "Read the password from stdin");
  AddClientFlags(cmd, f->client);
  cmd->callback([f] { Exit(RunLogin(*f)); });

  auto lf = std::make_shared<LogoutFlags>();
  CLI::App* out = app.add_subcommand("logout", "Remove stored credentials for a registry");
  out->add_option("host", lf->host, "Registry host[:port] (default docker.io)");
  out->callback([lf] { Exit(RunLogout(*lf)); });
}

}  // namespace berth::cli
