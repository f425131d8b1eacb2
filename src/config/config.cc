#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <functional>
#include <vector>

extern char** environ;

namespace berth::config {
namespace {

// One table of every setting: its dotted YAML key, and how to set it from a string.
// The environment variable is BERTH_ + the key upper-cased with '.' → '_'.
struct Setting {
  const char* key;
  std::function<Status(Config&, const std::string&)> set;
};

Status ParseBool(const std::string& key, const std::string& v, bool& out) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") {
    out = true;
  } else if (v == "false" || v == "0" || v == "no" || v == "off") {
    out = false;
  } else {
    return Status::InvalidArgument(key + ": expected true or false, got '" + v + "'");
  }
  return {};
}

template <typename Int>
Status ParseInt(const std::string& key, const std::string& v, Int& out) {
  Int x{};
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size()) {
    return Status::InvalidArgument(key + ": expected an integer, got '" + v + "'");
  }
  out = x;
  return {};
}

#define STR_SETTING(k, field) \
  Setting { k, [](Config& c, const std::string& v) { c.field = v; return Status(); } }
#define INT_SETTING(k, field) \
  Setting { k, [](Config& c, const std::string& v) { return ParseInt(k, v, c.field); } }
#define BOOL_SETTING(k, field) \
  Setting { k, [](Config& c, const std::string& v) { return ParseBool(k, v, c.field); } }

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> kSettings = {
      STR_SETTING("listen", listen),
      STR_SETTING("data_dir", data_dir),
      BOOL_SETTING("create_on_push", create_on_push),
      STR_SETTING("public_url", public_url),
      INT_SETTING("http.idle_timeout_seconds", http.idle_timeout_seconds),
      INT_SETTING("http.read_timeout_seconds", http.read_timeout_seconds),
      INT_SETTING("http.header_timeout_seconds", http.header_timeout_seconds),
      INT_SETTING("http.max_header_bytes", http.max_header_bytes),
      INT_SETTING("http.io_threads", http.io_threads),
      INT_SETTING("http.blocking_threads", http.blocking_threads),
      INT_SETTING("http.read_threads", http.read_threads),
      INT_SETTING("http.blob_threads", http.blob_threads),
      BOOL_SETTING("auth.enabled", auth.enabled),
      INT_SETTING("auth.token_ttl_seconds", auth.token_ttl_seconds),
      STR_SETTING("tls.cert", tls.cert),
      STR_SETTING("tls.key", tls.key),
      INT_SETTING("uploads.expiry_seconds", uploads.expiry_seconds),
      INT_SETTING("uploads.sweep_interval_seconds", uploads.sweep_interval_seconds),
      BOOL_SETTING("uploads.direct_io", uploads.direct_io),
      INT_SETTING("uploads.lease_seconds", uploads.lease_seconds),
      INT_SETTING("limits.max_manifest_bytes", limits.max_manifest_bytes),
      INT_SETTING("cache.manifest_bytes", cache.manifest_bytes),
      STR_SETTING("ecr.account_id", ecr.account_id),
      STR_SETTING("ecr.region", ecr.region),
      INT_SETTING("ecr.download_url_ttl_seconds", ecr.download_url_ttl_seconds),
      STR_SETTING("ecr.download_url_secret", ecr.download_url_secret),
      INT_SETTING("ecr.pull_time_flush_seconds", ecr.pull_time_flush_seconds),
      STR_SETTING("log.level", log.level),
      BOOL_SETTING("log.access_log", log.access_log),
      STR_SETTING("storage.blobs.type", storage.blobs.type),
      STR_SETTING("storage.blobs.s3.endpoint", storage.blobs.s3.endpoint),
      STR_SETTING("storage.blobs.s3.bucket", storage.blobs.s3.bucket),
      STR_SETTING("storage.blobs.s3.region", storage.blobs.s3.region),
      STR_SETTING("storage.blobs.s3.prefix", storage.blobs.s3.prefix),
      BOOL_SETTING("storage.blobs.s3.path_style", storage.blobs.s3.path_style),
      BOOL_SETTING("storage.blobs.s3.create_bucket", storage.blobs.s3.create_bucket),
      BOOL_SETTING("storage.blobs.s3.redirect", storage.blobs.s3.redirect),
      INT_SETTING("storage.blobs.s3.part_size", storage.blobs.s3.part_size),
      STR_SETTING("storage.metadata.type", storage.metadata.type),
      STR_SETTING("storage.metadata.postgres.url", storage.metadata.postgres.url),
      INT_SETTING("storage.metadata.postgres.max_connections",
                  storage.metadata.postgres.max_connections),
  };
  return kSettings;
}

