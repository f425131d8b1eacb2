#include "http/blocking.h"

namespace berth::http {

BlockingPool::BlockingPool(int threads, int read_threads, int blob_threads)
    : main_(std::make_unique<Lane>(threads)),
      read_(read_threads > 0 ? std::make_unique<Lane>(read_threads) : nullptr),
      blob_(blob_threads > 0 ? std::make_unique<Lane>(blob_threads) : nullptr) {}

void BlockingPool::Stop() {
  if (blob_) blob_->Stop();
  if (read_) read_->Stop();
  main_->Stop();
}

BlockingPool::Lane::Lane(int threads) {
  const int n = threads < 1 ? 1 : threads;
  workers_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>());
  // Start the threads only once every Worker exists, and return once all are idle, so
  // the first tasks find a worker to wake and the stack of idle workers is complete.
  for (auto& w : workers_) w->thread = std::thread([this, self = w.get()] { Loop(*self); });
  std::unique_lock lock(mu_);
  all_idle_.wait(lock, [&] { return idle_.size() == workers_.size(); });
}

void BlockingPool::Lane::Enqueue(std::unique_ptr<TaskBase> task) {
  Worker* wake = nullptr;
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(task));
    // Wake an idle worker unless a finishing one will take the task in a moment (a
    // busy one may be in a 3 ms fsync, so they do not count). With none idle nothing
    // is woken: every worker drains the queue before it sleeps.
    if (!idle_.empty() && queue_.size() > finishing_.load(std::memory_order_relaxed)) {
      wake = idle_.back();
      idle_.pop_back();
      wake->woken = true;
    }
  }
  if (wake != nullptr) wake->cv.notify_one();
}

void BlockingPool::Lane::Loop(Worker& self) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (!queue_.empty()) {
      std::unique_ptr<TaskBase> task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task->Execute();
      finishing_.fetch_add(1, std::memory_order_relaxed);
      task->Complete();
      task.reset();  // destroy the task's captures outside the lock
      lock.lock();
      finishing_.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    if (stopping_) return;
    idle_.push_back(&self);
    if (idle_.size() == workers_.size()) all_idle_.notify_all();
    self.cv.wait(lock, [&] { return self.woken || stopping_; });
    self.woken = false;
  }
}

void BlockingPool::Lane::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    idle_.clear();
  }
  for (auto& w : workers_) w->cv.notify_one();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace berth::http
