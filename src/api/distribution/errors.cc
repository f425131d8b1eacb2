#include "api/distribution/errors.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

namespace berth::api::distribution {

using http::bhttp::status;

WireError ToWireError(Code code) {
  switch (code) {
    case Code::kNameInvalid: return {"NAME_INVALID", status::bad_request};
    case Code::kNameUnknown: return {"NAME_UNKNOWN", status::not_found};
    case Code::kBlobUnknown: return {"BLOB_UNKNOWN", status::not_found};
    case Code::kManifestUnknown: return {"MANIFEST_UNKNOWN", status::not_found};
    case Code::kDigestInvalid: return {"DIGEST_INVALID", status::bad_request};
    case Code::kTagInvalid: return {"TAG_INVALID", status::bad_request};
    case Code::kManifestInvalid: return {"MANIFEST_INVALID", status::bad_request};
    case Code::kManifestBlobUnknown: return {"MANIFEST_BLOB_UNKNOWN", status::bad_request};
    // Deleting a manifest an index still lists: a conflict with the repository's state.
    case Code::kManifestReferenced: return {"DENIED", status::conflict};
    case Code::kUploadUnknown: return {"BLOB_UPLOAD_UNKNOWN", status::not_found};
    case Code::kUploadInvalid: return {"BLOB_UPLOAD_INVALID", status::bad_request};
    case Code::kRangeInvalid: return {"BLOB_UPLOAD_INVALID", status::range_not_satisfiable};
    case Code::kSizeInvalid: return {"SIZE_INVALID", status::bad_request};
    case Code::kTooLarge: return {"SIZE_INVALID", status::payload_too_large};
    case Code::kUnsupported: return {"UNSUPPORTED", status::bad_request};
    case Code::kUnauthorized: return {"UNAUTHORIZED", status::unauthorized};
    case Code::kDenied: return {"DENIED", status::forbidden};
    case Code::kInvalidArgument: return {"UNSUPPORTED", status::bad_request};
    case Code::kOutOfRange: return {"BLOB_UNKNOWN", status::range_not_satisfiable};
    case Code::kAborted: return {"BLOB_UPLOAD_INVALID", status::bad_request};
    case Code::kNotFound: return {"NAME_UNKNOWN", status::not_found};
    case Code::kAlreadyExists: return {"DENIED", status::conflict};
    case Code::kFailedPrecondition: return {"DENIED", status::conflict};
    case Code::kUnimplemented: return {"UNSUPPORTED", status::method_not_allowed};
    case Code::kUnavailable: return {"UNAVAILABLE", status::service_unavailable};
    case Code::kOk:
    case Code::kIoError:
    case Code::kCorruption:
    case Code::kInternal: break;
  }
  return {"UNKNOWN", status::internal_server_error};
}

namespace {
http::Response Build(status st, const char* code, const std::string& message,
                     const std::string& detail) {
  boost::json::object err;
  err["code"] = code;
  err["message"] = message;
  if (!detail.empty()) err["detail"] = detail;
  boost::json::object body;
  body["errors"] = boost::json::array{std::move(err)};
  http::Response r;
  r.status = st;
  r.headers.set(http::bhttp::field::content_type, "application/json");
  r.body = boost::json::serialize(body);
  r.body += '\n';
  return r;
}
}  // namespace

http::Response ErrorResponse(const Status& st) {
  WireError w = ToWireError(st.code());
  if (w.status == status::internal_server_error) {
    // Never leak internals; the server log has the cause (the router logs the request
    // id with the response).
    spdlog::error("internal error cause=\"{}\"", st.ToString());
    return Build(w.status, w.code, "internal storage error; see the server log", "");
  }
  return Build(w.status, w.code, st.message(), st.detail());
}

http::Response ErrorResponse(status st, const char* code, std::string message) {
  return Build(st, code, message, "");
}

http::Response ProtocolErrorResponse(int http_status, const std::string& message) {
  const char* code = http_status == 431 ? "SIZE_INVALID" : "UNSUPPORTED";
  return Build(static_cast<status>(http_status), code, message, "");
}

}  // namespace berth::api::distribution