const Setting* FindSetting(const std::string& key) {
  for (const auto& s : Settings()) {
    if (key == s.key) return &s;
  }
  return nullptr;
}

std::string EnvName(const std::string& key) {
  std::string env = "BERTH_";
  for (char c : key) env += c == '.' ? '_' : static_cast<char>(std::toupper(c));
  return env;
}

Status ApplyNode(const YAML::Node& node, const std::string& prefix, Config& cfg) {
  if (!node.IsMap()) {
    return Status::InvalidArgument("config: '" + prefix + "' must be a mapping");
  }
  for (const auto& kv : node) {
    std::string key = prefix.empty() ? kv.first.as<std::string>()
                                     : prefix + "." + kv.first.as<std::string>();
    if (kv.second.IsMap()) {
      BERTH_RETURN_IF_ERROR(ApplyNode(kv.second, key, cfg));
      continue;
    }
    const Setting* s = FindSetting(key);
    if (s == nullptr) return Status::InvalidArgument("config: unknown setting '" + key + "'");
    if (!kv.second.IsScalar()) {
      return Status::InvalidArgument("config: '" + key + "' must be a single value");
    }
    BERTH_RETURN_IF_ERROR(s->set(cfg, kv.second.Scalar()));
  }
  return {};
}

}  // namespace

Status LoadYamlFile(const std::string& path, Config& cfg) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("config file " + path + ": " + e.what());
  }
  if (root.IsNull()) return {};
  try {
    return ApplyNode(root, "", cfg);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("config file " + path + ": " + e.what());
  }
}

Status ApplyEnvironment(const std::map<std::string, std::string>& env, Config& cfg) {
  for (const auto& s : Settings()) {
    auto it = env.find(EnvName(s.key));
    if (it == env.end()) continue;
    Status st = s.set(cfg, it->second);
    if (!st.ok()) return Status::InvalidArgument(it->first + ": " + st.message());
  }
  return {};
}

std::map<std::string, std::string> BerthEnvironment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (!kv.starts_with("BERTH_")) continue;
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return out;
}

