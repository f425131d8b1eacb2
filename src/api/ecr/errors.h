// The one table from Status codes to ECR exceptions, and the AWS JSON 1.1 error
// shape: HTTP 400 (500 for ServerException) with
//   {"__type": "RepositoryNotFoundException", "message": "..."}.
// A code can mean different things to different operations (kAlreadyExists is a
// repository for CreateRepository, an image for PutImage, a layer for
// CompleteLayerUpload), so the table is keyed by code and operation, with defaults.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>

#include "base/status.h"
#include "http/message.h"

namespace berth::api::ecr {

inline constexpr std::string_view kJsonContentType = "application/x-amz-json-1.1";

struct Exception {
  std::string_view type;  // "RepositoryNotFoundException"
  http::bhttp::status status;
};

// The exception `operation` reports for a failure with `code`.
Exception ExceptionFor(Code code, std::string_view operation);

// A complete error response of type `type`. `extra` adds members some exceptions
// carry (InvalidLayerPartException's lastValidByteReceived, ...).
http::Response ErrorResponse(std::string_view type, const std::string& message,
                             boost::json::object extra = {});
// The response for `st` (not OK) failing `operation`. A ServerException never shows
// its cause (the server log has it, under the request id).
http::Response ErrorResponse(const Status& st, std::string_view operation,
                             boost::json::object extra = {});

}  // namespace berth::api::ecr
