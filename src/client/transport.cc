#include "client/transport.h"

#include <unistd.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "client/archive_util.h"
#include "client/json_util.h"
#include "client/transport_impl.h"
#include "oci/media_types.h"

namespace berth::client {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// docker:// — a repository in a registry
// ---------------------------------------------------------------------------

class RegistrySource final : public ImageSource {
 public:
  RegistrySource(ImageName name, std::shared_ptr<RegistryClient> client, ClientContext& ctx)
      : name_(std::move(name)), client_(std::move(client)), ctx_(ctx) {}

  std::string Describe() const override { return "docker://" + name_.String(); }

  Result<ManifestData> GetManifest() override {
    return client_->GetManifest(name_.repository, name_.Reference());
  }
  Result<ManifestData> GetManifestByDigest(const oci::Descriptor& d) override {
    return client_->GetManifest(name_.repository, d.digest.str());
  }

  Result<LocalBlob> FetchBlob(const oci::Descriptor& d, const ProgressFn& progress) override {
    fs::path spool = ctx_.SpoolPath(d.digest);
    std::error_code ec;
    // A spool is renamed into place only after its digest was verified.
    if (fs::exists(spool, ec) && static_cast<int64_t>(fs::file_size(spool, ec)) == d.size) {
      if (progress) progress(static_cast<uint64_t>(d.size));
      std::lock_guard lock(mu_);
      spooled_.push_back(spool);
      return LocalBlob{spool, 0, static_cast<uint64_t>(d.size)};
    }
    fs::create_directories(spool.parent_path(), ec);
    fs::path tmp = spool;
    tmp += ".partial." + std::to_string(getpid()) + "." +
           std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()) & 0xffff);
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::IoError("cannot create " + tmp.string());
    Status st = client_->GetBlob(
        name_.repository, d,
        [&](std::string_view data) -> Status {
          out.write(data.data(), static_cast<std::streamsize>(data.size()));
          if (!out) return Status::IoError("cannot write " + tmp.string() + " (disk full?)");
          return Status::Ok();
        },
        progress);
    out.close();
    if (st.ok() && !out) st = Status::IoError("cannot write " + tmp.string());
    if (!st.ok()) {
      fs::remove(tmp, ec);
      return st;
    }
    fs::rename(tmp, spool, ec);
    if (ec) return Status::IoError("cannot rename to " + spool.string() + ": " + ec.message());
    std::lock_guard lock(mu_);
    spooled_.push_back(spool);
    return LocalBlob{spool, 0, static_cast<uint64_t>(d.size)};
  }

  Result<std::string> ReadBlob(const oci::Descriptor& d) override {
    return client_->GetBlobBytes(name_.repository, d);
  }

  std::optional<std::pair<std::string, std::string>> RegistryRepo() const override {
    return std::make_pair(client_->host(), name_.repository);
  }

  void Cleanup() override {
    std::lock_guard lock(mu_);
    std::error_code ec;
    for (const auto& p : spooled_) fs::remove(p, ec);
    spooled_.clear();
  }

 private:
  ImageName name_;
  std::shared_ptr<RegistryClient> client_;
  ClientContext& ctx_;
  std::mutex mu_;
  std::vector<fs::path> spooled_;  // guarded by mu_
};

class RegistryDestination final : public ImageDestination {
 public:
  RegistryDestination(ImageName name, std::shared_ptr<RegistryClient> client)
      : name_(std::move(name)), client_(std::move(client)) {}

  std::string Describe() const override { return "docker://" + name_.String(); }

  Result<bool> HasBlob(const oci::Descriptor& d) override {
    BERTH_ASSIGN_OR_RETURN(auto size, client_->BlobSize(name_.repository, d.digest));
    return size.has_value();
  }

  Result<bool> TryMount(const oci::Descriptor& d, const ImageSource& src) override {
    auto from = src.RegistryRepo();
    if (!from || from->first != client_->host() || from->second == name_.repository) return false;
    auto mounted = client_->MountBlob(name_.repository, d.digest, from->second);
    if (!mounted.ok()) {
      // A refused mount is not fatal: the blob is sent instead.
      if (mounted.status().Is(Code::kUnavailable)) return mounted.status();
      return false;
    }
    return *mounted;
  }

  Status PutBlob(const oci::Descriptor& d, const LocalBlob& blob,
                 const ProgressFn& progress) override {
    return client_->UploadBlob(name_.repository, d, blob, progress);
  }

