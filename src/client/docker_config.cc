#include "client/docker_config.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "client/http.h"
#include "client/json_util.h"

extern char** environ;

namespace berth::client {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

bool IsDockerHub(std::string_view host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" ||
         host == "https://index.docker.io/v1/";
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write to credential helper", errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> RunCredentialHelper(const std::string& program, const std::string& action,
                                        const std::string& input) {
  int in_pipe[2];
  int out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    return Status::FromErrno("pipe", errno);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  std::string prog = program;
  std::string act = action;
  char* argv[] = {prog.data(), act.data(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, prog.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in_pipe[0]);
  close(out_pipe[1]);
  if (rc != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    return Status(Code::kFailedPrecondition,
                  "credential helper " + prog + " cannot be run: " + std::strerror(rc) +
                      " (is it installed and on PATH? it is named by credsStore/credHelpers in "
                      "the docker config.json)");
  }
  // Requests are tiny, so writing all of stdin before reading stdout cannot deadlock.
  // Ignore SIGPIPE from a helper that exits without reading.
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old);
  Status wst = WriteAll(in_pipe[1], input);
  close(in_pipe[1]);
  sigaction(SIGPIPE, &old, nullptr);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(out_pipe[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    std::string msg = out;
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
    if (msg.find("credentials not found") != std::string::npos) {
      return Status::NotFound("credentials not found in " + prog);
    }
    return Status::Internal("credential helper " + prog + " " + action + " failed: " +
                            (msg.empty() ? "exit status " + std::to_string(WEXITSTATUS(wstatus))
                                         : msg));
  }
  if (!wst.ok()) return wst;
  return out;
}

std::string AuthKeyForHost(std::string_view host) {
  if (IsDockerHub(host)) return "https://index.docker.io/v1/";
  return std::string(host);
}

std::string HostFromAuthKey(std::string_view key) {
  std::string_view s = key;
  if (s.starts_with("http://")) s.remove_prefix(7);
  if (s.starts_with("https://")) s.remove_prefix(8);
  auto slash = s.find('/');
  if (slash != std::string_view::npos) s = s.substr(0, slash);
  if (IsDockerHub(s)) return "docker.io";
  return std::string(s);
}

fs::path DockerConfig::DefaultDir() {
  if (const char* d = std::getenv("DOCKER_CONFIG"); d != nullptr && *d != '\0') return d;
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : ".") / ".docker";
}

Result<DockerConfig> DockerConfig::Load(const fs::path& dir, HelperRunner runner) {
  fs::path file = dir / "config.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(file, ec)) return DockerConfig(json::object{}, dir, std::move(runner));
    return Status::IoError("cannot read " + file.string() + ": " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), dir, std::move(runner));
}

Result<DockerConfig> DockerConfig::Parse(std::string_view text, const fs::path& dir,
                                         HelperRunner runner) {
  std::string what = (dir / "config.json").string();
  bool blank = text.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (blank) return DockerConfig(json::object{}, dir, std::move(runner));
  BERTH_ASSIGN_OR_RETURN(json::value v, ParseJson(text, what));
  if (!v.is_object()) return Status::InvalidArgument(what + ": expected a JSON object");
  return DockerConfig(std::move(v.as_object()), dir, std::move(runner));
}

std::string DockerConfig::HelperFor(std::string_view host) const {
  if (const json::object* helpers = JsonObject(doc_, "credHelpers")) {
    for (const auto& kv : *helpers) {
      if (HostFromAuthKey(kv.key()) == HostFromAuthKey(host) && kv.value().is_string()) {
        return std::string(kv.value().get_string());
      }
    }
  }
  return JsonString(doc_, "credsStore");
}

std::optional<std::string> DockerConfig::FindAuthKey(std::string_view host) const {
  const json::object* auths = JsonObject(doc_, "auths");
  if (auths == nullptr) return std::nullopt;
  std::string want = HostFromAuthKey(host);
  // An exact key wins over a normalized match.
  if (auths->contains(AuthKeyForHost(host))) return AuthKeyForHost(host);
  for (const auto& kv : *auths) {
    if (HostFromAuthKey(kv.key()) == want) return std::string(kv.key());
  }
  return std::nullopt;
}

