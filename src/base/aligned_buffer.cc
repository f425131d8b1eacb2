#include "base/aligned_buffer.h"

#include <sys/mman.h>

#include <cstdint>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace berth {
namespace {

constexpr size_t kHugePage = 2 << 20;

size_t PageRound(size_t size) { return (size + kIoAlign - 1) / kIoAlign * kIoAlign; }

// Straight from mmap, not malloc: a freed buffer goes back to the kernel at once.
// (malloc would keep 1 MiB buffers in its heap after the first free raised its mmap
// threshold, and the server's RSS would stay at the peak of the last burst.)
char* Allocate(size_t size) {
  size_t len = PageRound(size);
  size_t align = size == kIoPair ? kHugePage : kIoAlign;
  size_t map_len = len + (align > kIoAlign ? align : 0);
  void* m = ::mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  auto base = reinterpret_cast<uintptr_t>(m);
  uintptr_t start = (base + align - 1) / align * align;
  // Trim the unaligned head and the tail.
  if (start > base) ::munmap(m, start - base);
  if (uintptr_t end = base + map_len; end > start + len) {
    ::munmap(reinterpret_cast<void*>(start + len), end - (start + len));
  }
  auto* p = reinterpret_cast<char*>(start);
  // Before the first touch, so that the fault maps one huge page (THP "madvise" mode,
  // Debian's default); harmless where THP is off.
  if (align == kHugePage) (void)::madvise(p, len, MADV_HUGEPAGE);
  return p;
}

void Free(char* p, size_t size) { ::munmap(p, PageRound(size)); }

struct FreeList {
  std::mutex mu;
  std::vector<char*> idle;  // guarded by mu
};

FreeList& Pairs() {
  static FreeList* list = new FreeList();  // never destroyed: buffers outlive statics
  return *list;
}

}  // namespace

IoBuffer::IoBuffer(size_t size) : size_(size) {
  if (size == kIoPair) {
    FreeList& fl = Pairs();
    std::lock_guard lock(fl.mu);
    if (!fl.idle.empty()) {
      data_ = fl.idle.back();
      fl.idle.pop_back();
      return;
    }
  }
  data_ = Allocate(size);
}

IoBuffer::~IoBuffer() { Release(); }

IoBuffer::IoBuffer(IoBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

IoBuffer& IoBuffer::operator=(IoBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void IoBuffer::Release() {
  if (data_ == nullptr) return;
  char* p = std::exchange(data_, nullptr);
  if (size_ == kIoPair) {
    FreeList& fl = Pairs();
    std::lock_guard lock(fl.mu);
    if (fl.idle.size() < kMaxIdlePairs) {
      fl.idle.push_back(p);
      return;
    }
  }
  Free(p, size_);
}

void IoBuffer::ReleaseIdle() {
  std::vector<char*> idle;
  {
    FreeList& fl = Pairs();
    std::lock_guard lock(fl.mu);
    idle.swap(fl.idle);
  }
  for (char* p : idle) Free(p, kIoPair);
}

size_t IoBuffer::IdleCount() {
  FreeList& fl = Pairs();
  std::lock_guard lock(fl.mu);
  return fl.idle.size();
}

}  // namespace berth