Status Validate(const Config& cfg) {
  auto colon = cfg.listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == cfg.listen.size()) {
    return Status::InvalidArgument("listen: expected HOST:PORT, got '" + cfg.listen + "'");
  }
  if (cfg.data_dir.empty()) return Status::InvalidArgument("data_dir: must not be empty");
  if (cfg.http.idle_timeout_seconds <= 0 || cfg.http.read_timeout_seconds <= 0 ||
      cfg.http.header_timeout_seconds <= 0) {
    return Status::InvalidArgument("http timeouts must be positive");
  }
  if (cfg.http.max_header_bytes < 1024) {
    return Status::InvalidArgument("http.max_header_bytes: must be at least 1024");
  }
  if (cfg.http.io_threads < 0 || cfg.http.blocking_threads < 1 || cfg.http.read_threads < 0 ||
      cfg.http.blob_threads < 0) {
    return Status::InvalidArgument(
        "http.io_threads, http.read_threads and http.blob_threads must be >= 0, "
        "http.blocking_threads >= 1");
  }
  if (cfg.auth.token_ttl_seconds <= 0) {
    return Status::InvalidArgument("auth.token_ttl_seconds: must be positive");
  }
  if (cfg.tls.cert.empty() != cfg.tls.key.empty()) {
    return Status::InvalidArgument("tls.cert and tls.key must be set together");
  }
  if (cfg.uploads.lease_seconds <= 0) {
    return Status::InvalidArgument("uploads.lease_seconds: must be positive");
  }
  if (cfg.uploads.expiry_seconds <= 0 || cfg.uploads.sweep_interval_seconds <= 0) {
    return Status::InvalidArgument("uploads.expiry_seconds and sweep_interval must be positive");
  }
  if (cfg.limits.max_manifest_bytes < 1024) {
    return Status::InvalidArgument("limits.max_manifest_bytes: must be at least 1024");
  }
  if (cfg.ecr.account_id.size() != 12 ||
      cfg.ecr.account_id.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("ecr.account_id: expected 12 digits, got '" +
                                   cfg.ecr.account_id + "'");
  }
  if (cfg.ecr.region.empty() || cfg.ecr.region.find_first_not_of(
                                    "abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) {
    return Status::InvalidArgument("ecr.region: expected a region name such as us-east-1, got '" +
                                   cfg.ecr.region + "'");
  }
  if (cfg.ecr.download_url_ttl_seconds <= 0 || cfg.ecr.pull_time_flush_seconds <= 0) {
    return Status::InvalidArgument(
        "ecr.download_url_ttl_seconds and ecr.pull_time_flush_seconds must be positive");
  }
  if (!cfg.public_url.empty() && !cfg.public_url.starts_with("http://") &&
      !cfg.public_url.starts_with("https://")) {
    return Status::InvalidArgument("public_url: expected http://HOST[:PORT] or https://..., got '" +
                                   cfg.public_url + "'");
  }
  const auto& blobs = cfg.storage.blobs;
  if (blobs.type != "filesystem" && blobs.type != "s3") {
    return Status::InvalidArgument("storage.blobs.type: expected filesystem or s3, got '" +
                                   blobs.type + "'");
  }
  if (blobs.type == "s3") {
    if (blobs.s3.endpoint.empty() || blobs.s3.bucket.empty()) {
      return Status::InvalidArgument(
          "storage.blobs.s3.endpoint and storage.blobs.s3.bucket are required with "
          "storage.blobs.type s3");
    }
    if (!blobs.s3.endpoint.starts_with("http://") && !blobs.s3.endpoint.starts_with("https://")) {
      return Status::InvalidArgument(
          "storage.blobs.s3.endpoint: expected http://HOST[:PORT] or https://..., got '" +
          blobs.s3.endpoint + "'");
    }
    constexpr uint64_t kMiB = 1024 * 1024;
    if (blobs.s3.part_size < 5 * kMiB || blobs.s3.part_size > 5 * 1024 * kMiB) {
      return Status::InvalidArgument(
          "storage.blobs.s3.part_size: S3 parts are 5 MiB to 5 GiB, got " +
          std::to_string(blobs.s3.part_size));
    }
  }
  const auto& meta = cfg.storage.metadata;
  if (meta.type != "sqlite" && meta.type != "postgres") {
    return Status::InvalidArgument("storage.metadata.type: expected sqlite or postgres, got '" +
                                   meta.type + "'");
  }
  if (meta.type == "postgres") {
    if (meta.postgres.url.empty()) {
      return Status::InvalidArgument(
          "storage.metadata.postgres.url is required with storage.metadata.type postgres");
    }
    if (meta.postgres.max_connections < 1) {
      return Status::InvalidArgument("storage.metadata.postgres.max_connections: must be >= 1");
    }
  }
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok |= cfg.log.level == l;
  if (!level_ok) {
    return Status::InvalidArgument("log.level: expected trace|debug|info|warn|error, got '" +
                                   cfg.log.level + "'");
  }
  return {};
}

std::string PublicUrl(const Config& cfg, uint16_t bound_port) {
  if (!cfg.public_url.empty()) {
    std::string url = cfg.public_url;
    while (url.size() > 1 && url.back() == '/') url.pop_back();
    return url;
  }
  std::string host = cfg.listen.substr(0, cfg.listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::" || host == "[::]") host = "[::1]";
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return std::string(cfg.tls.enabled() ? "https" : "http") + "://" + host + ":" +
         std::to_string(bound_port);
}

}  // namespace berth::config
