// Buffers aligned for O_DIRECT I/O, and a small free list of upload block pairs.
#pragma once

#include <cstddef>
#include <memory>
#include <new>

namespace berth {

// Page alignment: what O_DIRECT needs for buffers, file offsets and lengths on every
// common block device.
inline constexpr size_t kIoAlign = 4096;

// The block size of streamed uploads, and the pair of them an upload streams through
// (one block is received while the other is written).
inline constexpr size_t kIoBlock = 1 << 20;
inline constexpr size_t kIoPair = 2 * kIoBlock;

// An aligned buffer of `size` bytes. A kIoPair-sized one is 2 MiB-aligned and advised
// as a transparent huge page, so that one page backs both blocks of an upload:
// pinning it for an O_DIRECT write is one page instead of 256, and copying and hashing
// through it miss the TLB less. Those go back to a process-wide free list when
// destroyed (up to kMaxIdlePairs): a fresh allocation is an mmap, page faults and a
// munmap, ~4% of the server's CPU when streaming uploads.
class IoBuffer {
 public:
  static constexpr size_t kMaxIdlePairs = 1;

  IoBuffer() = default;
  explicit IoBuffer(size_t size);
  ~IoBuffer();
  IoBuffer(IoBuffer&& other) noexcept;
  IoBuffer& operator=(IoBuffer&& other) noexcept;
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;

  char* data() const { return data_; }
  size_t size() const { return size_; }
  explicit operator bool() const { return data_ != nullptr; }

  // Pairs now idle in the free list (for tests).
  static size_t IdleCount();
  // Frees the idle pairs (the server calls it when it trims memory after a burst).
  static void ReleaseIdle();

 private:
  void Release();
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace berth
