#include "http/blocking.h"

namespace berth::http {

BlockingPool::BlockingPool(int threads, int read_threads)
    : main_(std::make_unique<Lane>(threads)),
      read_(read_threads > 0 ? std::make_unique<Lane>(read_threads) : nullptr) {}

void BlockingPool::Stop() {
  if (read_) read_->Stop();
  main_->Stop();
}

BlockingPool::Lane::Lane(int threads) {
  const int n = threads < 1 ? 1 : threads;
  workers_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>());
  // Start the threads only once every Worker exists.
  for (auto& w : workers_) w->thread = std::thread([this, self = w.get()] { Loop(*self); });
}

void BlockingPool::Lane::Enqueue(std::unique_ptr<TaskBase> task) {
  Worker* wake = nullptr;
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(task));
    // Wake an idle worker if there is one (a busy one may be in a 3 ms fsync). With
    // none idle nothing is woken: every worker drains the queue before it sleeps.
    if (!idle_.empty()) {
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
      task->Run();
      task.reset();  // destroy the task's captures outside the lock
      lock.lock();
      continue;
    }
    if (stopping_) return;
    idle_.push_back(&self);
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
