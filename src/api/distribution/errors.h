// The one table from Status codes to OCI distribution wire errors
// ({"errors":[{"code","message","detail"}]}) and HTTP statuses.
#pragma once

#include "base/status.h"
#include "http/message.h"

namespace berth::api::distribution {

struct WireError {
  const char* code;
  http::bhttp::status status;
};

WireError ToWireError(Code code);
// A complete error response for `st` (which must not be OK).
http::Response ErrorResponse(const Status& st);
// Error response with an explicit wire code and status (for cases outside the table,
// e.g. 405 for an unsupported method on a known route).
http::Response ErrorResponse(http::bhttp::status status, const char* code, std::string message);

// An error the HTTP layer answers by itself (before routing), such as 431 for
// oversized headers or 400 for an ambiguous request, in the OCI error format.
http::Response ProtocolErrorResponse(int http_status, const std::string& message);

}  // namespace berth::api::distribution
