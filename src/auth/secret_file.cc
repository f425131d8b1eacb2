#include "auth/secret_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "auth/crypto.h"

namespace berth::auth {
namespace {

namespace fs = std::filesystem;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write " + what, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status SyncDirectory(const fs::path& dir) {
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) return Status::FromErrno("open directory " + dir.string(), errno);
  if (::fsync(dfd.get()) != 0) return Status::FromErrno("fsync directory " + dir.string(), errno);
  return Status::Ok();
}

}  // namespace

Result<std::string> ReadSmallFile(const fs::path& path, size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound(path.string() + " does not exist");
    return Status::FromErrno("open " + path.string(), errno);
  }
  std::string out;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read " + path.string(), errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return Status(Code::kTooLarge,
                    path.string() + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status WriteFileAtomically(const fs::path& path, std::string_view contents, mode_t mode) {
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create directory " + dir.string() + ": " + ec.message());

  fs::path tmp = path;
  tmp += ".tmp-" + HexEncode(RandomBytes(6));
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.get() < 0) return Status::FromErrno("create " + tmp.string(), errno);
  auto fail = [&](Status st) {
    ::unlink(tmp.c_str());
    return st;
  };
  // The umask may have narrowed the mode at creation; make it exact.
  if (::fchmod(fd.get(), mode) != 0) return fail(Status::FromErrno("chmod " + tmp.string(), errno));
  if (Status st = WriteAll(fd.get(), contents, tmp.string()); !st.ok()) return fail(st);
  if (::fsync(fd.get()) != 0) return fail(Status::FromErrno("fsync " + tmp.string(), errno));
  if (::close(fd.release()) != 0) return fail(Status::FromErrno("close " + tmp.string(), errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(Status::FromErrno("rename " + tmp.string() + " to " + path.string(), errno));
  }
  return SyncDirectory(dir);
}

Status RenameDurably(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Status::FromErrno("rename " + from.string() + " to " + to.string(), errno);
  }
  fs::path dir = to.parent_path();
  return SyncDirectory(dir.empty() ? fs::path(".") : dir);
}

Result<std::optional<FileStamp>> StatFile(const fs::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<FileStamp>();
    return Status::FromErrno("stat " + path.string(), errno);
  }
  FileStamp stamp;
  stamp.inode = static_cast<uint64_t>(st.st_ino);
  stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  stamp.size = static_cast<int64_t>(st.st_size);
  return std::optional<FileStamp>(stamp);
}

Result<FileLock> FileLock::Acquire(const fs::path& path) {
  std::error_code ec;
  if (!path.parent_path().empty()) fs::create_directories(path.parent_path(), ec);
  if (ec) {
    return Status::IoError("cannot create directory " + path.parent_path().string() + ": " +
                           ec.message());
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("open lock file " + path.string(), errno);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    return Status::FromErrno("lock " + path.string(), err);
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileLock::~FileLock() {
  // Closing the last descriptor of the open file description releases the flock.
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace berth::auth
