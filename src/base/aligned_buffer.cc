#include "base/aligned_buffer.h"

#include <sys/mman.h>

#include <mutex>
#include <utility>
#include <vector>

namespace berth {
namespace {

constexpr size_t kHugePage = 2 << 20;

size_t AlignmentFor(size_t size) { return size == kIoPair ? kHugePage : kIoAlign; }

char* Allocate(size_t size) {
  size_t align = AlignmentFor(size);
  auto* p = static_cast<char*>(::operator new[](size, std::align_val_t(align)));
  // Before the first touch, so that the fault maps one huge page (THP "madvise" mode,
  // Debian's default); harmless where THP is off.
  if (align == kHugePage) (void)::madvise(p, size, MADV_HUGEPAGE);
  return p;
}

void Free(char* p, size_t size) { ::operator delete[](p, std::align_val_t(AlignmentFor(size))); }

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

size_t IoBuffer::IdleCount() {
  FreeList& fl = Pairs();
  std::lock_guard lock(fl.mu);
  return fl.idle.size();
}

}  // namespace berth
