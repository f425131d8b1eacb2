#include "api/ecr/errors.h"

#include <boost/json/serialize.hpp>

namespace berth::api::ecr {
namespace {

using http::bhttp::status;

struct Rule {
  Code code;
  std::string_view operation;  // empty: any operation
  std::string_view type;
};

// Operation-specific meanings first; the first matching rule wins.
constexpr Rule kRules[] = {
    {Code::kAlreadyExists, "CreateRepository", "RepositoryAlreadyExistsException"},
    {Code::kAlreadyExists, "PutImage", "ImageAlreadyExistsException"},
    {Code::kAlreadyExists, "CompleteLayerUpload", "LayerAlreadyExistsException"},
    {Code::kFailedPrecondition, "DeleteRepository", "RepositoryNotEmptyException"},
    {Code::kNotFound, "GetRepositoryPolicy", "RepositoryPolicyNotFoundException"},
    {Code::kNotFound, "DeleteRepositoryPolicy", "RepositoryPolicyNotFoundException"},
    // PutImage: kTagInvalid is an immutable tag (malformed tags are bad arguments),
    // kDigestInvalid a digest that does not match, kManifestUnknown a missing child.
    {Code::kTagInvalid, "PutImage", "ImageTagAlreadyExistsException"},
    {Code::kDigestInvalid, "PutImage", "ImageDigestDoesNotMatchException"},
    {Code::kManifestUnknown, "PutImage", "ReferencedImagesNotFoundException"},
    // Resource tags (Key/Value labels) of repositories.
    {Code::kTagInvalid, "CreateRepository", "InvalidTagParameterException"},
    {Code::kTagInvalid, "TagResource", "InvalidTagParameterException"},
    {Code::kTagInvalid, "UntagResource", "InvalidTagParameterException"},
    {Code::kOutOfRange, "CreateRepository", "TooManyTagsException"},
    {Code::kOutOfRange, "TagResource", "TooManyTagsException"},
    {Code::kDigestInvalid, "CompleteLayerUpload", "InvalidLayerException"},
    {Code::kSizeInvalid, "CompleteLayerUpload", "EmptyUploadException"},
    // Defaults.
    {Code::kNameUnknown, "", "RepositoryNotFoundException"},
    {Code::kManifestUnknown, "", "ImageNotFoundException"},
    {Code::kManifestBlobUnknown, "", "LayersNotFoundException"},
    {Code::kBlobUnknown, "", "LayersNotFoundException"},
    {Code::kUploadUnknown, "", "UploadNotFoundException"},
    {Code::kRangeInvalid, "", "InvalidLayerPartException"},
    {Code::kUploadInvalid, "", "InvalidLayerPartException"},
    {Code::kOutOfRange, "", "LimitExceededException"},
    {Code::kUnimplemented, "", "UnknownOperationException"},
    {Code::kUnauthorized, "", "UnrecognizedClientException"},
    {Code::kDenied, "", "AccessDeniedException"},
    {Code::kInvalidArgument, "", "InvalidParameterException"},
    {Code::kNameInvalid, "", "InvalidParameterException"},
    {Code::kTagInvalid, "", "InvalidParameterException"},
    {Code::kDigestInvalid, "", "InvalidParameterException"},
    {Code::kManifestInvalid, "", "InvalidParameterException"},
    {Code::kManifestReferenced, "", "InvalidParameterException"},
    {Code::kSizeInvalid, "", "InvalidParameterException"},
    {Code::kTooLarge, "", "InvalidParameterException"},
    {Code::kUnsupported, "", "InvalidParameterException"},
    {Code::kAlreadyExists, "", "InvalidParameterException"},
    {Code::kFailedPrecondition, "", "InvalidParameterException"},
    {Code::kNotFound, "", "InvalidParameterException"},
    {Code::kAborted, "", "InvalidParameterException"},
};

constexpr std::string_view kServerException = "ServerException";

}  // namespace

Exception ExceptionFor(Code code, std::string_view operation) {
  for (const Rule& r : kRules) {
    if (r.code == code && (r.operation.empty() || r.operation == operation)) {
      return {r.type, status::bad_request};
    }
  }
  // kIoError, kCorruption, kInternal, kUnavailable: the server's fault.
  return {kServerException, status::internal_server_error};
}

http::Response ErrorResponse(std::string_view type, const std::string& message,
                             boost::json::object extra) {
  boost::json::object body = std::move(extra);
  body["__type"] = type;
  body["message"] = message;
  http::Response r;
  r.status = type == kServerException ? status::internal_server_error : status::bad_request;
  r.headers.set(http::bhttp::field::content_type, kJsonContentType);
  r.headers.set("x-amzn-ErrorType", type);
  r.body = boost::json::serialize(body);
  return r;
}

http::Response ErrorResponse(const Status& st, std::string_view operation,
                             boost::json::object extra) {
  Exception e = ExceptionFor(st.code(), operation);
  if (st.Is(Code::kUnavailable)) {
    // A storage backend that does not answer (the message names it, as /v2's 503
    // does): 503, which AWS SDKs retry.
    http::Response r = ErrorResponse(e.type, st.message(), {});
    r.status = status::service_unavailable;
    return r;
  }
  if (e.type == kServerException) {
    return ErrorResponse(e.type, "internal error; see the server log", {});
  }
  return ErrorResponse(e.type, st.message(), std::move(extra));
}

}  // namespace berth::api::ecr
