#include "client/archive_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace berth::client {
namespace {

namespace fs = std::filesystem;

constexpr size_t kBuf = 1 << 20;

// Sequential reader over a file range.
class RangeReader {
 public:
  explicit RangeReader(const LocalBlob& blob) : blob_(blob) {}
  ~RangeReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Open() {
    fd_ = ::open(blob_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Status::FromErrno("cannot open " + blob_.path.string(), errno);
    return Status::Ok();
  }
  // Reads up to n bytes; 0 at the end of the range.
  Result<size_t> Read(char* buf, size_t n) {
    uint64_t left = blob_.size - pos_;
    n = static_cast<size_t>(std::min<uint64_t>(n, left));
    if (n == 0) return static_cast<size_t>(0);
    ssize_t r;
    do {
      r = ::pread(fd_, buf, n, static_cast<off_t>(blob_.offset + pos_));
    } while (r < 0 && errno == EINTR);
    if (r < 0) return Status::FromErrno("cannot read " + blob_.path.string(), errno);
    if (r == 0) return Status::IoError(blob_.path.string() + ": file is shorter than expected");
    pos_ += static_cast<uint64_t>(r);
    return static_cast<size_t>(r);
  }

 private:
  LocalBlob blob_;
  int fd_ = -1;
  uint64_t pos_ = 0;
};

Status WriteFd(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("cannot write " + path.string(), errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

fs::path TempBeside(const fs::path& out) {
  fs::path tmp = out;
  tmp += ".partial." + std::to_string(getpid()) + "." +
         std::to_string(reinterpret_cast<uintptr_t>(&out) & 0xffffff);
  return tmp;
}

uint64_t ParseOctal(const char* p, size_t n) {
  // GNU base-256 for large sizes.
  if (n > 0 && (static_cast<unsigned char>(p[0]) & 0x80)) {
    uint64_t v = static_cast<unsigned char>(p[0]) & 0x7f;
    for (size_t i = 1; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) v = v * 8 + static_cast<uint64_t>(p[i] - '0');
  return v;
}

std::string CString(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

std::string NormalizeMember(std::string name) {
  while (name.starts_with("./")) name.erase(0, 2);
  while (name.starts_with("/")) name.erase(0, 1);
  return name;
}

}  // namespace

Result<std::unique_ptr<GzipFileWriter>> GzipFileWriter::Create(const fs::path& path) {
  std::unique_ptr<GzipFileWriter> w(new GzipFileWriter());
  w->fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return Status::FromErrno("cannot create " + path.string(), errno);
  w->a_ = archive_write_new();
  archive_write_add_filter_gzip(w->a_);
  archive_write_set_format_raw(w->a_);
  // No mtime in the gzip header: the same input must give the same bytes.
  archive_write_set_options(w->a_, "gzip:!timestamp");
  // Unblocked output: no zero padding after the gzip stream.
  archive_write_set_bytes_per_block(w->a_, 0);
  if (archive_write_open(w->a_, w.get(), nullptr, &GzipFileWriter::OnWrite, nullptr) !=
      ARCHIVE_OK) {
    return Status::Internal(std::string("gzip: ") + archive_error_string(w->a_));
  }
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "data");
  int rc = archive_write_header(w->a_, e);
  archive_entry_free(e);
  if (rc != ARCHIVE_OK) return Status::Internal(std::string("gzip: ") + archive_error_string(w->a_));
  return w;
}

GzipFileWriter::~GzipFileWriter() {
  if (a_ != nullptr) archive_write_free(a_);
  if (fd_ >= 0) ::close(fd_);
}

long GzipFileWriter::OnWrite(::archive*, void* self, const void* buf, size_t n) {
  auto* w = static_cast<GzipFileWriter*>(self);
  std::string_view data(static_cast<const char*>(buf), n);
  Status st = WriteFd(w->fd_, data, "gzip output");
  if (!st.ok()) {
    w->write_error_ = st;
    return -1;
  }
  w->compressed_.Update(data);
  return static_cast<long>(n);
}

Status GzipFileWriter::Write(std::string_view data) {
  uncompressed_.Update(data);
  while (!data.empty()) {
    la_ssize_t n = archive_write_data(a_, data.data(), data.size());
    if (n < 0) {
      if (!write_error_.ok()) return write_error_;
      return Status::Internal(std::string("gzip: ") + archive_error_string(a_));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status GzipFileWriter::Finish() {
  if (finished_) return Status::Ok();
  finished_ = true;
  int rc = archive_write_close(a_);
  if (!write_error_.ok()) return write_error_;
  if (rc != ARCHIVE_OK) return Status::Internal(std::string("gzip: ") + archive_error_string(a_));
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Status::FromErrno("close gzip output", errno);
  }
  fd_ = -1;
  return Status::Ok();
}

Result<bool> IsGzip(const LocalBlob& blob) {
  if (blob.size < 2) return false;
  RangeReader r(blob);
  BERTH_RETURN_IF_ERROR(r.Open());
  char magic[2];
  BERTH_ASSIGN_OR_RETURN(size_t n, r.Read(magic, 2));
  return n == 2 && static_cast<unsigned char>(magic[0]) == 0x1f &&
         static_cast<unsigned char>(magic[1]) == 0x8b;
}

Result<ConvertedBlob> GzipToFile(const LocalBlob& blob, const fs::path& out) {
  fs::path tmp = TempBeside(out);
  BERTH_ASSIGN_OR_RETURN(auto w, GzipFileWriter::Create(tmp));
  RangeReader r(blob);
  BERTH_RETURN_IF_ERROR(r.Open());
  std::vector<char> buf(kBuf);
  for (;;) {
    auto n = r.Read(buf.data(), buf.size());
    if (!n.ok()) {
      fs::remove(tmp);
      return n.status();
    }
    if (*n == 0) break;
    if (Status st = w->Write(std::string_view(buf.data(), *n)); !st.ok()) {
      fs::remove(tmp);
      return st;
    }
  }
  BERTH_RETURN_IF_ERROR(w->Finish());
  std::error_code ec;
  fs::rename(tmp, out, ec);
  if (ec) return Status::IoError("cannot rename to " + out.string() + ": " + ec.message());
  return ConvertedBlob{w->compressed_digest(), w->compressed_size(), w->uncompressed_digest()};
}

Result<ConvertedBlob> GunzipToFile(const LocalBlob& blob, const fs::path& out) {
  struct Ctx {
    explicit Ctx(const LocalBlob& b) : reader(b) {}
    RangeReader reader;
    std::vector<char> buf = std::vector<char>(kBuf);
    Status error;
  } ctx(blob);
  BERTH_RETURN_IF_ERROR(ctx.reader.Open());
  oci::Hasher in_hash;
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_raw(a);
  auto read_cb = [](archive*, void* user, const void** buff) -> la_ssize_t {
    auto* c = static_cast<Ctx*>(user);
    auto n = c->reader.Read(c->buf.data(), c->buf.size());
    if (!n.ok()) {
      c->error = n.status();
      return -1;
    }
    *buff = c->buf.data();
    return static_cast<la_ssize_t>(*n);
  };
  if (archive_read_open(a, &ctx, nullptr, read_cb, nullptr) != ARCHIVE_OK) {
    std::string msg = archive_error_string(a) ? archive_error_string(a) : "open failed";
    archive_read_free(a);
    return Status(Code::kCorruption, "gunzip " + blob.path.string() + ": " + msg);
  }
  archive_entry* e = nullptr;
  if (archive_read_next_header(a, &e) != ARCHIVE_OK) {
    std::string msg = archive_error_string(a) ? archive_error_string(a) : "no data";
    archive_read_free(a);
    return Status(Code::kCorruption, "gunzip " + blob.path.string() + ": " + msg);
  }
  fs::path tmp = TempBeside(out);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    archive_read_free(a);
    return Status::FromErrno("cannot create " + tmp.string(), errno);
  }
  std::vector<char> obuf(kBuf);
  Status st;
  for (;;) {
    la_ssize_t n = archive_read_data(a, obuf.data(), obuf.size());
    if (n < 0) {
      st = !ctx.error.ok() ? ctx.error
                           : Status(Code::kCorruption, "gunzip " + blob.path.string() + ": " +
                                                           archive_error_string(a));
      break;
    }
    if (n == 0) break;
    std::string_view chunk(obuf.data(), static_cast<size_t>(n));
    in_hash.Update(chunk);
    st = WriteFd(fd, chunk, tmp);
    if (!st.ok()) break;
  }
  archive_read_free(a);
  if (::close(fd) != 0 && st.ok()) st = Status::FromErrno("close " + tmp.string(), errno);
  if (!st.ok()) {
    fs::remove(tmp);
    return st;
  }
  std::error_code ec;
  fs::rename(tmp, out, ec);
  if (ec) return Status::IoError("cannot rename to " + out.string() + ": " + ec.message());
  ConvertedBlob res;
  res.digest = in_hash.Peek();
  res.size = in_hash.size();
  return res;
}

Result<oci::Digest> DigestOf(const LocalBlob& blob) {
  RangeReader r(blob);
  BERTH_RETURN_IF_ERROR(r.Open());
  oci::Hasher h;
  std::vector<char> buf(kBuf);
  for (;;) {
    BERTH_ASSIGN_OR_RETURN(size_t n, r.Read(buf.data(), buf.size()));
    if (n == 0) break;
    h.Update(std::string_view(buf.data(), n));
  }
  return h.Peek();
}

Result<std::string> ReadAll(const LocalBlob& blob, uint64_t max_bytes) {
  if (blob.size > max_bytes) {
    return Status(Code::kTooLarge, blob.path.string() + ": too large to read into memory");
  }
  RangeReader r(blob);
  BERTH_RETURN_IF_ERROR(r.Open());
  std::string out(blob.size, '\0');
  size_t pos = 0;
  while (pos < out.size()) {
    BERTH_ASSIGN_OR_RETURN(size_t n, r.Read(out.data() + pos, out.size() - pos));
    if (n == 0) break;
    pos += n;
  }
  out.resize(pos);
  return out;
}

Status CopyToFile(const LocalBlob& blob, const fs::path& out) {
  fs::path tmp = TempBeside(out);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("cannot create " + tmp.string(), errno);
  RangeReader r(blob);
  Status st = r.Open();
  std::vector<char> buf(kBuf);
  while (st.ok()) {
    auto n = r.Read(buf.data(), buf.size());
    if (!n.ok()) {
      st = n.status();
      break;
    }
    if (*n == 0) break;
    st = WriteFd(fd, std::string_view(buf.data(), *n), tmp);
  }
  if (::close(fd) != 0 && st.ok()) st = Status::FromErrno("close " + tmp.string(), errno);
  if (!st.ok()) {
    fs::remove(tmp);
    return st;
  }
  std::error_code ec;
  fs::rename(tmp, out, ec);
  if (ec) return Status::IoError("cannot rename to " + out.string() + ": " + ec.message());
  return Status::Ok();
}

Result<std::map<std::string, LocalBlob>> IndexTar(const fs::path& tar) {
  int fd = ::open(tar.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("cannot open " + tar.string(), errno);
  std::map<std::string, LocalBlob> out;
  uint64_t pos = 0;
  std::string long_name;
  std::string pax_path;
  std::optional<uint64_t> pax_size;
  char h[512];
  Status st;
  for (;;) {
    ssize_t n = ::pread(fd, h, sizeof h, static_cast<off_t>(pos));
    if (n == 0) break;
    if (n != 512) {
      st = Status(Code::kCorruption, tar.string() + ": truncated tar header");
      break;
    }
    if (pos == 0 && static_cast<unsigned char>(h[0]) == 0x1f &&
        static_cast<unsigned char>(h[1]) == 0x8b) {
      st = Status::InvalidArgument(tar.string() +
                                   " is gzip-compressed: decompress it first (gunzip)");
      break;
    }
    bool zero = true;
    for (char c : h) {
      if (c != 0) {
        zero = false;
        break;
      }
    }
    if (zero) break;
    if (pos == 0 && std::memcmp(h + 257, "ustar", 5) != 0) {
      // Old v7 tars have no magic; accept when the checksum field looks numeric.
      if (!(h[148] == ' ' || (h[148] >= '0' && h[148] <= '7'))) {
        st = Status::InvalidArgument(tar.string() + " is not a tar archive");
        break;
      }
    }
    uint64_t size = ParseOctal(h + 124, 12);
    char type = h[156];
    uint64_t data = pos + 512;
    std::string name = CString(h, 100);
    if (std::memcmp(h + 257, "ustar", 5) == 0) {
      std::string prefix = CString(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    if (type == 'L' || type == 'x') {
      std::string body(size, '\0');
      if (::pread(fd, body.data(), size, static_cast<off_t>(data)) != static_cast<ssize_t>(size)) {
        st = Status(Code::kCorruption, tar.string() + ": truncated tar extension header");
        break;
      }
      if (type == 'L') {
        long_name = CString(body.data(), body.size());
      } else {
        // "<len> key=value\n" records.
        size_t i = 0;
        while (i < body.size()) {
          size_t space = body.find(' ', i);
          if (space == std::string::npos) break;
          size_t len = std::strtoull(body.c_str() + i, nullptr, 10);
          if (len == 0 || i + len > body.size()) break;
          std::string rec = body.substr(space + 1, i + len - space - 2);
          auto eq = rec.find('=');
          if (eq != std::string::npos) {
            std::string key = rec.substr(0, eq);
            if (key == "path") pax_path = rec.substr(eq + 1);
            if (key == "size") pax_size = std::strtoull(rec.c_str() + eq + 1, nullptr, 10);
          }
          i += len;
        }
      }
    } else if (type != 'g') {
      if (!long_name.empty()) name = long_name;
      if (!pax_path.empty()) name = pax_path;
      if (pax_size) size = *pax_size;
      if (type == '0' || type == '\0' || type == '7') {
        out[NormalizeMember(name)] = LocalBlob{tar, data, size};
      }
      long_name.clear();
      pax_path.clear();
      pax_size.reset();
    }
    pos = data + (size + 511) / 512 * 512;
  }
  ::close(fd);
  if (!st.ok()) return st;
  return out;
}

}  // namespace berth::client
