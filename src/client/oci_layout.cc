// oci:DIR[:TAG] — an OCI image layout (image-spec image-layout.md): `oci-layout`,
// `index.json` naming the images (tag = annotation org.opencontainers.image.ref.name)
// and `blobs/<alg>/<hex>` holding manifests, configs and layers.
#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <mutex>
#include <sstream>

#include "client/archive_util.h"
#include "client/json_util.h"
#include "client/transport_impl.h"
#include "oci/media_types.h"

namespace berth::client {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::string_view kRefName = "org.opencontainers.image.ref.name";

fs::path BlobPath(const fs::path& dir, const oci::Digest& d) {
  return dir / "blobs" / std::string(d.algorithm_name()) / std::string(d.hex());
}

Result<std::string> ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteTextAtomic(const fs::path& p, std::string_view text) {
  fs::path tmp = p;
  tmp += ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) return Status::IoError("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) return Status::IoError("cannot write " + p.string() + ": " + ec.message());
  return Status::Ok();
}

Result<oci::Descriptor> DescriptorFromJson(const json::object& o, std::string_view what) {
  oci::Descriptor d;
  d.media_type = JsonString(o, "mediaType");
  auto digest = oci::Digest::Parse(JsonString(o, "digest"));
  if (!digest.ok()) {
    return Status::InvalidArgument(std::string(what) + ": " + digest.status().message());
  }
  d.digest = *digest;
  d.size = JsonInt(o, "size");
  if (const json::object* ann = JsonObject(o, "annotations")) {
    for (const auto& kv : *ann) {
      if (kv.value().is_string()) d.annotations[kv.key()] = std::string(kv.value().get_string());
    }
  }
  if (const json::object* p = JsonObject(o, "platform")) {
    oci::Platform plat;
    plat.os = JsonString(*p, "os");
    plat.architecture = JsonString(*p, "architecture");
    plat.variant = JsonString(*p, "variant");
    d.platform = plat;
  }
  return d;
}

class OciLayoutSource final : public ImageSource {
 public:
  OciLayoutSource(fs::path dir, std::string tag) : dir_(std::move(dir)), tag_(std::move(tag)) {}

  std::string Describe() const override {
    return "oci:" + dir_.string() + (tag_.empty() ? "" : ":" + tag_);
  }

  Status Open() {
    std::error_code ec;
    if (!fs::is_directory(dir_, ec)) {
      return Status::NotFound("OCI layout " + dir_.string() + " does not exist");
    }
    auto text = ReadText(dir_ / "index.json");
    if (!text.ok()) {
      return Status::NotFound(dir_.string() + " is not an OCI image layout (no index.json)");
    }
    BERTH_ASSIGN_OR_RETURN(json::value v, ParseJson(*text, (dir_ / "index.json").string()));
    const json::array* ms = v.is_object() ? JsonArray(v.as_object(), "manifests") : nullptr;
    if (ms == nullptr) {
      return Status::InvalidArgument((dir_ / "index.json").string() + ": no manifests array");
    }
    std::vector<oci::Descriptor> all;
    for (const auto& e : *ms) {
      if (!e.is_object()) continue;
      BERTH_ASSIGN_OR_RETURN(oci::Descriptor d,
                             DescriptorFromJson(e.as_object(), (dir_ / "index.json").string()));
      all.push_back(std::move(d));
    }
    std::string names;
    for (const auto& d : all) {
      auto it = d.annotations.find(std::string(kRefName));
      std::string name = it != d.annotations.end() ? it->second : "";
      if (!names.empty()) names += ", ";
      names += name.empty() ? d.digest.str() : name;
      if (!tag_.empty() && name == tag_) top_ = d;
    }
    if (tag_.empty()) {
      if (all.size() == 1) {
        top_ = all[0];
      } else if (all.empty()) {
        return Status::NotFound("OCI layout " + dir_.string() + " holds no images");
      } else {
        return Status::InvalidArgument("OCI layout " + dir_.string() + " holds " +
                                       std::to_string(all.size()) +
                                       " images: name one with oci:DIR:TAG (tags: " + names + ")");
      }
    }
    if (!top_) {
      return Status(Code::kManifestUnknown, "no image tagged \"" + tag_ + "\" in OCI layout " +
                                                dir_.string() +
                                                (names.empty() ? "" : " (it has: " + names + ")"));
    }
    return Status::Ok();
  }

  Result<ManifestData> GetManifest() override { return GetManifestByDigest(*top_); }

  Result<ManifestData> GetManifestByDigest(const oci::Descriptor& d) override {
    auto text = ReadText(BlobPath(dir_, d.digest));
    if (!text.ok()) {
      return Status(Code::kManifestUnknown, "manifest " + d.digest.str() + " is missing from " +
                                                dir_.string());
    }
    ManifestData m;
    m.bytes = std::move(*text);
    m.digest = oci::Digest::Of(m.bytes, d.digest.algorithm());
    if (m.digest != d.digest) {
      return Status(Code::kDigestInvalid, BlobPath(dir_, d.digest).string() +
                                              " is corrupt: its content has digest " +
                                              m.digest.str());
    }
    m.media_type = ManifestMediaType(m.bytes, d.media_type);
    return m;
  }

