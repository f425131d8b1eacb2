#include "http/blocking.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

namespace berth::http {
namespace {

namespace asio = boost::asio;

TEST(BlockingPoolTest, RunsOffTheCallerThreadAndResumesOnIt) {
  BlockingPool pool(2);
  asio::io_context io;
  std::thread::id caller, worker, resumed;
  std::string result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        caller = std::this_thread::get_id();
        result = co_await pool.Run([&] {
          worker = std::this_thread::get_id();
          return std::string("done");
        });
        resumed = std::this_thread::get_id();
      },
      asio::detached);
  io.run();  // returns only once the coroutine has finished: the task kept io busy
  EXPECT_EQ(result, "done");
  EXPECT_NE(worker, caller);
  EXPECT_EQ(resumed, caller);
}

TEST(BlockingPoolTest, MoveOnlyResultsVoidFunctionsAndExceptions) {
  BlockingPool pool(1);
  asio::io_context io;
  int side_effect = 0;
  std::string error;
  std::unique_ptr<int> owned;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        owned = co_await pool.Run([] { return std::make_unique<int>(7); });
        co_await pool.Run([&] { side_effect = 1; });
        try {
          co_await pool.Run([]() -> int { throw std::runtime_error("disk on fire"); });
        } catch (const std::runtime_error& e) {
          error = e.what();
        }
      },
      asio::detached);
  io.run();
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(*owned, 7);
  EXPECT_EQ(side_effect, 1);
  EXPECT_EQ(error, "disk on fire");
}

// One caller at a time: every task runs on the same, most recently idle worker
// (warm stack and caches) instead of rotating through the pool.
TEST(BlockingPoolTest, SequentialTasksReuseTheWarmWorker) {
  BlockingPool pool(8);
  asio::io_context io;
  std::set<std::thread::id> used;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 100; ++i) {
          used.insert(co_await pool.Run([] { return std::this_thread::get_id(); }));
        }
      },
      asio::detached);
  io.run();
  EXPECT_EQ(used.size(), 1u);
}

// Many coroutines on two io_contexts against few workers: every task runs exactly
// once and every caller resumes (a lost wake-up would hang here), tasks overlap up to
// the number of workers, and never more.
TEST(BlockingPoolTest, ManyCallersFewWorkersNoLostWakeups) {
  constexpr int kWorkers = 3;
  constexpr int kCallers = 64;
  constexpr int kRounds = 200;
  BlockingPool pool(kWorkers);
  asio::io_context io1, io2;
  std::atomic<int> running{0}, peak{0}, ran{0};
  std::atomic<int> finished{0};
  for (int c = 0; c < kCallers; ++c) {
    asio::co_spawn(
        c % 2 ? io1 : io2,
        [&, c]() -> asio::awaitable<void> {
          for (int r = 0; r < kRounds; ++r) {
            int got = co_await pool.Run([&, r] {
              int now = ++running;
              int p = peak.load();
              while (now > p && !peak.compare_exchange_weak(p, now)) {
              }
              if (r % 50 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
              --running;
              ++ran;
              return r;
            });
            EXPECT_EQ(got, r) << "caller " << c;
          }
          ++finished;
        },
        asio::detached);
  }
  std::thread t([&] { io1.run(); });
  io2.run();
  t.join();
  EXPECT_EQ(finished.load(), kCallers);
  EXPECT_EQ(ran.load(), kCallers * kRounds);
  EXPECT_LE(peak.load(), kWorkers);
  EXPECT_GE(peak.load(), 2);  // the sleeps overlap: more than one worker was used
}

TEST(BlockingPoolTest, StopRunsWhatIsQueuedThenJoins) {
  auto pool = std::make_unique<BlockingPool>(1);
  asio::io_context io;
  std::atomic<int> ran{0};
  for (int i = 0; i < 20; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await pool->Run([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            return ++ran;
          });
        },
        asio::detached);
  }
  // Start the coroutines (each submits its task and suspends), then stop the pool
  // while most tasks are still queued behind the one worker.
  io.poll();
  pool->Stop();
  EXPECT_EQ(ran.load(), 20);
  io.run();  // deliver the results
  pool.reset();
}

// A stalled object store ties up only the blob lane: every blob thread waits here
// until blocking work has run, which it could not were it queued behind them.
TEST(BlockingPoolTest, BlockingWorkRunsWhileEveryBlobThreadIsStalled) {
  constexpr int kBlobThreads = 3;
  BlockingPool pool(1, 0, kBlobThreads);
  asio::io_context io;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> released_in_time{0};
  std::atomic<int> stalled{0};
  for (int i = 0; i < kBlobThreads; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          bool ok = co_await pool.RunBlob([&] {
            ++stalled;
            return released.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
          });
          if (ok) ++released_in_time;
        },
        asio::detached);
  }
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        while (stalled.load() < kBlobThreads) {
          co_await pool.Run([] { std::this_thread::sleep_for(std::chrono::milliseconds(1)); });
        }
        co_await pool.Run([] { return 1; });  // not queued behind the stalled blob work
        release.set_value();
      },
      asio::detached);
  io.run();
  EXPECT_EQ(released_in_time.load(), kBlobThreads);
}

TEST(BlockingPoolTest, ReadsRunWhileEveryBlockingThreadIsBusy) {
  BlockingPool pool(1, 1);
  asio::io_context io;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool released_in_time = false;
  std::thread::id read_thread;
  // The only blocking thread waits for the read to run: were reads queued behind
  // blocking work, it would wait in vain until the timeout.
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        released_in_time = co_await pool.Run([&] {
          return released.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
        });
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        read_thread = co_await pool.RunRead([] { return std::this_thread::get_id(); });
        release.set_value();
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(released_in_time);
  EXPECT_NE(read_thread, std::this_thread::get_id());
}

TEST(BlockingPoolTest, WithoutReadThreadsReadsShareTheBlockingLane) {
  BlockingPool pool(2);
  asio::io_context io;
  int got = 0;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { got = co_await pool.RunRead([] { return 7; }); },
      asio::detached);
  io.run();
  EXPECT_EQ(got, 7);
}

}  // namespace
}  // namespace berth::http
