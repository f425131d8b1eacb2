#include "client/manifest_list.h"

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "client/http.h"
#include "client/json_util.h"
#include "oci/media_types.h"

namespace berth::client {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

json::object PlatformJson(const oci::Platform& p) {
  json::object o;
  o["architecture"] = p.architecture;
  o["os"] = p.os;
  if (!p.os_version.empty()) o["os.version"] = p.os_version;
  if (!p.os_features.empty()) {
    json::array f;
    for (const auto& s : p.os_features) f.push_back(json::value(s));
    o["os.features"] = std::move(f);
  }
  if (!p.variant.empty()) o["variant"] = p.variant;
  return o;
}

}  // namespace

json::object EntryToJson(const ListEntry& e) {
  json::object o;
  o["Ref"] = e.ref;
  json::object d;
  d["mediaType"] = e.descriptor.media_type;
  d["digest"] = e.descriptor.digest.str();
  d["size"] = e.descriptor.size;
  if (e.descriptor.platform) d["platform"] = PlatformJson(*e.descriptor.platform);
  o["Descriptor"] = std::move(d);
  o["Raw"] = Base64Encode(e.raw);
  boost::system::error_code ec;
  json::value parsed = json::parse(e.raw, ec);
  if (!ec) {
    o[e.descriptor.media_type == oci::kOciManifest ? "OCIManifest" : "SchemaV2Manifest"] =
        std::move(parsed);
  }
  if (!e.format.empty()) o["BerthListFormat"] = e.format;
  if (e.copy_child) o["BerthCopyChild"] = true;
  return o;
}

Result<ListEntry> EntryFromJson(const json::object& o, std::string_view what) {
  ListEntry e;
  e.ref = JsonString(o, "Ref");
  e.format = JsonString(o, "BerthListFormat");
  if (auto it = o.find("BerthCopyChild"); it != o.end() && it->value().is_bool()) {
    e.copy_child = it->value().get_bool();
  }
  const json::object* d = JsonObject(o, "Descriptor");
  if (d == nullptr) return Status::InvalidArgument(std::string(what) + ": no Descriptor");
  e.descriptor.media_type = JsonString(*d, "mediaType");
  auto digest = oci::Digest::Parse(JsonString(*d, "digest"));
  if (!digest.ok()) {
    return Status::InvalidArgument(std::string(what) + ": " + digest.status().message());
  }
  e.descriptor.digest = *digest;
  e.descriptor.size = JsonInt(*d, "size");
  if (const json::object* p = JsonObject(*d, "platform")) {
    oci::Platform plat;
    plat.architecture = JsonString(*p, "architecture");
    plat.os = JsonString(*p, "os");
    plat.os_version = JsonString(*p, "os.version");
    plat.variant = JsonString(*p, "variant");
    if (const json::array* f = JsonArray(*p, "os.features")) {
      for (const auto& s : *f) {
        if (s.is_string()) plat.os_features.emplace_back(s.get_string());
      }
    }
    e.descriptor.platform = plat;
  }
  std::string raw = JsonString(o, "Raw");
  if (!raw.empty()) {
    auto decoded = Base64Decode(raw);
    if (!decoded.ok()) return Status::InvalidArgument(std::string(what) + ": Raw is not base64");
    e.raw = std::move(*decoded);
  }
  return e;
}

std::string BuildListJson(const std::vector<ListEntry>& entries, std::string_view format,
                          std::string* media_type) {
  std::string mt;
  if (format == "oci") {
    mt = std::string(oci::kOciIndex);
  } else if (format == "docker") {
    mt = std::string(oci::kDockerManifestList);
  } else {
    // distribution's manifestlist.FromDescriptors, which the docker CLI uses: the first
    // entry decides.
    mt = std::string(!entries.empty() && entries.front().descriptor.media_type == oci::kOciManifest
                         ? oci::kOciIndex
                         : oci::kDockerManifestList);
  }
  json::object list;
  list["schemaVersion"] = 2;
  list["mediaType"] = mt;
  json::array ms;
  for (const auto& e : entries) {
    json::object m;
    m["mediaType"] = e.descriptor.media_type;
    m["size"] = e.descriptor.size;
    m["digest"] = e.descriptor.digest.str();
    m["platform"] = PlatformJson(e.descriptor.platform.value_or(oci::Platform{}));
    ms.push_back(std::move(m));
  }
  list["manifests"] = std::move(ms);
  if (media_type != nullptr) *media_type = mt;
  return GoJson(list, "   ");
}

fs::path ManifestListStore::ListDir(const ImageName& list) const {
  return root_ / FileSafeName(list.String());
}

bool ManifestListStore::Exists(const ImageName& list) const {
  std::error_code ec;
  return fs::is_directory(ListDir(list), ec);
}

Result<std::vector<ListEntry>> ManifestListStore::Load(const ImageName& list) const {
  fs::path dir = ListDir(list);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status(Code::kNotFound, "No such manifest: " + list.String());
  }
  std::vector<fs::path> files;
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    if (de.is_regular_file()) files.push_back(de.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<ListEntry> out;
  for (const auto& f : files) {
    if (f.filename().string().starts_with(".")) continue;
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    BERTH_ASSIGN_OR_RETURN(json::value v, ParseJson(ss.str(), f.string()));
    if (!v.is_object()) return Status::InvalidArgument(f.string() + ": not a JSON object");
    BERTH_ASSIGN_OR_RETURN(ListEntry e, EntryFromJson(v.as_object(), f.string()));
    out.push_back(std::move(e));
  }
  return out;
}

Status ManifestListStore::Put(const ImageName& list, const ImageName& image, const ListEntry& e) {
  fs::path dir = ListDir(list);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir.string() + ": " + ec.message());
  fs::path file = dir / FileSafeName(image.String());
  fs::path tmp = dir / ("." + file.filename().string() + ".tmp" + std::to_string(getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << GoJson(EntryToJson(e));
    if (!out) return Status::IoError("cannot write " + tmp.string());
  }
  fs::rename(tmp, file, ec);
  if (ec) return Status::IoError("cannot write " + file.string() + ": " + ec.message());
  return Status::Ok();
}

Status ManifestListStore::Remove(const ImageName& list) {
  fs::path dir = ListDir(list);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status(Code::kNotFound, "No such manifest: " + list.String());
  }
  fs::remove_all(dir, ec);
  if (ec) return Status::IoError("cannot remove " + dir.string() + ": " + ec.message());
  return Status::Ok();
}

Result<fs::path> ManifestListStore::EntryFile(const ImageName& list, const ImageName& image) const {
  fs::path file = ListDir(list) / FileSafeName(image.String());
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    return Status(Code::kNotFound, "manifest for image " + image.String() +
                                       " does not exist in " + list.String());
  }
  return file;
}

}  // namespace berth::client
