// Test decorator for SharedDocuments: counts reads, injects read failures and runs a
// hook inside the next read (after the inner read, before it returns). Thread-safe.
// For tests only.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "auth/shared_documents.h"

namespace berth::auth {

class CountingDocuments final : public SharedDocuments {
 public:
  explicit CountingDocuments(SharedDocuments& inner) : inner_(inner) {}

  Result<std::optional<std::string>> Get(std::string_view name) override {
    gets_.fetch_add(1);
    if (fail_.load()) return Status::Unavailable("injected: the store is unreachable");
    auto result = inner_.Get(name);
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> l(mu_);
      hook = std::exchange(hook_, nullptr);
    }
    if (hook) hook();
    return result;
  }
  Status Swap(std::string_view name, const std::optional<std::string>& expected,
              std::string_view value) override {
    swaps_.fetch_add(1);
    return inner_.Swap(name, expected, value);
  }

  int gets() const { return gets_.load(); }
  int swaps() const { return swaps_.load(); }
  void set_fail(bool fail) { fail_.store(fail); }
  void OnNextGet(std::function<void()> hook) {
    std::lock_guard<std::mutex> l(mu_);
    hook_ = std::move(hook);
  }

 private:
  SharedDocuments& inner_;
  std::atomic<int> gets_{0};
  std::atomic<int> swaps_{0};
  std::atomic<bool> fail_{false};
  std::mutex mu_;
  std::function<void()> hook_;  // guarded by mu_
};

}  // namespace berth::auth
