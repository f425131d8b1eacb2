// docker-archive:FILE[:NAME:TAG] — the `docker save` tarball: manifest.json
// ([{"Config": "<hex>.json", "RepoTags": [...], "Layers": ["<diff_id hex>.tar", ...]}]),
// the config blob and uncompressed layer tars.
//
// Reading: members are served in place from the (uncompressed) tar; layers are
// gzip-compressed reproducibly into the cache so that registries get compressed
// layers; a Docker schema 2 manifest is rebuilt around the original config (so the
// config digest and diff_ids survive a round trip).
// Writing: layers are decompressed and checked against the config's diff_ids.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <set>
#include <thread>

#include "client/archive_util.h"
#include "client/json_util.h"
#include "client/transport_impl.h"
#include "oci/media_types.h"

namespace berth::client {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

std::string FamiliarName(const ImageName& n) {
  std::string name = n.Name();
  if (n.registry == kDockerHub) {
    name = n.repository;
    if (name.starts_with("library/")) name = name.substr(8);
  }
  return name + ":" + (n.tag.empty() ? "latest" : n.tag);
}

Result<std::vector<std::string>> DiffIds(std::string_view config) {
  BERTH_ASSIGN_OR_RETURN(json::value v, ParseJson(config, "image config"));
  std::vector<std::string> out;
  if (!v.is_object()) return out;
  if (const json::object* rootfs = JsonObject(v.as_object(), "rootfs")) {
    if (const json::array* ids = JsonArray(*rootfs, "diff_ids")) {
      for (const auto& e : *ids) {
        if (e.is_string()) out.emplace_back(e.get_string());
      }
    }
  }
  return out;
}

class DockerArchiveSource final : public ImageSource {
 public:
  DockerArchiveSource(ImageLocation loc, ClientContext& ctx) : loc_(std::move(loc)), ctx_(ctx) {}

  std::string Describe() const override { return loc_.String(); }

  Status Open() {
    std::error_code ec;
    if (!fs::exists(loc_.path, ec)) {
      return Status::NotFound("docker archive " + loc_.path + " does not exist");
    }
    BERTH_ASSIGN_OR_RETURN(members_, IndexTar(loc_.path));
    auto mf = members_.find("manifest.json");
    if (mf == members_.end()) {
      return Status::InvalidArgument(loc_.path + " is not a docker archive (no manifest.json)");
    }
    BERTH_ASSIGN_OR_RETURN(std::string text, ReadAll(mf->second));
    BERTH_ASSIGN_OR_RETURN(json::value v, ParseJson(text, loc_.path + ": manifest.json"));
    if (!v.is_array() || v.as_array().empty()) {
      return Status::InvalidArgument(loc_.path + ": manifest.json lists no images");
    }
    const json::object* chosen = nullptr;
    std::string all_tags;
    for (const auto& e : v.as_array()) {
      if (!e.is_object()) continue;
      const json::array* tags = JsonArray(e.as_object(), "RepoTags");
      if (tags) {
        for (const auto& t : *tags) {
          if (!t.is_string()) continue;
          std::string tag(t.get_string());
          if (!all_tags.empty()) all_tags += ", ";
          all_tags += tag;
          if (loc_.has_name) {
            auto parsed = ParseImageName(tag);
            if (parsed.ok() && parsed->String() == loc_.name.String()) chosen = &e.as_object();
          }
        }
      }
    }
    if (!loc_.has_name) {
      if (v.as_array().size() != 1) {
        return Status::InvalidArgument(loc_.path + " holds " + std::to_string(v.as_array().size()) +
                                       " images: name one with docker-archive:FILE:NAME:TAG (" +
                                       all_tags + ")");
      }
      chosen = &v.as_array()[0].as_object();
    }
    if (chosen == nullptr) {
      return Status(Code::kManifestUnknown, "no image " + FamiliarName(loc_.name) + " in " +
                                                loc_.path +
                                                (all_tags.empty() ? "" : " (it has: " + all_tags + ")"));
    }
    config_member_ = JsonString(*chosen, "Config");
    if (const json::array* layers = JsonArray(*chosen, "Layers")) {
      for (const auto& l : *layers) {
        if (l.is_string()) layer_members_.emplace_back(l.get_string());
      }
    }
    return Status::Ok();
  }

