#include "client/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>
#include <fstream>

#include "client/archive_util.h"
#include "client/json_util.h"
#include "oci/media_types.h"

namespace berth::client {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::string_view kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string Rfc3339(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.push_back(json::value(s));
  return a;
}

// Tar writer feeding a GzipFileWriter.
struct TarSink {
  GzipFileWriter* gz = nullptr;
  Status error;
};

la_ssize_t TarWrite(archive*, void* user, const void* buf, size_t n) {
  auto* s = static_cast<TarSink*>(user);
  Status st = s->gz->Write(std::string_view(static_cast<const char*>(buf), n));
  if (!st.ok()) {
    s->error = st;
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

Status AddEntries(archive* a, const fs::path& root, int64_t mtime) {
  std::vector<fs::path> paths;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return Status::InvalidArgument("cannot read " + root.string() + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Status::IoError("cannot read " + root.string() + ": " + ec.message());
    paths.push_back(it->path());
  }
  std::vector<std::pair<std::string, fs::path>> entries;
  for (const auto& p : paths) entries.emplace_back(p.lexically_relative(root).generic_string(), p);
  // Byte order of the relative path: independent of directory iteration order.
  std::sort(entries.begin(), entries.end());
  std::vector<char> buf(1 << 20);
  for (const auto& [rel, path] : entries) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return Status::FromErrno("cannot stat " + path.string(), errno);
    archive_entry* e = archive_entry_new();
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_mtime(e, mtime, 0);
    archive_entry_set_perm(e, st.st_mode & 07777);
    std::string target;
    if (S_ISDIR(st.st_mode)) {
      archive_entry_set_pathname(e, (rel + "/").c_str());
      archive_entry_set_filetype(e, AE_IFDIR);
      archive_entry_set_size(e, 0);
    } else if (S_ISREG(st.st_mode)) {
      archive_entry_set_pathname(e, rel.c_str());
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, st.st_size);
    } else if (S_ISLNK(st.st_mode)) {
      target = fs::read_symlink(path, ec).string();
      archive_entry_set_pathname(e, rel.c_str());
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, target.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_free(e);
      continue;  // sockets, fifos and devices are not packed
    }
    int rc = archive_write_header(a, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK) return Status::IoError(std::string("tar: ") + archive_error_string(a));
    if (!S_ISREG(st.st_mode)) continue;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("cannot read " + path.string(), errno);
    int64_t left = st.st_size;
    while (left > 0) {
      ssize_t n = ::read(fd, buf.data(), static_cast<size_t>(std::min<int64_t>(left, buf.size())));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        return Status::IoError("cannot read " + path.string() + " (did it change while packing?)");
      }
      if (archive_write_data(a, buf.data(), static_cast<size_t>(n)) < 0) {
        ::close(fd);
        return Status::IoError(std::string("tar: ") + archive_error_string(a));
      }
      left -= n;
    }
    ::close(fd);
  }
  return Status::Ok();
}

class PackedSource final : public ImageSource {
 public:
  explicit PackedSource(PackedImage img) : img_(std::move(img)) {}
  std::string Describe() const override { return "packed image"; }
  Result<ManifestData> GetManifest() override { return img_.manifest; }
  Result<ManifestData> GetManifestByDigest(const oci::Descriptor& d) override {
    if (d.digest == img_.manifest.digest) return img_.manifest;
    return Status(Code::kManifestUnknown, "no manifest " + d.digest.str());
  }
  Result<LocalBlob> FetchBlob(const oci::Descriptor& d, const ProgressFn& progress) override {
    if (d.digest == img_.config_digest) return LocalBlob{img_.config_path, 0, img_.config.size()};
    if (d.digest == img_.layer_digest) return LocalBlob{img_.layer_path, 0, img_.layer_size};
    return Status(Code::kBlobUnknown, "no blob " + d.digest.str());
  }
  Result<std::string> ReadBlob(const oci::Descriptor& d) override {
    if (d.digest == img_.config_digest) return img_.config;
    return Status(Code::kBlobUnknown, "no blob " + d.digest.str());
  }

 private:
  PackedImage img_;
};

}  // namespace

