#include "base/aligned_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace berth {
namespace {

TEST(IoBuffer, IsAlignedForDirectIo) {
  for (size_t size : {size_t{4096}, kIoBlock, size_t{3} << 20}) {
    IoBuffer b(size);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % kIoAlign, 0u);
    EXPECT_EQ(b.size(), size);
  }
}

TEST(IoBuffer, BlocksAreReusedUpToTheCap) {
  std::vector<IoBuffer> held;
  for (size_t i = 0; i < IoBuffer::kMaxIdleIoBlocks + 4; ++i) held.emplace_back(kIoBlock);
  EXPECT_EQ(IoBuffer::IdleCount(), 0u);
  char* first = held.front().data();
  held.clear();
  EXPECT_EQ(IoBuffer::IdleCount(), IoBuffer::kMaxIdleIoBlocks);
  // Other sizes never enter the list.
  { IoBuffer odd(8192); }
  EXPECT_EQ(IoBuffer::IdleCount(), IoBuffer::kMaxIdleIoBlocks);
  // A new block comes from the list.
  std::vector<IoBuffer> again;
  bool reused = false;
  for (size_t i = 0; i < IoBuffer::kMaxIdleIoBlocks; ++i) {
    again.emplace_back(kIoBlock);
    reused |= again.back().data() == first;
  }
  EXPECT_TRUE(reused);
  EXPECT_EQ(IoBuffer::IdleCount(), 0u);
}

TEST(IoBuffer, MoveHandsOverTheBuffer) {
  IoBuffer a(kIoBlock);
  char* p = a.data();
  IoBuffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_FALSE(static_cast<bool>(a));  // NOLINT(bugprone-use-after-move)
  IoBuffer c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
}

}  // namespace
}  // namespace berth