  Result<ManifestData> GetManifest() override {
    if (manifest_) return *manifest_;
    auto cm = members_.find(config_member_);
    if (cm == members_.end()) {
      return Status::InvalidArgument(loc_.path + ": config " + config_member_ + " is missing");
    }
    BERTH_ASSIGN_OR_RETURN(std::string config, ReadAll(cm->second));
    BERTH_ASSIGN_OR_RETURN(std::vector<std::string> diff_ids, DiffIds(config));
    if (diff_ids.size() != layer_members_.size()) {
      return Status::InvalidArgument(loc_.path + ": the config lists " +
                                     std::to_string(diff_ids.size()) + " layers, manifest.json " +
                                     std::to_string(layer_members_.size()));
    }
    oci::Digest config_digest = oci::Digest::Of(config);
    blobs_[config_digest.str()] = cm->second;
    json::array layers;
    std::error_code ec;
    fs::create_directories(ctx_.TempDir(), ec);
    for (size_t i = 0; i < layer_members_.size(); ++i) {
      auto lm = members_.find(layer_members_[i]);
      if (lm == members_.end()) {
        return Status::InvalidArgument(loc_.path + ": layer " + layer_members_[i] + " is missing");
      }
      BERTH_ASSIGN_OR_RETURN(bool gz, IsGzip(lm->second));
      LocalBlob blob;
      oci::Digest digest;
      if (gz) {
        BERTH_ASSIGN_OR_RETURN(digest, DigestOf(lm->second));
        blob = lm->second;
      } else {
        fs::path tmp = ctx_.TempDir() / ("layer-" + std::to_string(getpid()) + "-" +
                                         std::to_string(i) + ".gz");
        BERTH_ASSIGN_OR_RETURN(ConvertedBlob c, GzipToFile(lm->second, tmp));
        if (c.other_digest.str() != diff_ids[i]) {
          fs::remove(tmp, ec);
          return Status(Code::kDigestInvalid, loc_.path + ": layer " + layer_members_[i] +
                                                  " has digest " + c.other_digest.str() +
                                                  ", the config says " + diff_ids[i]);
        }
        fs::path spool = ctx_.SpoolPath(c.digest);
        fs::create_directories(spool.parent_path(), ec);
        fs::rename(tmp, spool, ec);
        if (ec) return Status::IoError("cannot rename to " + spool.string() + ": " + ec.message());
        temps_.push_back(spool);
        digest = c.digest;
        blob = LocalBlob{spool, 0, c.size};
      }
      blobs_[digest.str()] = blob;
      json::object l;
      l["mediaType"] = kDockerLayerGzip;
      l["size"] = blob.size;
      l["digest"] = digest.str();
      layers.push_back(std::move(l));
    }
    json::object m;
    m["schemaVersion"] = 2;
    m["mediaType"] = oci::kDockerManifest;
    json::object c;
    c["mediaType"] = oci::kDockerConfig;
    c["size"] = config.size();
    c["digest"] = config_digest.str();
    m["config"] = std::move(c);
    m["layers"] = std::move(layers);
    ManifestData data;
    data.bytes = GoJson(m);
    data.media_type = std::string(oci::kDockerManifest);
    data.digest = oci::Digest::Of(data.bytes);
    manifest_ = data;
    return data;
  }

  Result<ManifestData> GetManifestByDigest(const oci::Descriptor& d) override {
    BERTH_ASSIGN_OR_RETURN(ManifestData m, GetManifest());
    if (m.digest != d.digest) {
      return Status(Code::kManifestUnknown, "no manifest " + d.digest.str() + " in " + loc_.path);
    }
    return m;
  }

  Result<LocalBlob> FetchBlob(const oci::Descriptor& d, const ProgressFn& progress) override {
    auto it = blobs_.find(d.digest.str());
    if (it == blobs_.end()) {
      return Status(Code::kBlobUnknown, "blob " + d.digest.str() + " is not in " + loc_.path);
    }
    if (progress) progress(it->second.size);
    return it->second;
  }

  Result<std::string> ReadBlob(const oci::Descriptor& d) override {
    BERTH_ASSIGN_OR_RETURN(LocalBlob b, FetchBlob(d, nullptr));
    return ReadAll(b);
  }

