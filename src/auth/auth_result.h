// AuthResult<T, Kind>: a value, or a Status plus a machine-readable failure kind.
//
// Authentication failures must map to different wire errors (for example ECR's
// UnrecognizedClientException vs InvalidSignatureException), which a plain Status
// code (kUnauthorized) cannot tell apart. Each verifier in auth/ has its own `Kind`
// enum whose zero value means "no failure". Thread-compatible value type.
#pragma once

#include <utility>
#include <variant>

#include "base/status.h"

namespace berth::auth {

template <typename T, typename Kind>
class [[nodiscard]] AuthResult {
 public:
  AuthResult(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  // `status` must not be OK and `kind` must not be Kind{}.
  AuthResult(Kind kind, Status status) : v_(Failure{kind, std::move(status)}) {
    auto& f = std::get<Failure>(v_);
    if (f.status.ok()) f.status = Status::Internal("AuthResult constructed from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // Kind{} when ok().
  Kind kind() const { return ok() ? Kind{} : std::get<Failure>(v_).kind; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Failure>(v_).status;
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  struct Failure {
    Kind kind;
    Status status;
  };
  std::variant<T, Failure> v_;
};

}  // namespace berth::auth
