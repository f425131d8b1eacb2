// BlockingPool: runs blocking work (SQLite, fsync, file opens, O_DIRECT writes) off the
// I/O threads. `co_await pool.Run([&] { return store.Get(...); })` suspends the calling
// coroutine, runs the function on a pool thread and resumes the coroutine on its own
// executor with the result (an exception thrown by the function is rethrown there).
// Thread-safe.
//
// Why not boost::asio::thread_pool: a blob upload hops here once per 1 MiB block, and
// asio's scheduler shares one mutex and condition variable among all its threads and
// wakes extra threads to look for more work: strace counted ~10 futex calls per hop,
// ~10k per GiB pushed. Here an idle worker sleeps on its own condition variable, the
// most recently idle one is woken (its stack and caches are warm) and only when there
// is no busy worker to pick the task up; a worker drains the queue before it sleeps.
// That is one wake and one wait per hop when the pool is idle, none when it is busy.
//
// Two lanes. Run: any blocking work, on `threads` workers; many of them mostly wait on
// fsync, so a task wakes an idle worker rather than queue behind one. RunRead: short
// reads that mostly cost CPU (metadata lookups whose pages are in the OS page cache),
// on `read_threads` workers, about one per core: with few workers they are usually
// busy and pick a queued read up without any wake-up, and reads never queue behind an
// fsync. read_threads = 0: RunRead uses the Run lane.
//
// A third lane, RunBlob: work that waits on the blob store (uploads, blob reads and
// opens), on `blob_threads` workers. An object store can be slow or stall for a
// minute; with its own lane, requests that do not need it (manifests, tags, the ECR
// API, authentication) never queue behind it. blob_threads = 0: RunBlob uses the Run
// lane.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace berth::http {

class BlockingPool {
 public:
  explicit BlockingPool(int threads, int read_threads = 0, int blob_threads = 0);
  ~BlockingPool() { Stop(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  template <typename F>
  boost::asio::awaitable<std::invoke_result_t<F>> Run(F f) {
    return RunOn(*main_, std::move(f));
  }
  // For short CPU-bound reads only: a read that blocks long holds up the others.
  template <typename F>
  boost::asio::awaitable<std::invoke_result_t<F>> RunRead(F f) {
    return RunOn(read_ ? *read_ : *main_, std::move(f));
  }

  // Work that may wait on the blob store (see the header comment).
  template <typename F>
  boost::asio::awaitable<std::invoke_result_t<F>> RunBlob(F f) {
    return RunOn(blob_ ? *blob_ : *main_, std::move(f));
  }

  // Runs what is queued, then joins the threads. Run() must not be called after.
  void Stop();

 private:
  // A task runs in two steps so the lane can tell a worker that is about to look at
  // the queue again (between the two) from one that may stay busy for long.
  struct TaskBase {
    virtual ~TaskBase() = default;
    virtual void Execute() = 0;   // the blocking work
    virtual void Complete() = 0;  // hands the result back to the caller's executor
  };
  template <typename Handler, typename F, typename Executor>
  struct Task final : TaskBase {
    using R = std::invoke_result_t<F>;
    Task(Handler h, F f, Executor ex) : handler(std::move(h)), fn(std::move(f)), ex(ex) {}
    void Execute() override {
      try {
        result.emplace(fn());
      } catch (...) {
        error = std::current_exception();
      }
    }
    void Complete() override {
      boost::asio::post(ex, [handler = std::move(handler), error = error,
                             result = std::move(result)]() mutable {
        std::move(handler)(error, std::move(result));
      });
    }
    Handler handler;
    F fn;
    Executor ex;
    std::exception_ptr error;
    std::optional<R> result;
  };

  // A queue and the workers that drain it.
  class Lane {
   public:
    explicit Lane(int threads);
    void Enqueue(std::unique_ptr<TaskBase> task);
    void Stop();

   private:
    struct Worker {
      std::condition_variable cv;
      bool woken = false;
      std::thread thread;
    };
    void Loop(Worker& self);

    std::mutex mu_;
    std::deque<std::unique_ptr<TaskBase>> queue_;
    std::vector<Worker*> idle_;  // a stack: the most recently idle worker is woken first
    std::vector<std::unique_ptr<Worker>> workers_;
    std::condition_variable all_idle_;  // construction waits until every worker is idle
    // Workers between a task's Execute and their next look at the queue: a task they
    // will pick up needs no wake-up (without this, a caller that resumes and submits
    // again before its worker is back would wake a second worker for nothing).
    std::atomic<size_t> finishing_{0};
    bool stopping_ = false;
  };

  template <typename F>
  static boost::asio::awaitable<std::invoke_result_t<F>> RunOn(Lane& lane, F f) {
    using R = std::invoke_result_t<F>;
    if constexpr (std::is_void_v<R>) {
      co_await RunOn(lane, [f = std::move(f)]() mutable {
        f();
        return true;
      });
    } else {
      // The completion carries an optional so R need not be default-constructible.
      std::optional<R> out = co_await boost::asio::async_initiate<
          const boost::asio::use_awaitable_t<>&, void(std::exception_ptr, std::optional<R>)>(
          [&lane](auto handler, F fn) { Submit(lane, std::move(handler), std::move(fn)); },
          boost::asio::use_awaitable, std::move(f));
      co_return std::move(*out);
    }
  }

  template <typename Handler, typename F>
  static void Submit(Lane& lane, Handler handler, F fn) {
    // Keeps the caller's io_context from running out of work while the task is away.
    auto ex = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                  boost::asio::execution::outstanding_work.tracked);
    lane.Enqueue(std::make_unique<Task<Handler, F, decltype(ex)>>(std::move(handler),
                                                                  std::move(fn), ex));
  }

  std::unique_ptr<Lane> main_;
  std::unique_ptr<Lane> read_;  // null: reads use main_
  std::unique_ptr<Lane> blob_;  // null: blob work uses main_
};

}  // namespace berth::http