  void Cleanup() override {
    std::error_code ec;
    for (const auto& p : temps_) fs::remove(p, ec);
    temps_.clear();
  }

 private:
  ImageLocation loc_;
  ClientContext& ctx_;
  std::map<std::string, LocalBlob> members_;
  std::string config_member_;
  std::vector<std::string> layer_members_;
  // Written once by GetManifest (before any worker thread runs), then read-only.
  std::optional<ManifestData> manifest_;
  std::map<std::string, LocalBlob> blobs_;
  std::vector<fs::path> temps_;
};

// Writes a tar with fixed metadata (mtime 0, uid/gid 0, mode 0644).
class TarWriter {
 public:
  ~TarWriter() {
    if (a_ != nullptr) archive_write_free(a_);
  }
  Status Open(const fs::path& path) {
    a_ = archive_write_new();
    archive_write_set_format_pax_restricted(a_);
    if (archive_write_open_filename(a_, path.c_str()) != ARCHIVE_OK) {
      return Status::IoError("cannot create " + path.string() + ": " + archive_error_string(a_));
    }
    return Status::Ok();
  }
  Status AddHeader(const std::string& name, uint64_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e, 0, 0);
    int rc = archive_write_header(a_, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK) return Status::IoError(std::string("tar: ") + archive_error_string(a_));
    return Status::Ok();
  }
  Status AddBytes(const std::string& name, std::string_view data) {
    BERTH_RETURN_IF_ERROR(AddHeader(name, data.size()));
    return Write(data);
  }
  Status AddFile(const std::string& name, const LocalBlob& blob) {
    BERTH_RETURN_IF_ERROR(AddHeader(name, blob.size));
    int fd = ::open(blob.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("cannot open " + blob.path.string(), errno);
    std::vector<char> buf(1 << 20);
    uint64_t done = 0;
    Status st;
    while (done < blob.size && st.ok()) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), blob.size - done));
      ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(blob.offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        st = Status::IoError("cannot read " + blob.path.string());
        break;
      }
      st = Write(std::string_view(buf.data(), static_cast<size_t>(n)));
      done += static_cast<uint64_t>(n);
    }
    ::close(fd);
    return st;
  }
  Status Close() {
    if (archive_write_close(a_) != ARCHIVE_OK) {
      return Status::IoError(std::string("tar: ") + archive_error_string(a_));
    }
    return Status::Ok();
  }

 private:
  Status Write(std::string_view data) {
    while (!data.empty()) {
      la_ssize_t n = archive_write_data(a_, data.data(), data.size());
      if (n < 0) return Status::IoError(std::string("tar: ") + archive_error_string(a_));
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }
  archive* a_ = nullptr;
};

class DockerArchiveDestination final : public ImageDestination {
 public:
  DockerArchiveDestination(ImageLocation loc, ClientContext& ctx)
      : loc_(std::move(loc)), ctx_(ctx) {}

  std::string Describe() const override { return loc_.String(); }
  bool SupportsIndex() const override { return false; }
  Result<bool> HasBlob(const oci::Descriptor&) override { return false; }

  Status PutBlob(const oci::Descriptor& d, const LocalBlob& blob, const ProgressFn& progress) override {
    std::lock_guard lock(mu_);
    blobs_[d.digest.str()] = blob;
    if (progress) progress(blob.size);
    return Status::Ok();
  }

