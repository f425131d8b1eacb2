#include "auth/shared_documents.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "auth/crypto.h"

namespace berth::auth {
namespace {

// A random pause after a lost compare-and-set, growing with the attempt, so that
// nodes racing for one document spread out instead of colliding again in step.
void Backoff(int attempt) {
  const int cap_us = 1000 << std::min(attempt, 5);  // 1 ms .. 32 ms
  const auto r = static_cast<unsigned char>(RandomBytes(1)[0]);
  std::this_thread::sleep_for(std::chrono::microseconds(cap_us * (r + 1) / 256));
}

}  // namespace

Result<std::optional<std::string>> MemorySharedDocuments::Get(std::string_view name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = docs_.find(name);
  if (it == docs_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Status MemorySharedDocuments::Swap(std::string_view name,
                                   const std::optional<std::string>& expected,
                                   std::string_view value) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = docs_.find(name);
  const bool matches =
      it == docs_.end() ? !expected.has_value() : expected.has_value() && *expected == it->second;
  if (!matches) {
    return Status(Code::kAborted,
                  "shared document '" + std::string(name) + "' was changed concurrently");
  }
  if (it == docs_.end()) {
    docs_.emplace(std::string(name), std::string(value));
  } else {
    it->second = std::string(value);
  }
  return Status::Ok();
}

Result<std::optional<std::string>> UpdateSharedDocument(SharedDocuments& docs,
                                                        std::string_view name, int max_attempts,
                                                        const DocumentChange& change) {
  for (int attempt = 0; attempt < std::max(max_attempts, 1); ++attempt) {
    if (attempt > 0) Backoff(attempt);
    BERTH_ASSIGN_OR_RETURN(std::optional<std::string> current, docs.Get(name));
    BERTH_ASSIGN_OR_RETURN(std::optional<std::string> next, change(current));
    if (!next.has_value()) return current;
    Status st = docs.Swap(name, current, *next);
    if (st.ok()) return next;
    if (!st.Is(Code::kAborted)) return st;
  }
  return Status(Code::kAborted, "shared document '" + std::string(name) + "' changed " +
                                    std::to_string(max_attempts) +
                                    " times while this node tried to update it; try again");
}

Result<std::string> SharedSecret(SharedDocuments& docs, std::string_view name, size_t bytes,
                                 int max_attempts) {
  if (bytes == 0) return Status::InvalidArgument("a shared secret needs at least one byte");
  BERTH_ASSIGN_OR_RETURN(
      std::optional<std::string> stored,
      UpdateSharedDocument(
          docs, name, max_attempts,
          [&](const std::optional<std::string>& current) -> Result<std::optional<std::string>> {
            if (current.has_value()) return std::optional<std::string>();
            return std::optional<std::string>(HexEncode(RandomBytes(bytes)));
          }));
  std::optional<std::string> secret = HexDecode(stored.value_or(""));
  if (!secret.has_value() || secret->empty()) {
    return Status::Corruption("shared secret '" + std::string(name) +
                              "' is not a hex string; delete the setting to create a new one");
  }
  return std::move(*secret);
}

SharedDocumentCacheBase::SharedDocumentCacheBase(SharedDocuments& docs, std::string name,
                                                 const Clock& clock, Parser parse)
    : docs_(docs), name_(std::move(name)), clock_(clock), parse_(std::move(parse)) {}

Status SharedDocumentCacheBase::Load() {
  const int64_t now = clock_.NowMillis();
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> text, docs_.Get(name_));
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<const void> value, parse_(text));
  std::lock_guard<std::mutex> l(mu_);
  text_ = std::move(text);
  value_ = std::move(value);
  last_read_ms_ = now;
  ++generation_;
  return Status::Ok();
}

std::shared_ptr<const void> SharedDocumentCacheBase::Get(int64_t max_age_ms) {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> l(mu_);
    const int64_t now = clock_.NowMillis();
    if (reading_ || now - last_read_ms_ < max_age_ms) return value_;
    // Stamped when the read starts: a store that fails or hangs is asked again only
    // after another interval, not by every request meanwhile.
    reading_ = true;
    last_read_ms_ = now;
    generation = generation_;
  }
  // The read and the parse run without the lock: other threads keep answering.
  Status st;
  std::optional<std::string> text;
  if (auto read = docs_.Get(name_); !read.ok()) {
    st = read.status();
  } else {
    text = std::move(*read);
  }
  if (st.ok()) {
    bool unchanged;
    {
      std::lock_guard<std::mutex> l(mu_);
      unchanged = value_ != nullptr && text == text_;
    }
    // Unchanged text keeps the value (and the objects callers hold) as it is.
    if (!unchanged) {
      auto parsed = parse_(text);
      std::lock_guard<std::mutex> l(mu_);
      if (!parsed.ok()) {
        st = parsed.status();
      } else if (generation == generation_) {
        // Else this node wrote meanwhile: what it installed is newer than this read.
        text_ = std::move(text);
        value_ = std::move(*parsed);
      }
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  reading_ = false;
  // Logged once per distinct failure, not once per interval.
  if (!st.ok() && st.ToString() != last_error_) {
    spdlog::warn("shared document refresh failed, keeping the previous value name={} error=\"{}\"",
                 name_, st.ToString());
  }
  last_error_ = st.ok() ? std::string() : st.ToString();
  return value_;
}

void SharedDocumentCacheBase::Install(std::string text, std::shared_ptr<const void> value) {
  std::lock_guard<std::mutex> l(mu_);
  text_ = std::move(text);
  value_ = std::move(value);
  ++generation_;
}

}  // namespace berth::auth