Result<std::optional<Credentials>> DockerConfig::Get(std::string_view host) const {
  std::string helper = HelperFor(host);
  if (!helper.empty()) {
    auto out = runner_("docker-credential-" + helper, "get", AuthKeyForHost(host));
    if (!out.ok()) {
      if (out.status().Is(Code::kNotFound)) return std::optional<Credentials>();
      return out.status();
    }
    BERTH_ASSIGN_OR_RETURN(json::value v,
                           ParseJson(*out, "docker-credential-" + helper + " get output"));
    if (!v.is_object()) return Status::Internal("docker-credential-" + helper + ": bad output");
    Credentials c;
    c.username = JsonString(v.as_object(), "Username");
    c.password = JsonString(v.as_object(), "Secret");
    // Helpers report identity tokens with the "<token>" user name.
    if (c.username == "<token>") {
      c.identity_token = c.password;
      c.username.clear();
      c.password.clear();
    }
    if (c.empty()) return std::optional<Credentials>();
    return std::optional<Credentials>(std::move(c));
  }
  auto key = FindAuthKey(host);
  if (!key) return std::optional<Credentials>();
  const json::object& entry = doc_.at("auths").as_object().at(*key).as_object();
  Credentials c;
  std::string auth = JsonString(entry, "auth");
  if (!auth.empty()) {
    auto decoded = Base64Decode(auth);
    if (!decoded.ok()) {
      return Status::InvalidArgument((dir_ / "config.json").string() + ": auths." + *key +
                                     ".auth is not valid base64");
    }
    auto colon = decoded->find(':');
    if (colon == std::string::npos) {
      return Status::InvalidArgument((dir_ / "config.json").string() + ": auths." + *key +
                                     ".auth must encode user:password");
    }
    c.username = decoded->substr(0, colon);
    c.password = decoded->substr(colon + 1);
  } else {
    c.username = JsonString(entry, "username");
    c.password = JsonString(entry, "password");
  }
  c.identity_token = JsonString(entry, "identitytoken");
  if (c.empty()) return std::optional<Credentials>();
  return std::optional<Credentials>(std::move(c));
}

Status DockerConfig::Store(std::string_view host, const Credentials& creds) {
  std::string key = AuthKeyForHost(host);
  std::string helper = HelperFor(host);
  if (!doc_["auths"].is_object()) doc_["auths"] = json::object{};
  json::object& auths = doc_["auths"].as_object();
  if (auto old = FindAuthKey(host); old && *old != key) auths.erase(*old);
  if (!helper.empty()) {
    json::object req;
    req["ServerURL"] = key;
    req["Username"] = creds.username;
    req["Secret"] = creds.password;
    auto out = runner_("docker-credential-" + helper, "store", GoJson(req));
    if (!out.ok()) return out.status();
    // docker keeps an empty entry so that `docker login` lists the host.
    auths[key] = json::object{};
  } else {
    json::object entry;
    entry["auth"] = Base64Encode(creds.username + ":" + creds.password);
    auths[key] = std::move(entry);
  }
  return Save();
}

Result<bool> DockerConfig::Erase(std::string_view host) {
  bool removed = false;
  std::string helper = HelperFor(host);
  if (!helper.empty()) {
    auto out = runner_("docker-credential-" + helper, "erase", AuthKeyForHost(host));
    if (out.ok()) {
      removed = true;
    } else if (!out.status().Is(Code::kNotFound)) {
      return out.status();
    }
  }
  if (auto key = FindAuthKey(host)) {
    doc_["auths"].as_object().erase(*key);
    removed = true;
  }
  if (removed) BERTH_RETURN_IF_ERROR(Save());
  return removed;
}

std::string DockerConfig::Serialize() const { return GoJson(doc_, "\t"); }

Status DockerConfig::Save() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status::IoError("cannot create " + dir_.string() + ": " + ec.message());
  // Follow a symlinked config.json (dotfile managers) instead of replacing the link.
  fs::path target = dir_ / "config.json";
  if (fs::is_symlink(target, ec)) {
    fs::path resolved = fs::canonical(target, ec);
    if (!ec) target = resolved;
  }
  fs::path tmp = target.parent_path() / ("config.json.tmp." + std::to_string(getpid()));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("cannot write " + tmp.string(), errno);
  std::string text = Serialize();
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::FromErrno("cannot write " + tmp.string(), err);
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::FromErrno("cannot write " + tmp.string(), errno);
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno("cannot replace " + target.string(), err);
  }
  return Status::Ok();
}

}  // namespace berth::client