  Result<LocalBlob> FetchBlob(const oci::Descriptor& d, const ProgressFn& progress) override {
    fs::path p = BlobPath(dir_, d.digest);
    std::error_code ec;
    uint64_t size = fs::file_size(p, ec);
    if (ec) {
      return Status(Code::kBlobUnknown, "blob " + d.digest.str() + " is missing from " +
                                            dir_.string());
    }
    if (d.size > 0 && size != static_cast<uint64_t>(d.size)) {
      return Status(Code::kSizeInvalid, p.string() + " has " + std::to_string(size) +
                                            " bytes, the manifest says " + std::to_string(d.size));
    }
    if (progress) progress(size);
    return LocalBlob{p, 0, size};
  }

  Result<std::string> ReadBlob(const oci::Descriptor& d) override {
    BERTH_ASSIGN_OR_RETURN(LocalBlob b, FetchBlob(d, nullptr));
    BERTH_ASSIGN_OR_RETURN(std::string s, ReadAll(b));
    if (oci::Digest::Of(s, d.digest.algorithm()) != d.digest) {
      return Status(Code::kDigestInvalid, b.path.string() + " is corrupt");
    }
    return s;
  }

 private:
  fs::path dir_;
  std::string tag_;
  std::optional<oci::Descriptor> top_;
};

class OciLayoutDestination final : public ImageDestination {
 public:
  OciLayoutDestination(fs::path dir, std::string tag) : dir_(std::move(dir)), tag_(std::move(tag)) {}

  std::string Describe() const override {
    return "oci:" + dir_.string() + (tag_.empty() ? "" : ":" + tag_);
  }

  Status Open() {
    std::error_code ec;
    fs::create_directories(dir_ / "blobs", ec);
    if (ec) return Status::IoError("cannot create " + dir_.string() + ": " + ec.message());
    auto text = ReadText(dir_ / "index.json");
    if (text.ok()) {
      BERTH_ASSIGN_OR_RETURN(json::value v, ParseJson(*text, (dir_ / "index.json").string()));
      if (!v.is_object()) {
        return Status::InvalidArgument((dir_ / "index.json").string() + ": not a JSON object");
      }
      index_ = std::move(v.as_object());
    } else {
      index_["schemaVersion"] = 2;
      index_["mediaType"] = oci::kOciIndex;
      index_["manifests"] = json::array{};
    }
    if (!index_["manifests"].is_array()) index_["manifests"] = json::array{};
    return Status::Ok();
  }

  Result<bool> HasBlob(const oci::Descriptor& d) override {
    std::error_code ec;
    uint64_t size = fs::file_size(BlobPath(dir_, d.digest), ec);
    return !ec && (d.size <= 0 || size == static_cast<uint64_t>(d.size));
  }

  Status PutBlob(const oci::Descriptor& d, const LocalBlob& blob,
                 const ProgressFn& progress) override {
    fs::path p = BlobPath(dir_, d.digest);
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    BERTH_RETURN_IF_ERROR(CopyToFile(blob, p));
    if (progress) progress(blob.size);
    return Status::Ok();
  }

  Status PutManifest(const ManifestData& m, bool top_level) override {
    fs::path p = BlobPath(dir_, m.digest);
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    BERTH_RETURN_IF_ERROR(WriteTextAtomic(p, m.bytes));
    if (!top_level) return Status::Ok();
    json::object entry;
    entry["mediaType"] = m.media_type;
    entry["digest"] = m.digest.str();
    entry["size"] = m.bytes.size();
    if (!tag_.empty()) entry["annotations"] = json::object{{std::string(kRefName), tag_}};
    std::lock_guard lock(mu_);
    json::array& ms = index_["manifests"].as_array();
    json::array kept;
    for (auto& e : ms) {
      if (!e.is_object()) continue;
      const json::object* ann = JsonObject(e.as_object(), "annotations");
      std::string name = ann ? JsonString(*ann, kRefName) : "";
      // Replace the entry of the same tag (or the same untagged digest).
      if (!tag_.empty() && name == tag_) continue;
      if (tag_.empty() && name.empty() && JsonString(e.as_object(), "digest") == m.digest.str()) {
        continue;
      }
      kept.push_back(e);
    }
    kept.push_back(std::move(entry));
    ms = std::move(kept);
    return Status::Ok();
  }

  Status Commit() override {
    BERTH_RETURN_IF_ERROR(
        WriteTextAtomic(dir_ / "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
    std::lock_guard lock(mu_);
    return WriteTextAtomic(dir_ / "index.json", GoJson(index_));
  }

 private:
  fs::path dir_;
  std::string tag_;
  std::mutex mu_;
  json::object index_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<ImageSource>> OpenOciLayoutSource(const ImageLocation& loc,
                                                         ClientContext&) {
  auto src = std::make_unique<OciLayoutSource>(loc.path, loc.tag);
  BERTH_RETURN_IF_ERROR(src->Open());
  return std::unique_ptr<ImageSource>(std::move(src));
}

Result<std::unique_ptr<ImageDestination>> OpenOciLayoutDestination(const ImageLocation& loc,
                                                                   ClientContext&) {
  auto dst = std::make_unique<OciLayoutDestination>(loc.path, loc.tag);
  BERTH_RETURN_IF_ERROR(dst->Open());
  return std::unique_ptr<ImageDestination>(std::move(dst));
}

}  // namespace berth::client
