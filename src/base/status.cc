#include "base/status.h"

#include <cstring>

namespace berth {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kAlreadyExists: return "ALREADY_EXISTS";
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kFailedPrecondition: return "FAILED_PRECONDITION";
    case Code::kOutOfRange: return "OUT_OF_RANGE";
    case Code::kIoError: return "IO_ERROR";
    case Code::kCorruption: return "CORRUPTION";
    case Code::kInternal: return "INTERNAL";
    case Code::kUnavailable: return "UNAVAILABLE";
    case Code::kAborted: return "ABORTED";
    case Code::kUnimplemented: return "UNIMPLEMENTED";
    case Code::kNameInvalid: return "NAME_INVALID";
    case Code::kNameUnknown: return "NAME_UNKNOWN";
    case Code::kBlobUnknown: return "BLOB_UNKNOWN";
    case Code::kManifestUnknown: return "MANIFEST_UNKNOWN";
    case Code::kDigestInvalid: return "DIGEST_INVALID";
    case Code::kTagInvalid: return "TAG_INVALID";
    case Code::kManifestInvalid: return "MANIFEST_INVALID";
    case Code::kManifestBlobUnknown: return "MANIFEST_BLOB_UNKNOWN";
    case Code::kManifestReferenced: return "MANIFEST_REFERENCED";
    case Code::kUploadUnknown: return "BLOB_UPLOAD_UNKNOWN";
    case Code::kUploadInvalid: return "BLOB_UPLOAD_INVALID";
    case Code::kRangeInvalid: return "RANGE_INVALID";
    case Code::kSizeInvalid: return "SIZE_INVALID";
    case Code::kTooLarge: return "TOO_LARGE";
    case Code::kUnsupported: return "UNSUPPORTED";
    case Code::kUnauthorized: return "UNAUTHORIZED";
    case Code::kDenied: return "DENIED";
  }
  return "UNKNOWN";
}

Status Status::FromErrno(std::string_view what, int err) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return {Code::kIoError, std::move(msg)};
}

std::string Status::ToString() const {
  std::string s(CodeName(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  if (!detail_.empty()) {
    s += " (";
    s += detail_;
    s += ")";
  }
  return s;
}

}  // namespace berth
