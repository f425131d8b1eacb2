#include "base/aligned_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace berth {
namespace {

TEST(IoBuffer, IsAlignedForDirectIo) {
  for (size_t size : {size_t{4096}, kIoBlock, kIoPair, size_t{3} << 20}) {
    IoBuffer b(size);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % kIoAlign, 0u);
    EXPECT_EQ(b.size(), size);
  }
  // A pair sits in one 2 MiB huge page.
  IoBuffer pair(kIoPair);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(pair.data()) % (2 << 20), 0u);
}

TEST(IoBuffer, PairsAreReusedUpToTheCap) {
  std::vector<IoBuffer> held;
  for (size_t i = 0; i < IoBuffer::kMaxIdlePairs + 2; ++i) held.emplace_back(kIoPair);
  EXPECT_EQ(IoBuffer::IdleCount(), 0u);
  char* first = held.front().data();
  held.clear();
  EXPECT_EQ(IoBuffer::IdleCount(), IoBuffer::kMaxIdlePairs);
  // Other sizes never enter the list.
  { IoBuffer odd(kIoBlock); }
  EXPECT_EQ(IoBuffer::IdleCount(), IoBuffer::kMaxIdlePairs);
  // A new pair comes from the list.
  IoBuffer again(kIoPair);
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(IoBuffer::IdleCount(), IoBuffer::kMaxIdlePairs - 1);
}

TEST(IoBuffer, ReleaseIdleEmptiesTheFreeList) {
  { IoBuffer pair(kIoPair); }
  EXPECT_EQ(IoBuffer::IdleCount(), IoBuffer::kMaxIdlePairs);
  IoBuffer::ReleaseIdle();
  EXPECT_EQ(IoBuffer::IdleCount(), 0u);
}

TEST(IoBuffer, MoveHandsOverTheBuffer) {
  IoBuffer a(kIoPair);
  char* p = a.data();
  IoBuffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_FALSE(static_cast<bool>(a));  // NOLINT(bugprone-use-after-move)
  IoBuffer c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.size(), kIoPair);
}

}  // namespace
}  // namespace berth
