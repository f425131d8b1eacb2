// Helpers for the small private files auth/ keeps in the data directory
// (identities.json, token.key, credentials): read with a size cap, replace
// atomically with a given mode, detect changes made by another process, and
// serialize read-modify-write cycles across processes.
//
// Stateless functions: thread-safe. FileLock is not shareable between threads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace berth::auth {

// Reads a whole file. NotFound when it does not exist; kTooLarge above `max_bytes`.
Result<std::string> ReadSmallFile(const std::filesystem::path& path, size_t max_bytes = 4 << 20);

// Replaces `path` with `contents` so that readers see either the old or the new file,
// never a partial one, and the new content survives a crash once this returns:
// write a temporary file in the same directory with `mode`, fsync it, rename(2) it
// over `path`, fsync the directory. Creates the parent directory if needed.
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents,
                           mode_t mode = 0600);

// rename(2) `from` over `to` (same directory), then fsync the directory so that the
// rename survives a crash once this returns.
Status RenameDurably(const std::filesystem::path& from, const std::filesystem::path& to);

// Identity of one version of a file: changes when the file is replaced (new inode)
// or rewritten (mtime, size).
struct FileStamp {
  uint64_t inode = 0;
  int64_t mtime_ns = 0;
  int64_t size = 0;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};
// nullopt when the file does not exist.
Result<std::optional<FileStamp>> StatFile(const std::filesystem::path& path);

// An exclusive flock(2) on `path` (created with mode 0600 if absent), released on
// destruction. Serializes read-modify-write cycles between `berth admin` commands and
// the server, and between threads (each lock is its own open file description).
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::filesystem::path& path);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace berth::auth