  Status PutManifest(const ManifestData& m, bool top_level) override {
    std::string ref = m.digest.str();
    if (top_level && !name_.tag.empty()) ref = name_.tag;
    if (top_level && name_.digest && *name_.digest != m.digest) {
      return Status::InvalidArgument("destination " + Describe() + " names digest " +
                                     name_.digest->str() + " but the manifest has digest " +
                                     m.digest.str());
    }
    auto d = client_->PutManifest(name_.repository, ref, m.bytes, m.media_type);
    if (!d.ok()) return d.status();
    return Status::Ok();
  }

 private:
  ImageName name_;
  std::shared_ptr<RegistryClient> client_;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

}  // namespace

fs::path DefaultCacheDir() {
  std::string xdg = Env("XDG_CACHE_HOME");
  if (!xdg.empty()) return fs::path(xdg) / "berth";
  std::string home = Env("HOME");
  return fs::path(home.empty() ? "/tmp" : home) / ".cache" / "berth";
}

ClientContext::ClientContext(RegistryOptions options, std::optional<DockerConfig> config,
                             fs::path cache_dir)
    : options_(std::move(options)), config_(std::move(config)), cache_dir_(std::move(cache_dir)) {
  if (options_.upload_state_dir.empty()) options_.upload_state_dir = cache_dir_ / "uploads";
}

Result<std::shared_ptr<RegistryClient>> ClientContext::Registry(const std::string& host) {
  std::lock_guard lock(mu_);
  if (auto it = clients_.find(host); it != clients_.end()) return it->second;
  std::optional<Credentials> creds;
  if (config_) {
    std::string key = host == "registry-1.docker.io" ? std::string(kDockerHub) : host;
    BERTH_ASSIGN_OR_RETURN(creds, config_->Get(key));
  }
  auto client = std::make_shared<RegistryClient>(host, options_, std::move(creds));
  clients_[host] = client;
  return client;
}

fs::path ClientContext::SpoolPath(const oci::Digest& d) const {
  return cache_dir_ / "blobs" / std::string(d.algorithm_name()) / std::string(d.hex());
}

std::string ManifestMediaType(std::string_view bytes, std::string_view given) {
  if (oci::IsManifestMediaType(given)) return std::string(given);
  auto v = ParseJson(bytes, "manifest");
  if (v.ok() && v->is_object()) {
    std::string mt = JsonString(v->as_object(), "mediaType");
    if (!mt.empty()) return mt;
    if (v->as_object().contains("manifests")) return std::string(oci::kOciIndex);
    if (v->as_object().contains("config")) return std::string(oci::kOciManifest);
  }
  return std::string(given);
}

Result<std::unique_ptr<ImageSource>> OpenRegistrySource(const ImageLocation& loc,
                                                        ClientContext& ctx) {
  BERTH_ASSIGN_OR_RETURN(auto client, ctx.Registry(loc.name.ApiHost()));
  return std::unique_ptr<ImageSource>(new RegistrySource(loc.name, std::move(client), ctx));
}

Result<std::unique_ptr<ImageDestination>> OpenRegistryDestination(const ImageLocation& loc,
                                                                  ClientContext& ctx) {
  BERTH_ASSIGN_OR_RETURN(auto client, ctx.Registry(loc.name.ApiHost()));
  return std::unique_ptr<ImageDestination>(new RegistryDestination(loc.name, std::move(client)));
}

Result<std::unique_ptr<ImageSource>> OpenSource(const ImageLocation& loc, ClientContext& ctx) {
  switch (loc.transport) {
    case Transport::kDocker: return OpenRegistrySource(loc, ctx);
    case Transport::kOciLayout: return OpenOciLayoutSource(loc, ctx);
    case Transport::kDockerArchive: return OpenDockerArchiveSource(loc, ctx);
  }
  return Status::Internal("unknown transport");
}

Result<std::unique_ptr<ImageDestination>> OpenDestination(const ImageLocation& loc,
                                                          ClientContext& ctx) {
  switch (loc.transport) {
    case Transport::kDocker: return OpenRegistryDestination(loc, ctx);
    case Transport::kOciLayout: return OpenOciLayoutDestination(loc, ctx);
    case Transport::kDockerArchive: return OpenDockerArchiveDestination(loc, ctx);
  }
  return Status::Internal("unknown transport");
}

}  // namespace berth::client