Result<PackedImage> PackDirectory(const PackOptions& o, const fs::path& work_dir) {
  std::error_code ec;
  if (!fs::is_directory(o.dir, ec)) {
    return Status::InvalidArgument("cannot pack " + o.dir.string() + ": not a directory");
  }
  for (const auto& kv : o.env) {
    if (kv.find('=') == std::string::npos || kv.front() == '=') {
      return Status::InvalidArgument("invalid --env \"" + kv + "\": expected KEY=VALUE");
    }
  }
  fs::create_directories(work_dir, ec);
  PackedImage img;
  img.layer_path = work_dir / ("layer-" + std::to_string(getpid()) + ".tar.gz");
  BERTH_ASSIGN_OR_RETURN(auto gz, GzipFileWriter::Create(img.layer_path));
  TarSink sink{gz.get(), {}};
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open(a, &sink, nullptr, &TarWrite, nullptr) != ARCHIVE_OK) {
    std::string msg = archive_error_string(a);
    archive_write_free(a);
    return Status::Internal("tar: " + msg);
  }
  Status st = AddEntries(a, o.dir, o.mtime);
  if (archive_write_close(a) != ARCHIVE_OK && st.ok()) {
    st = Status::IoError(std::string("tar: ") + archive_error_string(a));
  }
  archive_write_free(a);
  if (!sink.error.ok()) st = sink.error;
  if (st.ok()) st = gz->Finish();
  if (!st.ok()) {
    fs::remove(img.layer_path, ec);
    return st;
  }
  img.layer_digest = gz->compressed_digest();
  img.layer_size = gz->compressed_size();
  img.diff_id = gz->uncompressed_digest();

  const bool docker = o.format == "docker";
  json::object cfg;
  cfg["created"] = Rfc3339(o.mtime);
  cfg["architecture"] = o.platform.architecture;
  cfg["os"] = o.platform.os;
  if (!o.platform.variant.empty()) cfg["variant"] = o.platform.variant;
  json::object c;
  std::vector<std::string> env = o.env;
  bool has_path = std::any_of(env.begin(), env.end(),
                              [](const std::string& s) { return s.starts_with("PATH="); });
  if (!has_path) env.insert(env.begin(), std::string(kDefaultPath));
  if (!o.user.empty()) c["User"] = o.user;
  c["Env"] = Strings(env);
  if (!o.entrypoint.empty()) c["Entrypoint"] = Strings(o.entrypoint);
  if (!o.cmd.empty()) c["Cmd"] = Strings(o.cmd);
  if (!o.workdir.empty()) c["WorkingDir"] = o.workdir;
  if (!o.labels.empty()) {
    json::object l;
    for (const auto& [k, v] : o.labels) l[k] = v;
    c["Labels"] = std::move(l);
  }
  cfg["config"] = std::move(c);
  cfg["rootfs"] = json::object{{"type", "layers"}, {"diff_ids", json::array{json::value(img.diff_id.str())}}};
  cfg["history"] = json::array{json::object{{"created", Rfc3339(o.mtime)}, {"created_by", "berth pack"}}};
  img.config = GoJson(cfg);
  img.config_digest = oci::Digest::Of(img.config);
  img.config_path = work_dir / ("config-" + std::to_string(getpid()) + ".json");
  {
    std::ofstream out(img.config_path, std::ios::binary | std::ios::trunc);
    out << img.config;
    if (!out) return Status::IoError("cannot write " + img.config_path.string());
  }

  json::object m;
  m["schemaVersion"] = 2;
  m["mediaType"] = docker ? oci::kDockerManifest : oci::kOciManifest;
  json::object cd;
  cd["mediaType"] = docker ? oci::kDockerConfig : oci::kOciConfig;
  cd["digest"] = img.config_digest.str();
  cd["size"] = img.config.size();
  m["config"] = std::move(cd);
  json::object ld;
  ld["mediaType"] = docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
                           : "application/vnd.oci.image.layer.v1.tar+gzip";
  ld["digest"] = img.layer_digest.str();
  ld["size"] = img.layer_size;
  m["layers"] = json::array{std::move(ld)};
  img.manifest.bytes = GoJson(m, "  ");
  img.manifest.media_type = std::string(docker ? oci::kDockerManifest : oci::kOciManifest);
  img.manifest.digest = oci::Digest::Of(img.manifest.bytes);
  return img;
}

std::unique_ptr<ImageSource> NewPackedImageSource(PackedImage image) {
  return std::make_unique<PackedSource>(std::move(image));
}

}  // namespace berth::client
