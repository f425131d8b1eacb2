// BlockingPool: runs blocking work (SQLite, fsync, file opens) off the I/O threads.
// `co_await pool.Run([&] { return store.Get(...); })` suspends the calling coroutine,
// runs the function on the pool and resumes the coroutine on its own executor.
// Thread-safe.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <type_traits>

namespace berth::http {

class BlockingPool {
 public:
  explicit BlockingPool(int threads) : pool_(threads) {}
  ~BlockingPool() { Stop(); }

  template <typename F>
  boost::asio::awaitable<std::invoke_result_t<F>> Run(F f) {
    using R = std::invoke_result_t<F>;
    // co_spawn needs a default-constructible result; carry it in an optional.
    std::optional<R> out = co_await boost::asio::co_spawn(
        pool_.get_executor(),
        [f = std::move(f)]() mutable -> boost::asio::awaitable<std::optional<R>> {
          co_return std::optional<R>(f());
        },
        boost::asio::use_awaitable);
    co_return std::move(*out);
  }

  boost::asio::thread_pool::executor_type executor() { return pool_.get_executor(); }
  void Stop() {
    pool_.join();
  }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace berth::http
