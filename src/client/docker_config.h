// DockerConfig: the Docker CLI's client configuration ($DOCKER_CONFIG/config.json,
// else ~/.docker/config.json), read and written so that docker, skopeo, podman and
// berth share one login.
//
// Credentials live either inline (`auths.<host>.auth` = base64("user:password")) or in
// a credential helper named by `credHelpers.<host>` or `credsStore`: the program
// `docker-credential-<name>` speaking the helper protocol (`get`, `store`, `erase`
// with the request on stdin and JSON on stdout). Fields Berth does not know are
// preserved when the file is rewritten.
//
// Thread-compatible (one instance per command).
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "client/auth.h"

namespace berth::client {

// Runs `program action` with `input` on stdin; returns stdout. A non-zero exit is
// kNotFound when stdout says "credentials not found", else kInternal.
using HelperRunner = std::function<Result<std::string>(
    const std::string& program, const std::string& action, const std::string& input)>;

// The real runner: execs docker-credential-<name> from PATH.
Result<std::string> RunCredentialHelper(const std::string& program, const std::string& action,
                                        const std::string& input);

// The key docker uses in `auths` for a registry host ("https://index.docker.io/v1/"
// for Docker Hub, else the host itself).
std::string AuthKeyForHost(std::string_view host);
// "https://host:5000/v1/" → "host:5000" (docker's ConvertToHostname).
std::string HostFromAuthKey(std::string_view key);

class DockerConfig {
 public:
  // $DOCKER_CONFIG, else $HOME/.docker.
  static std::filesystem::path DefaultDir();
  // Loads dir/config.json; a missing file is an empty configuration.
  static Result<DockerConfig> Load(const std::filesystem::path& dir,
                                   HelperRunner runner = RunCredentialHelper);
  // Parses config JSON text (for tests). kInvalidArgument naming the file when malformed.
  static Result<DockerConfig> Parse(std::string_view json, const std::filesystem::path& dir,
                                    HelperRunner runner = RunCredentialHelper);

  // Helper program for `host` ("" = inline auths): credHelpers[host], else credsStore.
  std::string HelperFor(std::string_view host) const;
  // Stored credentials for `host`, nullopt when there are none.
  Result<std::optional<Credentials>> Get(std::string_view host) const;
  // Stores credentials (helper or inline) and saves the file.
  Status Store(std::string_view host, const Credentials& creds);
  // Removes credentials; false when there were none. Saves the file when it changed.
  Result<bool> Erase(std::string_view host);

  // The JSON text as written (tab-indented like docker's).
  std::string Serialize() const;
  // Atomically rewrites dir/config.json with mode 0600.
  Status Save() const;

  const std::filesystem::path& dir() const { return dir_; }
  const boost::json::object& json() const { return doc_; }

 private:
  DockerConfig(boost::json::object doc, std::filesystem::path dir, HelperRunner runner)
      : doc_(std::move(doc)), dir_(std::move(dir)), runner_(std::move(runner)) {}
  // The key in `auths` that matches host, if any.
  std::optional<std::string> FindAuthKey(std::string_view host) const;

  boost::json::object doc_;
  std::filesystem::path dir_;
  HelperRunner runner_;
};

}  // namespace berth::client
