// Status and Result<T>: errors as values across every layer of Berth.
//
// A Status is a code plus a human-readable message (and optional detail, such
// as the digest or name at fault). The codes include the registry's domain
// errors so that each API maps them to wire codes in exactly one table
// (api/distribution/errors.cc, later api/ecr/errors.cc). Thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace berth {

enum class Code : uint8_t {
  kOk = 0,
  // Generic.
  kNotFound,
  kAlreadyExists,
  kInvalidArgument,
  kFailedPrecondition,
  kOutOfRange,
  kIoError,
  kCorruption,
  kInternal,
  kUnavailable,
  kAborted,
  kUnimplemented,
  // Registry domain (OCI distribution vocabulary).
  kNameInvalid,          // repository name fails the grammar
  kNameUnknown,          // repository does not exist
  kBlobUnknown,          // blob not found / not linked into the repository
  kManifestUnknown,      // manifest or tag not found
  kDigestInvalid,        // malformed digest, or content does not match it
  kTagInvalid,           // malformed tag, or immutable tag cannot move
  kManifestInvalid,      // manifest fails validation
  kManifestBlobUnknown,  // manifest references a blob/child not in the repository
  kManifestReferenced,   // manifest is referenced by an index and cannot be deleted
  kUploadUnknown,        // upload session does not exist
  kUploadInvalid,        // upload request malformed (bad Content-Range, ...)
  kRangeInvalid,         // requested range not satisfiable / chunk out of order
  kSizeInvalid,          // Content-Length / size mismatch
  kTooLarge,             // payload over a configured limit
  kUnsupported,          // operation or media type not supported
  kUnauthorized,         // no or invalid credentials
  kDenied,               // credentials valid but action not allowed
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message, std::string detail = {})
      : code_(code), message_(std::move(message)), detail_(std::move(detail)) {}

  static Status Ok() { return {}; }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {Code::kAlreadyExists, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status FailedPrecondition(std::string msg) {
    return {Code::kFailedPrecondition, std::move(msg)};
  }
  static Status IoError(std::string msg) { return {Code::kIoError, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  // Errno-based I/O failure: "<what>: <strerror(err)>".
  static Status FromErrno(std::string_view what, int err);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& detail() const { return detail_; }
  bool Is(Code c) const { return code_ == c; }

  // "CODE: message" for logs.
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::string detail_;
};

// Result<T> holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result() : v_(Status::Internal("uninitialized result")) {}
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("Result constructed from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace berth

// Propagate a non-OK Status from an expression returning Status.
#define BERTH_RETURN_IF_ERROR(expr)           \
  do {                                        \
    ::berth::Status _st = (expr);             \
    if (!_st.ok()) return _st;                \
  } while (0)

#define BERTH_CONCAT_INNER_(a, b) a##b
#define BERTH_CONCAT_(a, b) BERTH_CONCAT_INNER_(a, b)
// BERTH_ASSIGN_OR_RETURN(auto x, ExprReturningResult());
#define BERTH_ASSIGN_OR_RETURN(lhs, expr) \
  BERTH_ASSIGN_OR_RETURN_IMPL_(BERTH_CONCAT_(_res_, __LINE__), lhs, expr)
#define BERTH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
