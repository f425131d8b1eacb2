#include "base/aligned_buffer.h"

#include <mutex>
#include <utility>
#include <vector>

namespace berth {
namespace {

struct FreeList {
  std::mutex mu;
  std::vector<AlignedBuffer> idle;  // guarded by mu
};

FreeList& Blocks() {
  static FreeList* list = new FreeList();  // never destroyed: buffers outlive statics
  return *list;
}

}  // namespace

IoBuffer::IoBuffer(size_t size) : size_(size) {
  if (size == kIoBlock) {
    FreeList& fl = Blocks();
    std::lock_guard lock(fl.mu);
    if (!fl.idle.empty()) {
      buf_ = std::move(fl.idle.back());
      fl.idle.pop_back();
      return;
    }
  }
  buf_ = NewAlignedBuffer(size);
}

IoBuffer::~IoBuffer() { Release(); }

IoBuffer& IoBuffer::operator=(IoBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    buf_ = std::move(other.buf_);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void IoBuffer::Release() {
  if (!buf_ || size_ != kIoBlock) {
    buf_.reset();
    return;
  }
  FreeList& fl = Blocks();
  std::lock_guard lock(fl.mu);
  if (fl.idle.size() < kMaxIdleIoBlocks) fl.idle.push_back(std::move(buf_));
  buf_.reset();
}

size_t IoBuffer::IdleCount() {
  FreeList& fl = Blocks();
  std::lock_guard lock(fl.mu);
  return fl.idle.size();
}

}  // namespace berth