  Status PutManifest(const ManifestData& m, bool top_level) override {
    if (!top_level) {
      return Status::InvalidArgument(Describe() + " can hold a single image only: pick one with "
                                                  "--platform os/arch");
    }
    BERTH_ASSIGN_OR_RETURN(oci::ParsedManifest pm, oci::ParseManifest(m.bytes, m.media_type));
    if (pm.kind != oci::ManifestKind::kImage || !pm.config) {
      return Status::InvalidArgument(Describe() + " can hold a single image only: pick one with "
                                                  "--platform os/arch");
    }
    auto cfg_it = blobs_.find(pm.config->digest.str());
    if (cfg_it == blobs_.end()) return Status::Internal("config blob was not copied");
    BERTH_ASSIGN_OR_RETURN(std::string config, ReadAll(cfg_it->second));
    BERTH_ASSIGN_OR_RETURN(std::vector<std::string> diff_ids, DiffIds(config));
    if (diff_ids.size() != pm.layers.size()) {
      return Status::InvalidArgument("the image config lists " + std::to_string(diff_ids.size()) +
                                     " layers, the manifest " + std::to_string(pm.layers.size()));
    }
    fs::path out(loc_.path);
    fs::path tmp = out;
    tmp += ".partial." + std::to_string(getpid());
    std::error_code ec;
    if (out.has_parent_path()) fs::create_directories(out.parent_path(), ec);
    fs::create_directories(ctx_.TempDir(), ec);
    TarWriter tar;
    BERTH_RETURN_IF_ERROR(tar.Open(tmp));
    std::string config_name = std::string(pm.config->digest.hex()) + ".json";
    BERTH_RETURN_IF_ERROR(tar.AddBytes(config_name, config));
    json::array layer_names;
    std::set<std::string> written;
    for (size_t i = 0; i < pm.layers.size(); ++i) {
      const auto& l = pm.layers[i];
      auto it = blobs_.find(l.digest.str());
      if (it == blobs_.end()) return Status::Internal("layer blob was not copied");
      auto diff = oci::Digest::Parse(diff_ids[i]);
      if (!diff.ok()) return Status::InvalidArgument("image config: bad diff_id " + diff_ids[i]);
      std::string name = std::string(diff->hex()) + ".tar";
      layer_names.push_back(json::value(name));
      if (written.contains(name)) continue;
      written.insert(name);
      BERTH_ASSIGN_OR_RETURN(bool gz, IsGzip(it->second));
      if (gz) {
        fs::path plain = ctx_.TempDir() / ("gunzip-" + std::to_string(getpid()) + "-" +
                                           std::string(diff->hex()).substr(0, 16) + ".tar");
        auto c = GunzipToFile(it->second, plain);
        if (!c.ok()) {
          fs::remove(tmp, ec);
          return c.status();
        }
        if (c->digest != *diff) {
          fs::remove(plain, ec);
          fs::remove(tmp, ec);
          return Status(Code::kDigestInvalid, "layer " + l.digest.str() +
                                                  " decompresses to " + c->digest.str() +
                                                  ", the config says " + diff->str());
        }
        Status st = tar.AddFile(name, LocalBlob{plain, 0, c->size});
        fs::remove(plain, ec);
        BERTH_RETURN_IF_ERROR(st);
      } else {
        if (l.digest != *diff) {
          return Status(Code::kUnsupported, "layer " + l.digest.str() + " has media type " +
                                                l.media_type + ", which docker-archive cannot store");
        }
        BERTH_RETURN_IF_ERROR(tar.AddFile(name, it->second));
      }
    }
    json::object entry;
    entry["Config"] = config_name;
    json::array tags;
    if (loc_.has_name) tags.push_back(json::value(FamiliarName(loc_.name)));
    entry["RepoTags"] = std::move(tags);
    entry["Layers"] = std::move(layer_names);
    BERTH_RETURN_IF_ERROR(tar.AddBytes("manifest.json", GoJson(json::array{entry})));
    BERTH_RETURN_IF_ERROR(tar.Close());
    fs::rename(tmp, out, ec);
    if (ec) return Status::IoError("cannot write " + out.string() + ": " + ec.message());
    return Status::Ok();
  }

 private:
  ImageLocation loc_;
  ClientContext& ctx_;
  std::mutex mu_;
  std::map<std::string, LocalBlob> blobs_;  // guarded by mu_ while blobs are copied
};

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenDockerArchiveSource(const ImageLocation& loc,
                                                             ClientContext& ctx) {
  auto src = std::make_unique<DockerArchiveSource>(loc, ctx);
  BERTH_RETURN_IF_ERROR(src->Open());
  return std::unique_ptr<ImageSource>(std::move(src));
}

Result<std::unique_ptr<ImageDestination>> OpenDockerArchiveDestination(const ImageLocation& loc,
                                                                       ClientContext& ctx) {
  return std::unique_ptr<ImageDestination>(new DockerArchiveDestination(loc, ctx));
}

}  // namespace berth::client
